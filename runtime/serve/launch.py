"""`python -m runtime serve` as a child process on a free loopback port, ready once entered.

For programs that want a local server of their own (the bench, the tests do this): it binds
127.0.0.1 only, waits until GET /health answers 200, dies with its parent, and stops on exit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Mapping, Sequence

from runtime.child import die_with_parent

HOST = "127.0.0.1"


class ServerProcess:
    def __init__(self, bundle: str | Path, args: Sequence[str] = (), *, log: Path | None = None,
                 env: Mapping[str, str] | None = None, ready_timeout_s: float = 180.0):
        self.bundle, self.args, self.env, self.ready_timeout_s = Path(bundle), list(args), env, ready_timeout_s
        self.log = log or Path(tempfile.mkstemp(prefix="moss-serve-", suffix=".log")[1])
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "ServerProcess":
        parent = os.getpid()
        with open(self.log, "ab") as out:  # a file, not a pipe nobody drains: a full pipe would stall the server
            self.process = subprocess.Popen(
                [sys.executable, "-m", "runtime", "serve", str(self.bundle), "--host", HOST, "--port", str(self.port),
                 *self.args], stdout=out, stderr=subprocess.STDOUT, env=dict(self.env) if self.env else None,
                preexec_fn=lambda: die_with_parent(parent))
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the server is not started: use it in a with block")
        return self.process.pid

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet, or 503 while the bundle loads
            time.sleep(0.1)
        raise TimeoutError(f"the server was not ready in {self.ready_timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """Ctrl-C (graceful: answers in flight end), then a kill if it does not go."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]
