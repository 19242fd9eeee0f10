"""Batch throughput: audio seconds per wall second for 1 vs 2 local workers and Ray with 2 actors.

Each mode answers the same clip set from scratch through `run_batch` (the CLI's code), so the
wall time includes what a user waits for: worker start, bundle load, Ray start. The steady
figure leaves start-up out: audio over the busy time per worker (each record's own total_s).
One worker runs twice, with all the threads and with one: on a busy machine threads that wait
on each other can cost more than a second process gains, and this row tells the two apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf

from bench.encoder import synthetic_clip
from runtime.batch import AskSpec, BatchJob, LoadSpec, RaySpec, collect, run_batch

MODES = (("local", 1, None), ("local", 1, 1), ("local", 2, None), ("ray", 2, None))  # threads None: split
SAMPLE_RATE = 16_000


def clip_set(folder: Path, count: int, seconds: float) -> Path:
    """`count` distinct clips of `seconds`, written once."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        path = folder / f"clip{i:03d}.wav"
        if not path.is_file():
            sf.write(path, synthetic_clip(seconds, seed=100 + i), SAMPLE_RATE)
    return folder


def one_mode(bundle: Path, clips: Path, out: Path, mode: str, workers: int, new_tokens: int, threads: int,
             per_worker: int | None = None) -> dict:
    out.unlink(missing_ok=True)
    per_worker = per_worker or max(1, threads // workers)
    job = BatchJob(out, LoadSpec(str(bundle), "cpu", encoder="fp32", decoder="q4_k_m", threads=per_worker),
                   AskSpec(options={"temperature": 0, "max_new_tokens": new_tokens}), workers,
                   RaySpec() if mode == "ray" else None)
    summary = run_batch(job, collect([clips]), show_progress=False)
    busy = sum(json.loads(line)["timings"]["total_s"] for line in out.read_text().splitlines())
    return {"mode": mode, "workers": workers, "threads_each": per_worker, "files": summary.files,
            "failures": summary.failures, "audio_s": round(summary.audio_s, 1), "wall_s": round(summary.wall_s, 2),
            "audio_s_per_wall_s": round(summary.throughput, 3),
            "steady_audio_s_per_s": round(summary.audio_s * workers / busy, 3) if busy else 0.0}


def run(bundle: Path, work: Path, count: int, seconds: float, new_tokens: int, threads: int) -> list[dict]:
    clips = clip_set(work / f"batch-clips-{count}x{seconds:g}s", count, seconds)
    rows = [one_mode(bundle, clips, work / "batch-results.jsonl", mode, n, new_tokens, threads, each)
            for mode, n, each in MODES]
    for row in rows:
        row["vs_1_worker"] = round(row["audio_s_per_wall_s"] / rows[0]["audio_s_per_wall_s"], 2)
    return rows
