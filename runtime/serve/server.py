"""What every handler shares: the config, the workers, the clip decoder, the metrics, the key."""

from __future__ import annotations

from typing import Callable, Sequence

from starlette.concurrency import run_in_threadpool

from runtime.errors import MossError
from runtime.manifest import load_manifest
from runtime.serve.auth import ApiKey
from runtime.serve.clips import Clip, ClipDecoder
from runtime.serve.config import ServeConfig
from runtime.serve.errors import bad_request, from_exception
from runtime.serve.metrics import Metrics
from runtime.serve.workers import WorkerPool


class Server:
    def __init__(self, config: ServeConfig, on_ready: Callable[[], None] | None = None,
                 on_failure: Callable[[BaseException], None] | None = None):
        self.config = config
        self.manifest = load_manifest(config.bundle, verify=False)  # a wrong folder fails now, not in a thread
        self.metrics = Metrics()
        self.pool = WorkerPool(config, self.metrics, on_ready, on_failure)
        self.metrics.queue_depth.set_function(self.pool.queued)
        self.clips = ClipDecoder(self.manifest.audio, int(config.clip_cache_mb * 2**20))
        self.api_key = ApiKey(config.api_key)

    async def decode(self, uploads: Sequence[tuple[bytes, str]]) -> tuple[Clip, ...]:
        """(bytes, the field that held them) to clips, off the event loop; 400 naming the field."""

        def decode_all() -> tuple[Clip, ...]:
            clips = []
            for data, param in uploads:
                try:
                    clips.append(self.clips.decode(data, f"the audio in '{param}'"))
                except MossError as e:
                    raise bad_request(str(e), param) from None
            return tuple(clips)

        return await run_in_threadpool(decode_all)

    def check_options(self, overrides: dict, words: dict[str, str] | None = None) -> None:
        """A bad option is a 400 now, not after a wait in the queue (the bundle's defaults fill the rest)."""
        try:
            self.pool.workers[0].pipeline.options(**overrides)
        except MossError as e:
            raise from_exception(e, words) from None
