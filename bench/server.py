"""The HTTP server's overhead: time to first token and decode speed of a streamed chat completion
(the OpenAI wire format, on loopback) against the in-process Pipeline, same bundle, clip and settings.

Both sides are timed alike, from the request to the first answer text and from there to the end
of the stream, sampled with the same seed and no loop guard, so both make the same tokens; best
of a few runs each (the machine is shared: the least disturbed run is the fairest).
"""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.request
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.encoder import synthetic_clip
from runtime.child import run_in_child

REPEATS = 3
LOAD = {"device": "cpu", "encoder": "fp32", "decoder": "q4_k_m"}
# Random weights answer greedily with EOS at once (the 4B shape does, whatever the question), so both
# sides sample at temperature 1 with the first of these seeds whose answer has text over at least
# half the tokens asked for.
SEEDS = range(1, 9)
QUESTION = "What is said?"


def run(bundle: Path, seconds: float, new_tokens: int, threads: int) -> list[dict]:
    from runtime.serve.deps import require_serve

    require_serve()
    wav = _float_wav(synthetic_clip(seconds, seed=3))  # float WAV: the server decodes the very same samples
    ours = run_in_child(_in_process, bundle, wav, new_tokens, threads)
    http = _over_http(bundle, wav, new_tokens, threads, ours["seed"])
    if http["new_tokens"] != ours["new_tokens"]:
        raise RuntimeError(f"the server made {http['new_tokens']} tokens, the pipeline {ours['new_tokens']}: "
                           "not the same generation, so not comparable")
    http["ttft_ratio"] = round(http["ttft_s"] / ours["ttft_s"], 3)
    http["decode_ratio"] = round(http["decode_tok_s"] / ours["decode_tok_s"], 3)
    return [ours, http]


def _row(path: str, runs: list[tuple[float, float, int]]) -> dict:
    ttft = min(r[0] for r in runs)
    rate = max(r[1] for r in runs)
    return {"path": path, "ttft_s": round(ttft, 4), "decode_tok_s": round(rate, 2), "new_tokens": runs[0][2],
            "runs": len(runs)}


def _seed(pipe, samples: np.ndarray, new_tokens: int) -> int:
    for seed in SEEDS:
        result = pipe.generate(samples, QUESTION, temperature=1.0, seed=seed, max_new_tokens=new_tokens)
        if len(result.token_ids) >= max(2, new_tokens // 2) and result.text.strip():
            return seed
    raise RuntimeError(f"no seed of {list(SEEDS)} gets an answer with text from this model")


def _in_process(bundle: Path, wav: bytes, new_tokens: int, threads: int) -> dict:
    from runtime.pipeline import Pipeline

    samples, _ = sf.read(io.BytesIO(wav), dtype="float32")
    pipe = Pipeline.load(bundle, threads=threads, verify=False, **LOAD)
    seed = _seed(pipe, samples, new_tokens)  # also warms caches up
    runs = []
    for i in range(REPEATS + 1):  # the first warms caches up and is not counted
        t0 = time.perf_counter()
        first = None
        with pipe.ask(samples, QUESTION, temperature=1.0, seed=seed, max_new_tokens=new_tokens) as stream:
            for _ in stream:
                first = first or time.perf_counter()
        end = time.perf_counter()
        if i:
            runs.append(_timed(t0, first, end, len(stream.result.token_ids)))
    return dict(_row(f"in-process Pipeline ({LOAD['encoder']} + {LOAD['decoder']})", runs), seed=seed)


def _over_http(bundle: Path, wav: bytes, new_tokens: int, threads: int, seed: int) -> dict:
    from runtime.serve.launch import ServerProcess

    args = [f"--{k}={v}" for k, v in LOAD.items()] + [f"--threads={threads}", "--no-loop-guard"]
    body = json.dumps({"model": "m", "stream": True, "stream_options": {"include_usage": True}, "temperature": 1.0,
                       "seed": seed,
                       "max_tokens": new_tokens, "messages": [{"role": "user", "content": [
                           {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav).decode(),
                                                                   "format": "wav"}},
                           {"type": "text", "text": QUESTION}]}]}).encode()
    with ServerProcess(bundle, args) as server:
        runs = [_stream_once(f"{server.url}/v1/chat/completions", body) for _ in range(REPEATS + 1)][1:]
    return dict(_row("HTTP server, streamed chat", runs), seed=seed)


def _stream_once(url: str, body: bytes) -> tuple[float, float, int]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    t0 = time.perf_counter()
    first = end = None
    tokens = 0
    with urllib.request.urlopen(request, timeout=600) as response:
        for line in response:
            if not line.startswith(b"data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            choice = chunk["choices"][0] if chunk["choices"] else {}
            if choice.get("delta", {}).get("content"):
                first = first or time.perf_counter()
            if choice.get("finish_reason"):
                end = time.perf_counter()
    return _timed(t0, first, end, tokens)


def _timed(t0: float, first: float | None, end: float | None, tokens: int) -> tuple[float, float, int]:
    if first is None or end is None or tokens < 2:
        raise RuntimeError("the answer had no text to time: use a longer max_new_tokens")
    return first - t0, (tokens - 1) / (end - first), tokens


def _float_wav(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, 16000, format="WAV", subtype="FLOAT")
    return out.getvalue()
