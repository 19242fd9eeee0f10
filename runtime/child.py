"""Run a function in a fresh spawned process: its memory peak is its own and ends with it.

The child dies with its parent: a `kill -9` of an export must not leave a 300 MB worker
(and multiprocessing's resource tracker, which waits on it) running with PPID 1.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """In a child: ask the kernel for SIGKILL when the parent goes (Linux); if it already went, go."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def run_in_child(fn, *args):
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:
        try:
            return pool.submit(fn, *args).result()
        except BrokenProcessPool:  # the child died without a Python error: the OOM killer, most likely
            raise RuntimeError(f"{fn.__module__}.{fn.__name__} was killed (out of memory?)") from None
