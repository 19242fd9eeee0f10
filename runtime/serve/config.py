"""What `python -m runtime serve` was told, validated once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from runtime.errors import OptionsError
from runtime.sampling import GenerationOptions

DEFAULT_PORT = 8000
DEFAULT_MAX_UPLOAD_MB = 25.0  # OpenAI's own limit on an audio upload
DEFAULT_MAX_QUEUE = 8
API_KEY_ENV = "MOSS_API_KEY"


@dataclass(frozen=True)
class ServeConfig:
    bundle: Path
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = DEFAULT_PORT
    workers: int = 1  # each owns one Pipeline: memory is the limit on a device
    max_queue: int = DEFAULT_MAX_QUEUE  # requests waiting per worker before 429
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB  # a whole request body: an upload, or chat JSON with base64 audio
    api_key: str | None = None  # when set, /v1/* needs "Authorization: Bearer <key>"
    model_name: str | None = None  # the id /v1/models shows; default: the bundle folder's name
    loop_guard: bool = True  # stop a generation that repeats itself, as the CLI does
    generation: Mapping[str, Any] = field(default_factory=dict)  # defaults for requests that do not set them
    clip_cache_mb: float = 64.0  # decoded clips kept by content hash, for follow-ups about the same audio
    load: Mapping[str, Any] = field(default_factory=dict)  # Pipeline.load's keyword arguments
    verbose: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "bundle", Path(self.bundle))
        if self.workers < 1:
            raise OptionsError(f"workers must be at least 1, got {self.workers}")
        if self.max_queue < 1:
            raise OptionsError(f"max_queue must be at least 1, got {self.max_queue}")
        if not self.max_upload_mb > 0:
            raise OptionsError(f"max_upload_mb must be above 0, got {self.max_upload_mb}")
        if not 0 <= self.port < 65536:
            raise OptionsError(f"port must be in 0..65535, got {self.port}")
        if self.api_key is not None and not self.api_key.strip():
            raise OptionsError("the API key is empty: give a key, or none to serve without one")
        GenerationOptions.from_kwargs(**self.generation)  # a bad default fails at start, not on every request

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def model_id(self) -> str:
        return self.model_name or self.bundle.resolve().name
