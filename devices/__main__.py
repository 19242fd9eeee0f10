"""python -m devices list | check BUNDLE | build-engine BUNDLE

  list [--explain]                       the device profiles; * marks this machine's
  check BUNDLE [--expected FILE] [--junit OUT.xml] [--json OUT.json]
                                         device CI: drift of every variant here, timings;
                                         exit 1 on a threshold breach (torch-free)
  build-engine BUNDLE [--precision fp16] TensorRT engine for this GPU from the encoder ONNX
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runtime.cli import Parser, run_guarded


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m devices", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    ls = sub.add_parser("list", help="the device profiles")
    ls.add_argument("--explain", action="store_true", help="write out each profile's memory arithmetic")
    ck = sub.add_parser("check", help="device CI accuracy check")
    ck.add_argument("bundle", type=Path)
    ck.add_argument("--expected", type=Path, help="expected outputs (default: the bundle's expected.npz)")
    ck.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ck.add_argument("--eval", type=Path, help="an evaluation folder (eval.jsonl): accuracy against the truth too")
    ck.add_argument("--profile", help="report under this profile instead of the detected one")
    ck.add_argument("--thresholds", type=Path, help="default: quant/thresholds.json")
    ck.add_argument("--junit", type=Path, help="write a JUnit XML report here")
    ck.add_argument("--json", type=Path, help="write the JSON report here")
    be = sub.add_parser("build-engine", help="TensorRT engine for this GPU")
    be.add_argument("bundle", type=Path)
    be.add_argument("--precision", default="fp16", choices=["fp16", "fp32"])
    be.add_argument("--max-chunks", type=int, default=32, help="largest batch of 4-s chunks the engine takes")
    args = p.parse_args(argv)
    return run_guarded(lambda: {"list": _list, "check": _check, "build-engine": _build}[args.command](args),
                       args.verbose)


def _list(args: argparse.Namespace) -> int:
    from quant.report import format_table
    from runtime.placement.detect import best_profile, detect
    from runtime.placement.profiles import all_profiles

    here = best_profile(detect())
    rows = []
    for prof in all_profiles():
        usable = prof.usable_gb if prof.usable_gb is not None else "detected"
        cells = ["*" if here and prof.name == here.name else "", prof.name, prof.title, prof.compute_capability or "-",
                 usable, f"{prof.encoder.backend} {prof.encoder.precision}"]
        for size in ("4b", "8b"):
            c = prof.decoder.get(size)
            cells.append(f"{c.quant} ({c.budget_gb} GB)" if c and c.quant else "does not fit")
        rows.append(cells)
    print(format_table(["", "profile", "device", "CC", "usable GB", "encoder", "4B decoder", "8B decoder"], rows,
                       left=8))
    if args.explain:
        for prof in all_profiles():
            print(f"\n{prof.name} ({prof.memory.note}):")
            for c in prof.decoder.values():
                print(f"  {c.arithmetic or c.reason}" + (f"  <= {prof.usable_gb} GB usable" if c.quant and prof.usable_gb else ""))
    return 0


def _check(args: argparse.Namespace) -> int:
    from devices.check import junit, run_check
    from quant.report import drift_table
    from quant.thresholds import unchecked_note

    report = run_check(args.bundle, device=args.device, profile=args.profile, expected=args.expected,
                       thresholds=args.thresholds, evalset=args.eval)
    m = report.machine
    print(f"device: {m.kind} {m.model} ({m.arch}), profile {report.profile}, variants run on {report.device}")
    print(drift_table(report.drift, report.failed))
    print(f"\ntimings (greedy, {report.drift.reference.audio[0]}):")
    for variant, t in report.timings.items():
        print(f"  {variant:16s} encoder {t['encoder']} ({', '.join(t['providers'])}): encode {t['encode_s']:.3f} s, "
              f"prefill {t['prefill_tok_s']:.0f} tok/s, decode {t['decode_tok_s']:.1f} tok/s")
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2))
    if args.junit:
        junit(report, args.junit)
    for line in report.failed:
        print(f"FAIL {line}", file=sys.stderr)
    if report.unchecked:
        print(unchecked_note(report.unchecked), file=sys.stderr)
    return 1 if report.failed else 0


def _build(args: argparse.Namespace) -> int:
    from devices.tensorrt import build_engine

    path = build_engine(args.bundle, precision=args.precision, max_chunks=args.max_chunks, verbose=args.verbose)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
