"""python -m bench.diarize [--quick] [--seconds S] [--work DIR] [--json OUT]

MOSS-Transcribe-Diarize at its released 0.9B shape (Whisper-medium encoder, Qwen3-0.6B decoder,
tied; random weights: speed does not depend on values), or its tiny shape with --quick: one
recording (5 minutes by default: ten 30 s windows) end to end, each side in a fresh process
(peak RSS is its own): ours with the FP32 encoder and each decoder type against the PyTorch
reference (FP32 when it fits). Time to first token, decode speed, total, peak memory.

--one-pass MINUTES: a recording that long (30 in bench/README.md) through the plan's defaults for
this machine (its device profile, decoder and KV type), in one prompt: the context it grew to
against the profile's load-time one, and peak RSS against the RAM the profile plans with.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DECODERS = ("f16", "q8_0", "q4_k_m")


def main(argv: list[str] | None = None) -> int:
    from runtime.cli import Parser, run_guarded

    p = Parser(prog="python -m bench.diarize", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the tiny shape: keeps the script from rotting")
    p.add_argument("--seconds", type=float, default=300.0, help="length of the recording")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--work", type=Path, default=Path("work/bench"), help="cache for the checkpoint and bundle")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--one-pass", type=float, default=None, metavar="MINUTES",
                   help="instead: one recording this long in one pass with the plan's defaults")
    p.add_argument("--json", type=Path)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    return run_guarded(lambda: _run(args), args.verbose)


def prepare(size: str, work: Path) -> tuple[Path, Path]:
    """Checkpoint and bundle (encoder fp32, decoder f16/q8_0/q4_k_m), reused when present."""
    from export.bundle import ExportOptions, export_bundle
    from export.diarize.synth import write_diarize_checkpoint

    ckpt, bundle = work / f"checkpoint-diarize-{size}", work / f"bundle-diarize-{size}"
    if not (ckpt / "config.json").is_file():
        write_diarize_checkpoint(ckpt, size, seed=0)
    if not (bundle / "manifest.json").is_file():
        export_bundle(ckpt, bundle, ExportOptions(encoder=("fp32",), decoder=DECODERS, imatrix=False, expected=False))
    return ckpt, bundle


def _run(args: argparse.Namespace) -> int:
    import os

    from bench.__main__ import _cpu, _table
    from bench.end_to_end import against, ours, reference
    from runtime.child import run_in_child

    threads = args.threads or os.cpu_count() or 1
    size = "tiny" if args.quick else "0.9b"
    ckpt, bundle = prepare(size, args.work)
    if args.one_pass:
        row = run_in_child(one_pass, bundle, args.one_pass * 60, args.new_tokens, threads)
        _table(f"MOSS-Transcribe-Diarize {size}: {args.one_pass:g} min recording in one pass", [row])
        if args.json:
            args.json.write_text(json.dumps({"machine": {**_cpu(), "threads": threads, "model": size}, "one_pass": row},
                                            indent=2))
        return 0
    rows = against([run_in_child(ours, bundle, "fp32", d, args.seconds, args.new_tokens, threads) for d in DECODERS],
                   run_in_child(reference, ckpt, args.seconds, args.new_tokens, threads))
    _table(f"MOSS-Transcribe-Diarize {size}: {args.seconds:g} s recording, {args.new_tokens} new tokens", rows)
    if args.json:
        args.json.write_text(json.dumps({"machine": {**_cpu(), "threads": threads, "model": size}, "rows": rows},
                                        indent=2))
    return 0


def one_pass(bundle: Path, seconds: float, new_tokens: int, threads: int) -> dict:
    """The plan's defaults on this machine; the recording as one prompt (no window=)."""
    import time

    from bench.encoder import synthetic_clip
    from bench.end_to_end import peak_rss_mb
    from runtime.pipeline import Pipeline

    x = synthetic_clip(seconds, seed=3)
    t0 = time.perf_counter()
    with Pipeline.load(bundle, device="cpu", threads=threads, verify=False) as pipe:
        plan = pipe.plan
        r = pipe.generate(x, temperature=0, max_new_tokens=new_tokens)
    t = r.timings
    return {"minutes": round(seconds / 60, 1), "profile": plan.profile, "decoder": plan.decoder, "kv": plan.kv_type,
            "positions": len(r.prompt_token_ids) + len(r.token_ids), "load_context": plan.load_context,
            "context": plan.context, "ttft_s": round(t.encode_s + t.prefill_s, 1),
            "encode_s": round(t.encode_s, 1), "prefill_tok_s": round(t.prefill_tok_s, 1),
            "decode_tok_s": round(t.decode_tok_s, 2), "total_s": round(time.perf_counter() - t0, 1),
            "peak_rss_mb": round(peak_rss_mb()), "ram_total_mb": round(plan.machine.total_gb * 1000),
            "ram_free_at_load_mb": round(plan.machine.host_free_gb * 1000)}


if __name__ == "__main__":
    sys.exit(main())
