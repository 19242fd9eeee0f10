"""python -m bench.diarize [--quick] [--seconds S] [--work DIR] [--json OUT]

MOSS-Transcribe-Diarize at its released 0.9B shape (Whisper-medium encoder, Qwen3-0.6B decoder,
tied; random weights: speed does not depend on values), or its tiny shape with --quick: one
recording (5 minutes by default: ten 30 s windows) end to end, each side in a fresh process
(peak RSS is its own): ours with the FP32 encoder and each decoder type against the PyTorch
reference (FP32 when it fits). Time to first token, decode speed, total, peak memory.
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
    rows = against([run_in_child(ours, bundle, "fp32", d, args.seconds, args.new_tokens, threads) for d in DECODERS],
                   run_in_child(reference, ckpt, args.seconds, args.new_tokens, threads))
    _table(f"MOSS-Transcribe-Diarize {size}: {args.seconds:g} s recording, {args.new_tokens} new tokens", rows)
    if args.json:
        args.json.write_text(json.dumps({"machine": {**_cpu(), "threads": threads, "model": size}, "rows": rows},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
