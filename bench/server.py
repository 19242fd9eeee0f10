"""The HTTP server's overhead: time to first token and decode speed of a streamed chat completion
(the OpenAI wire format, on loopback) against the in-process Pipeline, same bundle, clips and settings.

Both sides are timed alike, from the request to the first answer text and from there to the end
of the stream, sampled with the same seed per clip and no loop guard, so both make the same tokens.
Cold: each request brings audio neither side has seen (what an app sending new recordings gets:
encoder and full prefill); warm: the last clip asked again (encoded rows and KV prefix reused, so
the server's fixed costs show). Cold TTFT is the mean over the clips; warm TTFT and decode speed the
best run (the machine is shared: the least disturbed run is the fairest).
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
# sides sample at temperature 1 with, per clip, the first of these seeds whose answer has text over at
# least half the tokens asked for.
SEEDS = range(1, 9)
QUESTION = "What is said?"

Timed = tuple[float, float, int]  # TTFT, decode tok/s, tokens


def run(bundle: Path, seconds: float, new_tokens: int, threads: int) -> list[dict]:
    from runtime.serve.deps import require_serve

    require_serve()
    # float WAVs: the server decodes the very same samples; clip 0 warms each side up, uncounted
    wavs = [_float_wav(synthetic_clip(seconds, seed=3 + i)) for i in range(REPEATS + 1)]
    ours = run_in_child(_in_process, bundle, wavs, new_tokens, threads)
    http = _over_http(bundle, wavs, new_tokens, threads, ours["seeds"])
    if [r[2] for r in http["cold"] + http["warm"]] != [r[2] for r in ours["cold"] + ours["warm"]]:
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


def _in_process(bundle: Path, wavs: list[bytes], new_tokens: int, threads: int) -> dict:
    from runtime.pipeline import Pipeline
    from runtime.rowcache import RowCache

    clips = [sf.read(io.BytesIO(w), dtype="float32")[0] for w in wavs]
    pipe = Pipeline.load(bundle, threads=threads, verify=False, **LOAD)
    seeds = [_seed(pipe, c, new_tokens) for c in clips]
    pipe.row_cache = RowCache()  # the seed search encoded every clip: forget it, so "cold" is cold
    pipe.decoder.forget()

    def once(i: int) -> Timed:
        t0 = time.perf_counter()
        first = None
        with pipe.ask(clips[i], QUESTION, temperature=1.0, seed=seeds[i], max_new_tokens=new_tokens) as stream:
            for _ in stream:
                first = first or time.perf_counter()
        return _timed(t0, first, time.perf_counter(), len(stream.result.token_ids))

    runs = [once(i) for i in range(len(clips))]
    return {"seeds": seeds, "cold": runs[1:], "warm": [once(len(clips) - 1) for _ in range(REPEATS)]}


def _over_http(bundle: Path, wavs: list[bytes], new_tokens: int, threads: int, seeds: list[int]) -> dict:
    from runtime.serve.launch import ServerProcess

    args = [f"--{k}={v}" for k, v in LOAD.items()] + [f"--threads={threads}", "--no-loop-guard"]

    def body(i: int) -> bytes:
        return json.dumps({"model": "m", "stream": True, "stream_options": {"include_usage": True},
                           "temperature": 1.0, "seed": seeds[i], "max_tokens": new_tokens,
                           "messages": [{"role": "user", "content": [
                               {"type": "input_audio", "input_audio": {"data": base64.b64encode(wavs[i]).decode(),
                                                                       "format": "wav"}},
                               {"type": "text", "text": QUESTION}]}]}).encode()

    with ServerProcess(bundle, args) as server:
        url = f"{server.url}/v1/chat/completions"
        runs = [_stream_once(url, body(i)) for i in range(len(wavs))]
        warm = [_stream_once(url, body(len(wavs) - 1)) for _ in range(REPEATS)]
    return {"cold": runs[1:], "warm": warm}


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
