"""Answer while the audio arrives: time from the last sample to the first token when the clip was
fed as it came, against asking about the whole clip at once; a second question about the same
audio; and whether feeding keeps up with real time. Each side in a fresh process."""

from __future__ import annotations

import time
from pathlib import Path

from bench.encoder import synthetic_clip
from runtime.child import run_in_child

BLOCK_S = 0.02  # 20 ms microphone frames
QUESTIONS = ("Transcribe the audio.", "What is the speaker's tone?")


def _first_token_s(stream) -> float:
    t0 = time.perf_counter()
    with stream:
        for _ in stream:
            return time.perf_counter() - t0
    return time.perf_counter() - t0


def whole(bundle: Path, decoder: str, seconds: float, threads: int) -> dict:
    from runtime.pipeline import Pipeline

    pipe = Pipeline.load(bundle, device="cpu", decoder=decoder, threads=threads, verify=False)
    x = synthetic_clip(seconds, seed=3)
    ttft = _first_token_s(pipe.ask(x, QUESTIONS[0], temperature=0, max_new_tokens=4))
    again = _first_token_s(pipe.ask(x, QUESTIONS[1], temperature=0, max_new_tokens=4))
    return {"ttft_s": round(ttft, 3), "second_question_ttft_s": round(again, 3)}


def fed(bundle: Path, decoder: str, seconds: float, threads: int) -> dict:
    from runtime.pipeline import Pipeline

    pipe = Pipeline.load(bundle, device="cpu", decoder=decoder, threads=threads, verify=False)
    x = synthetic_clip(seconds, seed=3)
    block = int(BLOCK_S * 16000)
    busy, worst = 0.0, 0.0
    with pipe.session() as s:
        for i in range(0, x.size, block):
            t0 = time.perf_counter()
            s.feed(x[i : i + block])
            spent = time.perf_counter() - t0
            busy, worst = busy + spent, max(worst, spent)
        ttft = _first_token_s(s.ask(QUESTIONS[0], temperature=0, max_new_tokens=4))
    return {"last_sample_to_first_token_s": round(ttft, 3), "feed_s_per_audio_s": round(busy / seconds, 3),
            "longest_feed_call_s": round(worst, 3)}


def run(bundle: Path, decoder: str, seconds: float, threads: int) -> list[dict]:
    plain = run_in_child(whole, bundle, decoder, seconds, threads)
    streamed = run_in_child(fed, bundle, decoder, seconds, threads)
    return [{"clip_s": seconds, "decoder": decoder, "whole_clip_ttft_s": plain["ttft_s"], **streamed,
             "fed_ttft_ratio": round(streamed["last_sample_to_first_token_s"] / plain["ttft_s"], 3),
             "second_question_ttft_s": plain["second_question_ttft_s"],
             "second_question_ratio": round(plain["second_question_ttft_s"] / plain["ttft_s"], 3)}]
