"""Run a function in a fresh spawned process: its memory peak is its own and ends with it."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool


def run_in_child(fn, *args):
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(fn, *args).result()
        except BrokenProcessPool:  # the child died without a Python error: the OOM killer, most likely
            raise RuntimeError(f"{fn.__module__}.{fn.__name__} was killed (out of memory?)") from None
