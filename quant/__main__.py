"""python -m quant drift BUNDLE --checkpoint CKPT [--audio FILE ...] [--json OUT] [--check]

Runs the PyTorch reference and every variant in the bundle on the same audio, prints a
table, writes the figures into the bundle's manifest (and JSON with --json). With --check
it exits 1 when a variant is outside its thresholds (quant/thresholds.json or --thresholds).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runtime.cli_common import run_guarded


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m quant", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("drift", help="measure every variant against the reference")
    d.add_argument("bundle", type=Path)
    d.add_argument("--checkpoint", required=True, help="the checkpoint the bundle was exported from")
    d.add_argument("--audio", type=Path, nargs="+", help="clips to measure on (default: the bundled speech clip)")
    d.add_argument("--question", default=None, help="default: the transcription question")
    d.add_argument("--tokens", type=int, default=32, help="greedy tokens per clip")
    d.add_argument("--json", type=Path, help="write the report here too")
    d.add_argument("--check", action="store_true", help="exit 1 when a variant breaks its thresholds")
    d.add_argument("--thresholds", type=Path, help="thresholds file (default: quant/thresholds.json)")
    d.add_argument("--no-manifest", action="store_true", help="do not record the figures in the manifest")
    d.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    return run_guarded(lambda: _drift(args), args.verbose)


def _drift(args: argparse.Namespace) -> int:
    from export.checkpoint import Checkpoint
    from quant.drift import measure, reference_cases
    from quant.report import table
    from quant.thresholds import breaches, load_thresholds
    from runtime import DEMO_AUDIO
    from runtime.manifest import record_drift
    from runtime.prompt import TRANSCRIBE_QUESTION

    thresholds = load_thresholds(args.thresholds) if args.check else None
    cases = reference_cases(Path(args.checkpoint), args.audio or [DEMO_AUDIO], args.question or TRANSCRIBE_QUESTION,
                            args.tokens)
    source = {"checkpoint": str(args.checkpoint), "kind": "pytorch reference", "dtype": "float32", "device": "cpu"}
    report = measure(args.bundle, cases, Checkpoint.open(args.checkpoint).decode, source=source)
    failed = breaches(report, thresholds) if thresholds else []
    print(table(report, failed))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if not args.no_manifest:
        record_drift(args.bundle, report)
    for line in failed:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
