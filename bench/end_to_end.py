"""End to end on one clip: time to first token, total time, peak memory; ours vs the reference.

Each side runs in a fresh process, so peak resident memory is its own.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.encoder import synthetic_clip
from runtime.child import run_in_child
from quant.probe import peak_rss_mb


def ours(bundle: Path, encoder: str, decoder: str, seconds: float, new_tokens: int, threads: int) -> dict:
    from runtime.pipeline import Pipeline

    t0 = time.perf_counter()
    pipe = Pipeline.load(bundle, device="cpu", encoder=encoder, decoder=decoder, threads=threads, verify=False)
    load = time.perf_counter() - t0
    x = synthetic_clip(seconds, seed=3)
    t0 = time.perf_counter()
    r = pipe.generate(x, temperature=0, max_new_tokens=new_tokens)
    total = time.perf_counter() - t0
    t = r.timings
    return {"pipeline": f"ours: encoder {encoder} + decoder {decoder}", "load_s": round(load, 2),
            "ttft_s": round(t.encode_s + t.prefill_s, 3), "total_s": round(total, 3),
            "new_tokens": len(r.token_ids), "decode_tok_s": round(t.decode_tok_s, 2),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def reference(ckpt: Path, seconds: float, new_tokens: int, threads: int) -> dict:
    import torch

    from export.checkpoint import Checkpoint
    from export.reference import MossAudioReference
    from runtime.sampling import GenerationOptions

    torch.set_num_threads(threads)
    dtype, note = _reference_dtype(Checkpoint.open(ckpt))
    t0 = time.perf_counter()
    model = MossAudioReference(Checkpoint.open(ckpt), dtype=dtype)
    load = time.perf_counter() - t0
    x = synthetic_clip(seconds, seed=3)
    arrivals: list[float] = []
    t0 = time.perf_counter()
    prompt, rows = model.prepare([x], model.ckpt.prompt_info.default_question)
    tokens = model.generate(prompt, rows, GenerationOptions(max_new_tokens=new_tokens, temperature=0),
                            on_token=lambda _t: arrivals.append(time.perf_counter()))
    total = time.perf_counter() - t0
    decode = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
    return {"pipeline": f"PyTorch reference {str(dtype).removeprefix('torch.')} CPU" + note, "load_s": round(load, 2),
            "ttft_s": round(arrivals[0] - t0, 3), "total_s": round(total, 3), "new_tokens": len(tokens),
            "decode_tok_s": round(decode, 2), "peak_rss_mb": round(peak_rss_mb(), 1)}


def _reference_dtype(ckpt):
    """FP32 as upstream runs on a CPU, unless it cannot fit the free memory; then BF16, said so."""
    import numpy as np
    import torch

    need = sum(int(np.prod(s)) for s in ckpt.config.expected_tensors().values()) * 4 / 1e9 + 1.5
    free = _mem_available_gb()
    if free and need > free - 4.0:  # measured: the 4B at 22.4 GB was killed with 23 GB free
        return torch.bfloat16, f" (FP32 needs ~{need:.1f} GB, {free:.1f} GB free)"
    return torch.float32, ""


def _mem_available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines() if Path("/proc/meminfo").exists() else []:
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1e6
    return 0.0


def run(ckpt: Path, bundle: Path, seconds: float, new_tokens: int, threads: int) -> list[dict]:
    jobs = [(ours, bundle, "fp32", "q4_k_m", seconds, new_tokens, threads),
            (ours, bundle, "int8", "q4_k_m", seconds, new_tokens, threads),
            (reference, ckpt, seconds, new_tokens, threads)]
    out = [run_in_child(fn, *args) for fn, *args in jobs]
    return against(out[:-1], out[-1])


def against(ours: list[dict], ref: dict) -> list[dict]:
    """Our rows with their speed-ups and memory ratio against the reference's row, then that row."""
    for row in ours:
        row["ttft_speedup"] = round(ref["ttft_s"] / row["ttft_s"], 2)
        row["total_speedup"] = round(ref["total_s"] / row["total_s"], 2)
        row["decode_speedup"] = round(row["decode_tok_s"] / ref["decode_tok_s"], 2) if ref["decode_tok_s"] else None
        row["memory_ratio"] = round(row["peak_rss_mb"] / ref["peak_rss_mb"], 3)
    return ours + [ref]
