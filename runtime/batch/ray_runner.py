"""Ray mode: Ray Data maps the items over a pool of actors, each holding one Pipeline.

The driver keeps the results file: records stream back to it and are written exactly as in
local mode, so resume works the same and no node needs write access to --out. Every node
opens the bundle from the same path (shared storage) and verifies its sha256 itself.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, replace
from typing import Iterator, Sequence

from runtime.batch.inputs import Item
from runtime.batch.local import cores
from runtime.batch.worker import AskSpec, LoadSpec, Transcriber
from runtime.errors import MissingDependencyError, MossError, OptionsError

LOCAL_OBJECT_STORE_BYTES = 128 * 2**20  # records are small; Ray's default (30% of RAM) is not
# Ray Data's (2.60) scheduling and block-fetching threads, and how long each may take to finish its
# step once told to stop (well under a second here; bounded in case one hangs).
RAY_DATA_THREADS = ("StreamingExecutor-", "iter_threaded")
RAY_DATA_JOIN_S = 30.0
log = logging.getLogger(__name__)
HOST_PORT = re.compile(r"[\w.\-]+:\d+|\[[0-9a-fA-F:]+\]:\d+")  # a GCS address: name or IPv4, or [IPv6]


class RayError(MossError):
    """A Ray cluster that cannot be reached, or actors that cannot start."""


@dataclass(frozen=True)
class RaySpec:
    address: str | None = None  # None: a Ray started here for this run; "auto" or "HOST:PORT" (GCS): a cluster
    num_cpus: float | None = None  # per actor; None: 1 with a GPU, else the cluster's CPUs split between actors
    num_gpus: float | None = None  # per actor; None: 1 when the cluster has GPUs and the device is not cpu

    def __post_init__(self) -> None:
        if self.address is not None and self.address.startswith("ray://"):
            raise OptionsError(f"--ray {self.address}: Ray Data does not run through Ray Client; run the batch on "
                               "the cluster instead: ray job submit --address http://HEAD:8265 -- python -m runtime "
                               "batch BUNDLE INPUT... --out OUT --ray auto (or, from a machine the nodes can reach, "
                               "--ray HEAD:6379)")
        if self.address is not None and self.address != "auto" and not HOST_PORT.fullmatch(self.address):
            raise OptionsError(f"--ray {self.address}: give auto or the cluster's HOST:PORT (ray start --head prints "
                               "it), or nothing for a Ray on this machine (an input right after a bare --ray is "
                               "taken as its address: put --ray last)")
        for name in ("num_cpus", "num_gpus"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise OptionsError(f"{name} per Ray actor must be 0 or more, got {value}")


def import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependencyError("--ray needs Ray Data: pip install '.[ray]' (or pip install 'ray[data]')") \
            from None
    return ray


def run_ray(items: Sequence[Item], load: LoadSpec, ask: AskSpec, spec: RaySpec, actors: int) -> Iterator[dict]:
    """Records as they finish (any order). Uses the Ray this process already joined, if any."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        _connect(ray, spec.address)
    try:
        num_cpus, num_gpus = per_actor(spec, load, actors, ray.cluster_resources())
        load = load if load.threads or num_gpus else replace(load, threads=max(1, int(num_cpus)))
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "disabled": as meant
        ray.data.DataContext.get_current().enable_progress_bars = False  # ours counts files and audio hours
        dataset = ray.data.from_items([{"item": json.dumps(i.to_dict())} for i in items])
        answered = dataset.map_batches(RayTranscriber, fn_constructor_args=(load, ask), batch_size=1,
                                       compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=num_cpus,
                                       num_gpus=num_gpus)
        before = set(threading.enumerate())  # a caller's own Ray Data runs are not ours to wait for
        rows = iter(answered.iter_rows())
        try:
            for row in rows:
                if row["fatal"]:
                    raise RayError(row["fatal"])
                yield json.loads(row["record"])
        finally:
            _stop(rows, before)
    finally:
        if started:
            ray.shutdown()


def _stop(rows: Iterator, before: set[threading.Thread]) -> None:
    """End Ray Data's iteration before Ray itself. A run stopped early (a node whose bundle fails its
    sha256) left Ray Data's threads running into ray.shutdown, and one that touched the core worker
    after it ended the process with status 1 before the one-line error was printed (seen once in
    five CI runs). Closing the iterator shuts the executor down but waits only 2 s for its thread,
    and not at all for the threads fetching the next blocks; those, started by this run, are joined
    here. (Its block prefetcher stays parked on a condition until collected: never joined.)"""
    try:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    except Exception as e:  # the error that stopped the run is the one to report
        log.warning("closing Ray Data's iteration failed: %s", e)
    for thread in set(threading.enumerate()) - before:
        if thread.name.startswith(RAY_DATA_THREADS):
            thread.join(timeout=RAY_DATA_JOIN_S)
            if thread.is_alive():
                log.warning("Ray Data thread %s still running after %.0f s; shutting Ray down anyway",
                            thread.name, RAY_DATA_JOIN_S)


def per_actor(spec: RaySpec, load: LoadSpec, actors: int, cluster: dict) -> tuple[float, float]:
    """(num_cpus, num_gpus) each actor reserves: the flags, else a fair share of the cluster."""
    gpus = spec.num_gpus
    if gpus is None:
        gpus = 1.0 if load.device != "cpu" and cluster.get("GPU", 0) >= 1 else 0.0
    cpus = spec.num_cpus
    if cpus is None:
        cpus = 1.0 if gpus else max(1.0, float(int(cluster.get("CPU", 1) // actors)))
    return cpus, gpus


def _connect(ray, address: str | None) -> None:
    try:
        if address is None:  # "local": a new instance even where RAY_ADDRESS or a `ray start` names another
            ray.init(address="local", num_cpus=cores(), object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                     include_dashboard=False, logging_level=logging.WARNING)
        else:
            ray.init(address=address, logging_level=logging.WARNING)
    except ConnectionError as e:
        raise RayError(f"cannot reach a Ray cluster at {address}: {' '.join(str(e).split())[:300]}. Start one with "
                       "`ray start --head` and pass --ray auto on one of its nodes, or the HOST:PORT it prints; a "
                       "cluster with token authentication also needs RAY_AUTH_MODE=token here") from None


class RayTranscriber:
    """The Ray Data actor: one Pipeline for its lifetime; a batch of JSON items in, JSON records out.

    A bundle that does not load on this node comes back as `fatal`, which stops the run with
    that one-line message instead of a Ray traceback."""

    def __init__(self, load: LoadSpec, ask: AskSpec):
        try:
            self.transcriber: Transcriber | None = Transcriber(load, ask)
            self.fatal = ""
        except MossError as e:
            self.transcriber, self.fatal = None, str(e)

    def __call__(self, batch: dict) -> dict:
        items = [Item(**json.loads(text)) for text in batch["item"]]
        if self.transcriber is None:
            return {"record": [""] * len(items), "fatal": [self.fatal] * len(items)}
        return {"record": [json.dumps(self.transcriber.record(i), ensure_ascii=False) for i in items],
                "fatal": [""] * len(items)}
