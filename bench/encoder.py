"""Encoder: our ONNX graph (FP32, INT8) vs the PyTorch reference encoder, seconds and RTF."""

from __future__ import annotations

import time
from functools import partial
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
    peak_before = fp32_gemm_peak(threads)
    m = load_manifest(bundle, verify=False)
    # onnxruntime at its fastest (pre-packing and arena on); the CPU profiles trade some of it for load
    # time and memory (the start-up knobs section measures that)
    ours = {p: Encoder.load(bundle / m.encoders[p].file, m.audio, "cpu", threads=threads) for p in ("fp32", "int8")}
    tower = load_tower(Checkpoint.open(ckpt)).float()
    rows = []
    for s in seconds:
        x = synthetic_clip(s)
        mel = log_mel(x, m.audio)
        with torch.no_grad():
            work = flops(tower, torch.from_numpy(mel))
            runs = {"pytorch_fp32": lambda: tower(torch.from_numpy(mel))}
            runs.update({f"onnx_{p}": partial(lambda enc: enc.rows(mel), enc) for p, enc in ours.items()})
            # Turns, not blocks: the machine is shared and its speed drifts, so each engine's best
            # comes from the same stretch of time
            best = {name: min(times) for name, times in turns(runs, 2 if s <= 30 else 1).items()}
        ref = best["pytorch_fp32"]
        row = {"audio_s": s, "gflop": round(work / 1e9, 3), "pytorch_fp32_s": round(ref, 3),
               "pytorch_rtf": round(ref / s, 4), "pytorch_gflop_s": round(work / ref / 1e9, 1)}
        for p in ours:
            t = best[f"onnx_{p}"]
            row.update({f"onnx_{p}_s": round(t, 3), f"onnx_{p}_rtf": round(t / s, 4),
                        f"speedup_{p}": round(ref / t, 2)})
        row["onnx_fp32_gflop_s"] = round(work / best["onnx_fp32"] / 1e9, 1)
        rows.append(row)
    # How much faster an FP32 encoder could be at all: the fastest FP32 GEMM measured here, before and after
    # (the reference's padded tail chunk counts as work for both engines, which both compute it)
    peak = max(peak_before, fp32_gemm_peak(threads))
    return [{**row, "fp32_gemm_peak_gflop_s": peak} for row in rows]


def turns(runs: dict, repeats: int) -> dict[str, list[float]]:
    """Each callable timed once per turn, in order, `repeats` turns (after one untimed warm-up turn)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for turn in range(repeats + 1):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            if turn:
                times[name].append(time.perf_counter() - t0)
    return times


def flops(module, *inputs) -> int:
    """Multiply-adds x 2 of the matmuls and convolutions one forward runs (torch's own counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        module(*inputs)
    return counter.get_total_flops()


def fp32_gemm_peak(threads: int) -> float:
    """The best FP32 GEMM rate here, GFLOP/s, of PyTorch's and of onnxruntime's MatMul: the encoder's FFN
    shapes for a batch of 8 chunks, and a large square one."""
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper, numpy_helper

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = threads, 3
    best = 0.0
    for m, k, n in ((400, 1280, 5120), (400, 5120, 1280), (2048, 2048, 2048)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
                                  [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k])],
                                  [helper.make_tensor_value_info("c", TensorProto.FLOAT, [m, n])],
                                  [numpy_helper.from_array(b.numpy(), "b")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        feed = {"a": np.ascontiguousarray(a.numpy())}
        for run in (lambda: torch.matmul(a, b), lambda: session.run(None, feed)):
            best = max(best, 2 * m * k * n / best_of(run, 5) / 1e9)
    return round(best, 1)
