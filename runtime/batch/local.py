"""Local mode: N worker processes on this machine, each loading the bundle once.

Workers die with the parent (a `kill -9` leaves none behind) and ignore Ctrl-C: the parent
decides what an interrupt means (drop the in-flight items, keep every finished record).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Iterator, Sequence

from runtime.batch.inputs import Item
from runtime.batch.worker import AskSpec, LoadSpec, Transcriber
from runtime.child import die_with_parent
from runtime.errors import MossError

IN_FLIGHT_PER_WORKER = 2  # enough to keep a worker busy; few enough that an interrupt drops little
# Pools of the native libraries under NumPy and the engines, sized to the worker's share as Ray does for
# its actors: left at every core, they spin against the other workers (measured: busy time 1.1-1.2 s
# against 0.6-0.8 s for 2 workers on 2 loaded cores).
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_transcriber: Transcriber | Exception | None = None  # one per worker process


class WorkerDied(MossError):
    """A worker process ended without an answer (killed, out of memory)."""


def cores() -> int:
    """CPU cores this process may use (its affinity, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def split_threads(load: LoadSpec, workers: int) -> LoadSpec:
    """Each worker gets its share of the cores unless the caller chose a thread count."""
    return load if load.threads else replace(load, threads=max(1, cores() // workers))


def run_local(items: Sequence[Item], load: LoadSpec, ask: AskSpec, workers: int) -> Iterator[dict]:
    """Records as they finish (any order). Close the iterator to stop: in-flight items are dropped."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start, initargs=(os.getpid(), split_threads(load, workers), ask))
    todo = iter(items)
    pending: set[Future] = set()
    try:
        while True:
            while len(pending) < IN_FLIGHT_PER_WORKER * workers and (item := next(todo, None)) is not None:
                pending.add(pool.submit(_record, item))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    except BrokenProcessPool:
        _terminate(pool)
        raise WorkerDied("a worker process died without an answer (out of memory? killed?); the finished records "
                         "are kept: run the same command again to resume") from None
    except BaseException:
        _terminate(pool)
        raise
    pool.shutdown()


def _start(parent: int, load: LoadSpec, ask: AskSpec) -> None:
    """Worker initializer. A bundle that fails to load is kept and raised by the first item, so the
    parent reports it as one error instead of a broken pool."""
    global _transcriber
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in THREAD_ENV:  # before the first NumPy import in this process; a caller's own setting wins
        os.environ.setdefault(name, str(load.threads))
    try:
        _transcriber = Transcriber(load, ask)
    except Exception as e:
        _transcriber = e


def _record(item: Item) -> dict:
    if isinstance(_transcriber, Exception):
        raise _transcriber
    return _transcriber.record(item)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop now, dropping queued and in-flight items. Python 3.14 has terminate_workers(); before
    it the pool's processes are only reachable through its `_processes` map."""
    if hasattr(pool, "terminate_workers"):
        pool.terminate_workers()
        return
    processes = list((pool._processes or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join()
