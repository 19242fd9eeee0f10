"""Work done in a child process dies with its parent: a `kill -9` of an export must not leave a
worker (and multiprocessing's resource tracker) running with PPID 1."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from runtime.child import run_in_child


def nap(marker: str) -> None:
    """A long task that says when it has started."""
    Path(marker).touch()
    time.sleep(120)


def test_a_result_comes_back():
    assert run_in_child(max, 3, 7) == 7


def test_the_child_dies_with_its_killed_parent(tmp_path):
    marker = tmp_path / "started"
    code = f"from runtime.child import run_in_child\nfrom tests.runtime.test_child import nap\nrun_in_child(nap, {str(marker)!r})\n"
    parent = subprocess.Popen([sys.executable, "-c", code])
    for _ in range(600):
        if marker.exists():
            break
        time.sleep(0.05)
    assert marker.exists(), "the child's task never started"
    children = psutil.Process(parent.pid).children(recursive=True)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    _, alive = psutil.wait_procs(children, timeout=10)
    for p in alive:
        p.kill()
    assert alive == [], "children outlived their parent"
