"""Encoder: our ONNX graph (FP32, INT8) vs the PyTorch reference encoder, seconds and RTF."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from runtime.manifest import load_manifest


def synthetic_clip(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def best_of(fn, repeats: int = 2) -> float:
    """Shortest of a few runs: the machine is shared, the minimum is the least disturbed."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run(ckpt: Path, bundle: Path, seconds: tuple[float, ...], threads: int) -> list[dict]:
    import torch

    from export.checkpoint import Checkpoint
    from export.modeling import load_tower
    from runtime.encoder import Encoder
    from runtime.mel import log_mel

    torch.set_num_threads(threads)
    m = load_manifest(bundle, verify=False)
    ours = {p: Encoder.load(bundle / m.encoders[p].file, m.audio, "cpu", threads=threads) for p in ("fp32", "int8")}
    tower = load_tower(Checkpoint.open(ckpt)).float()
    rows = []
    for s in seconds:
        x = synthetic_clip(s)
        mel = log_mel(x, m.audio)
        repeats = 2 if s <= 30 else 1  # long clips dominate the run; their timing is less noisy
        with torch.no_grad():
            ref = best_of(lambda: tower(torch.from_numpy(mel)), repeats)
        row = {"audio_s": s, "pytorch_fp32_s": round(ref, 3), "pytorch_rtf": round(ref / s, 4)}
        for p, enc in ours.items():
            t = best_of(lambda: enc.rows(log_mel(x, m.audio)), repeats)
            row.update({f"onnx_{p}_s": round(t, 3), f"onnx_{p}_rtf": round(t / s, 4),
                        f"speedup_{p}": round(ref / t, 2)})
        rows.append(row)
    return rows
