"""Ray mode against a real cluster address: one 2-CPU head node started for this module (as
`ray start --head` would on a cluster), two actors, the same records as local mode; a bundle
that fails its sha256 check on a node stops the run with that one line."""

from __future__ import annotations

import importlib.util
import inspect
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from runtime.batch.ray_runner import RAY_DATA_THREADS, RaySpec, _stop, import_ray, per_actor
from runtime.batch.worker import LoadSpec
from runtime.errors import MissingDependencyError
from tests.runtime.batch.conftest import N_CLIPS, SETTINGS, batch, records

# Token authentication with a token of this run's own: a clean machine has no ~/.ray/auth_token, and
# `ray start` does not make one. Head and clients are given the same RAY_AUTH_TOKEN.
TOKEN_AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
PORT_FLAGS = ("--port", "--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
              "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")
# With Ray Client installed (grpc), a head node serves it on 10001 unless given another port.
PORT_FLAGS += ("--ray-client-server-port",) if importlib.util.find_spec("grpc") else ()


def free_ports(n: int) -> list[int]:
    """Ports free now; other users' Ray clusters on this machine keep Ray's defaults."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def cluster() -> str:
    """A 2-CPU head node with a small object store and token authentication (Ray's default), in a
    temp dir of its own so that no other Ray user's `ray.init()` on this machine is sent to it;
    stopped at the end of the module (only this one: `ray stop` would stop every Ray here)."""
    pytest.importorskip("ray.data", reason="the [ray] extra is not installed")
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    cmd = [ray, "start", "--head", "--block", "--temp-dir", str(temp), "--num-cpus", "2", "--num-gpus", "0",
           "--object-store-memory", str(100 * 2**20), "--include-dashboard", "false", "--disable-usage-stats",
           "--min-worker-port", "0", "--max-worker-port", "0",
           *(str(x) for flag, port in ports.items() for x in (flag, port))]
    log = temp / "head.log"
    with open(log, "w") as out:
        head = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **TOKEN_AUTH})
    deadline = time.monotonic() + 90
    while "Ray runtime started" not in log.read_text() and head.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        assert head.poll() is None and "Ray runtime started" in log.read_text(), log.read_text()[-3000:]
        yield f"127.0.0.1:{ports['--port']}"
    finally:
        head.terminate()  # --block: the command stops the node's processes when it is terminated
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def test_two_actors_on_the_cluster_write_the_same_records_as_local_mode(tiny_bundle, audio_dir, reference_run,
                                                                        cluster, tmp_path):
    out = tmp_path / "results.jsonl"
    run = batch(tiny_bundle, audio_dir, "--out", out, "--workers", "2", "--ray", cluster, *SETTINGS,
                env={**os.environ, **TOKEN_AUTH})
    assert run.returncode == 1, run.stderr[-3000:]
    assert records(out) == reference_run
    assert f"{N_CLIPS + 2} files (2 failed)" in run.stderr


def test_a_bundle_failing_its_sha256_on_a_node_stops_the_run(tampered_bundle, audio_dir, cluster, tmp_path):
    run = batch(tampered_bundle, audio_dir, "--out", tmp_path / "r.jsonl", "--ray", cluster, *SETTINGS,
                env={**os.environ, **TOKEN_AUTH})
    assert run.returncode == 2, run.stderr[-3000:]
    assert run.stderr.strip().splitlines()[-1].startswith("error: sha256 of")


def test_stopping_closes_the_rows_and_waits_for_the_runs_ray_data_threads():
    """Ray Data's threads must be gone before ray.shutdown (ray_runner._stop): this one stands for
    its block fetcher, still finishing a step when the run stops; one that was running before the
    run started belongs to someone else and is not waited for."""
    closed = threading.Event()

    def rows():
        try:
            yield {}
        finally:
            closed.set()

    theirs = threading.Thread(target=time.sleep, args=(5,), name="iter_threaded", daemon=True)
    theirs.start()
    before = set(threading.enumerate())
    fetcher = threading.Thread(target=time.sleep, args=(0.5,), name="iter_threaded", daemon=True)
    fetcher.start()
    it = rows()
    next(it)
    _stop(it, before)
    assert closed.is_set() and not fetcher.is_alive() and theirs.is_alive()


def test_the_thread_names_waited_for_are_ray_datas():
    """A rename in Ray Data would make the wait a silent no-op: the names must occur in its source."""
    pytest.importorskip("ray.data", reason="the [ray] extra is not installed")
    from ray.data._internal.block_batching import util
    from ray.data._internal.execution import streaming_executor

    sources = inspect.getsource(util) + inspect.getsource(streaming_executor)
    executor, fetcher = RAY_DATA_THREADS
    assert f'f"{executor}{{' in sources and f'name="{fetcher}"' in sources


def test_actors_take_a_fair_share_of_the_cluster_unless_told():
    cpu_cluster, gpu_cluster = {"CPU": 8.0}, {"CPU": 8.0, "GPU": 2.0}
    assert per_actor(RaySpec(), LoadSpec("b"), 3, cpu_cluster) == (2.0, 0.0)
    assert per_actor(RaySpec(), LoadSpec("b"), 16, cpu_cluster) == (1.0, 0.0)
    assert per_actor(RaySpec(), LoadSpec("b"), 2, gpu_cluster) == (1.0, 1.0)
    assert per_actor(RaySpec(), LoadSpec("b", device="cpu"), 2, gpu_cluster) == (4.0, 0.0)
    assert per_actor(RaySpec(num_cpus=3, num_gpus=0.5), LoadSpec("b"), 2, gpu_cluster) == (3, 0.5)


def test_without_ray_installed_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError, match=r"pip install '\.\[ray\]'"):
        import_ray()
