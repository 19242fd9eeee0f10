"""The HTTP server's overhead: time to first token and decode speed of a streamed chat completion
(the OpenAI wire format, on loopback) against the in-process Pipeline, same bundle, clips and settings.

Both sides are timed alike, from the request to the first answer text and from there to the end
of the stream, sampled with the same seed per clip and no loop guard, so both make the same tokens.
Cold: each request brings audio neither side has seen (what an app sending new recordings gets:
encoder and full prefill); warm: the last clip asked again (encoded rows and KV prefix reused, so
the server's fixed costs show). The two sides take turns, clip by clip, the first turn alternating,
so a machine that speeds up or slows down during the run (it is shared) weighs on both alike.
Cold TTFT is the mean over the clips; warm TTFT and decode speed the best run.
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

REPEATS = 3
LOAD = {"device": "cpu", "encoder": "fp32", "decoder": "q4_k_m"}
# Random weights answer greedily with EOS at once (the 4B shape does, whatever the question), so both
# sides sample at temperature 1 with, per clip, the first of these seeds whose answer has text over at
# least half the tokens asked for.
SEEDS = range(1, 9)
QUESTION = "What is said?"

Timed = tuple[float, float, int]  # TTFT, decode tok/s, tokens


def run(bundle: Path, seconds: float, new_tokens: int, threads: int) -> list[dict]:
    """In this process: the pipeline; in a child: the server (both hold the bundle at once)."""
    from runtime.pipeline import Pipeline
    from runtime.rowcache import RowCache
    from runtime.serve.deps import require_serve
    from runtime.serve.launch import ServerProcess

    require_serve()
    # float WAVs: the server decodes the very same samples; clip 0 warms each side up, uncounted
    wavs = [_float_wav(synthetic_clip(seconds, seed=3 + i)) for i in range(REPEATS + 1)]
    clips = [sf.read(io.BytesIO(w), dtype="float32")[0] for w in wavs]
    pipe = Pipeline.load(bundle, threads=threads, verify=False, **LOAD)
    try:
        seeds = [_seed(pipe, c, new_tokens) for c in clips]
        pipe.row_cache = RowCache()  # the seed search encoded every clip: forget it, so "cold" is cold
        pipe.decoder.forget()
        args = [f"--{k}={v}" for k, v in LOAD.items()] + [f"--threads={threads}", "--no-loop-guard"]
        with ServerProcess(bundle, args) as server:
            url = f"{server.url}/v1/chat/completions"
            sides = (lambda i: _in_process(pipe, clips[i], seeds[i], new_tokens),
                     lambda i: _stream_once(url, _body(wavs[i], seeds[i], new_tokens)))
            runs: tuple[list[Timed], list[Timed]] = ([], [])
            for i in list(range(len(wavs))) + [len(wavs) - 1] * REPEATS:
                for side in ((0, 1) if i % 2 == 0 else (1, 0)):
                    runs[side].append(sides[side](i))
    finally:
        pipe.close()
    ours, http = ({"cold": r[1 : len(wavs)], "warm": r[len(wavs) :]} for r in runs)
    if [r[2] for r in runs[0]] != [r[2] for r in runs[1]]:
        raise RuntimeError("the server and the pipeline made different numbers of tokens for the same clip and "
                           "seed: not the same generations, so not comparable")
    rows = [_row(f"in-process Pipeline ({LOAD['encoder']} + {LOAD['decoder']})", ours),
            _row("HTTP server, streamed chat", http)]
    for key in ("cold_ttft_s", "warm_ttft_s"):
        rows[1][key.replace("_s", "_ratio")] = round(rows[1][key] / rows[0][key], 3)
    rows[1]["decode_ratio"] = round(rows[1]["decode_tok_s"] / rows[0]["decode_tok_s"], 3)
    return rows


def _row(path: str, runs: dict) -> dict:
    cold, warm = runs["cold"], runs["warm"]
    return {"path": path, "cold_ttft_s": round(float(np.mean([r[0] for r in cold])), 3),
            "warm_ttft_s": round(min(r[0] for r in warm), 4), "decode_tok_s": round(max(r[1] for r in cold + warm), 2),
            "new_tokens": cold[0][2], "clips": len(cold), "runs": len(cold) + len(warm)}


def _seed(pipe, samples: np.ndarray, new_tokens: int) -> int:
    for seed in SEEDS:
        result = pipe.generate(samples, QUESTION, temperature=1.0, seed=seed, max_new_tokens=new_tokens)
        if len(result.token_ids) >= max(2, new_tokens // 2) and result.text.strip():
            return seed
    raise RuntimeError(f"no seed of {list(SEEDS)} gets an answer with text from this model")


def _in_process(pipe, samples: np.ndarray, seed: int, new_tokens: int) -> Timed:
    t0 = time.perf_counter()
    first = None
    with pipe.ask(samples, QUESTION, temperature=1.0, seed=seed, max_new_tokens=new_tokens) as stream:
        for _ in stream:
            first = first or time.perf_counter()
    return _timed(t0, first, time.perf_counter(), len(stream.result.token_ids))


def _body(wav: bytes, seed: int, new_tokens: int) -> bytes:
    return json.dumps({"model": "m", "stream": True, "stream_options": {"include_usage": True}, "temperature": 1.0,
                       "seed": seed, "max_tokens": new_tokens, "messages": [{"role": "user", "content": [
                           {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav).decode(),
                                                                   "format": "wav"}},
                           {"type": "text", "text": QUESTION}]}]}).encode()


def _stream_once(url: str, body: bytes) -> Timed:
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


def _timed(t0: float, first: float | None, end: float | None, tokens: int) -> Timed:
    if first is None or end is None or tokens < 2:
        raise RuntimeError("the answer had no text to time: use a longer max_new_tokens")
    return first - t0, (tokens - 1) / (end - first), tokens


def _float_wav(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, 16000, format="WAV", subtype="FLOAT")
    return out.getvalue()
