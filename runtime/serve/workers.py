"""Workers, each owning one Pipeline (one llama.cpp context), each with a bounded queue.

The bundle loads on a background thread so the port answers at once (/health says 503 until
every worker is loaded). A request goes to the worker with the least waiting; when every queue
is full it is refused (429) with Retry-After about one request's time.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from typing import Callable

from runtime.serve.config import ServeConfig
from runtime.serve.jobs import Job
from runtime.serve.metrics import Metrics


class QueueFull(Exception):
    def __init__(self, retry_after_s: int):
        super().__init__(f"every worker's queue is full; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Worker:
    def __init__(self, pipeline, config: ServeConfig, metrics: Metrics):
        self.pipeline, self.config, self.metrics = pipeline, config, metrics
        self.queue: queue.Queue[Job | None] = queue.Queue(maxsize=config.max_queue)
        self.current: Job | None = None
        self.seconds_per_job = 1.0  # running mean, for Retry-After
        self.thread = threading.Thread(target=self._serve, name="moss-worker", daemon=True)

    @property
    def load(self) -> int:
        return self.queue.qsize() + (self.current is not None)

    def _serve(self) -> None:
        while (job := self.queue.get()) is not None:
            if job.cancelled:  # the client left while it waited
                continue
            self.current, t0 = job, time.perf_counter()
            try:
                job.run(self.pipeline, self.config.loop_guard, self.metrics)
            finally:
                self.current = None
                self.seconds_per_job = 0.8 * self.seconds_per_job + 0.2 * (time.perf_counter() - t0)

    def stop(self) -> None:
        """Skip what waits, end what runs at its next token, then end the thread."""
        while True:
            try:
                waiting = self.queue.get_nowait()
            except queue.Empty:
                break
            if waiting is not None:
                waiting.cancel()
        running = self.current
        if running is not None:
            running.cancel()
        self.queue.put(None)


class WorkerPool:
    def __init__(self, config: ServeConfig, metrics: Metrics, on_ready: Callable[[], None] | None = None,
                 on_failure: Callable[[BaseException], None] | None = None):
        self.config, self.metrics = config, metrics
        self.workers: list[Worker] = []
        self.failure: BaseException | None = None
        self._on_ready, self._on_failure = on_ready, on_failure
        self._ready = threading.Event()
        self._closing = threading.Event()
        self._submit = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def start(self) -> None:
        threading.Thread(target=self._load, name="moss-loader", daemon=True).start()

    def _load(self) -> None:
        from runtime.pipeline import Pipeline

        try:
            for _ in range(self.config.workers):
                if self._closing.is_set():
                    return
                pipe = Pipeline.load(self.config.bundle, verbose=self.config.verbose, **self.config.load)
                worker = Worker(pipe, self.config, self.metrics)
                worker.thread.start()
                self.workers.append(worker)
        except BaseException as e:  # reported through /health and on_failure (the CLI exits)
            self.failure = e
            if self._on_failure:
                self._on_failure(e)
            return
        self._ready.set()
        if self._on_ready:
            self._on_ready()

    def check_room(self) -> None:
        """QueueFull now when every queue is full: a request refused anyway is not decoded first."""
        if all(w.queue.full() for w in self.workers):
            raise self._full()

    def submit(self, job: Job) -> None:
        """Queue the job on the least busy worker, or raise QueueFull."""
        with self._submit:
            for w in sorted(self.workers, key=lambda w: w.load):
                try:
                    w.queue.put_nowait(job)
                    return
                except queue.Full:
                    continue
        raise self._full()

    def _full(self) -> QueueFull:
        soonest = min((w.seconds_per_job for w in self.workers), default=1.0)
        return QueueFull(max(1, math.ceil(soonest)))

    def queued(self) -> int:
        return sum(w.queue.qsize() for w in self.workers)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop taking jobs, end the running ones at their next token, free the pipelines."""
        self._closing.set()
        for w in self.workers:
            w.stop()
        for w in self.workers:
            w.thread.join(timeout_s)
            if not w.thread.is_alive():
                w.pipeline.close()
