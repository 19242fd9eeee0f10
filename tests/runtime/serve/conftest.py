"""One live server for the serve tests, started the way the README says, on a free loopback port."""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass

import pytest
import soundfile as sf

from tests.conftest import SAMPLE_RATE, clip

API_KEY = "test-key-0123"
MAX_UPLOAD_MB = 2
MAX_QUEUE = 8
MAX_NEW_TOKENS = 64  # the server's default answer length: transcriptions of noise stay short


@dataclass(frozen=True)
class Live:
    url: str
    pid: int
    key: str
    log: str

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"


@pytest.fixture(scope="session")
def server(tiny_bundle, tmp_path_factory):
    """--workers 1 --max-queue 8 (the load test's shape), an API key, a 2 MB upload limit."""
    from runtime.serve.launch import ServerProcess

    log = tmp_path_factory.mktemp("serve") / "server.log"
    args = ["--workers", "1", "--max-queue", str(MAX_QUEUE), "--max-upload-mb", str(MAX_UPLOAD_MB),
            "--decoder", "q8_0", "--model-name", "moss-audio-tiny", "--max-new-tokens", str(MAX_NEW_TOKENS)]
    env = {**os.environ, "MOSS_API_KEY": API_KEY}  # the key from the environment, as the README says
    with ServerProcess(tiny_bundle, args, log=log, env=env) as live:
        yield Live(live.url, live.pid, API_KEY, str(log))


@pytest.fixture(scope="session")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.v1, api_key=server.key, max_retries=0, timeout=120)


def wav_bytes(seconds: float, seed: int = 0, fmt: str = "WAV") -> bytes:
    out = io.BytesIO()
    sf.write(out, clip(seconds, seed), SAMPLE_RATE, format=fmt)
    return out.getvalue()


def audio_part(data: bytes, fmt: str = "wav") -> dict:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode(), "format": fmt}}


def user(*parts: dict | str) -> list[dict]:
    return [{"role": "user", "content": [p if isinstance(p, dict) else {"type": "text", "text": p} for p in parts]}]


def metric(server: Live, name: str) -> float:
    """One sample of /metrics (0 when not yet recorded), e.g. 'moss_generations_total{finish_reason="cancelled"}'."""
    import httpx

    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ")[1])
    return 0.0
