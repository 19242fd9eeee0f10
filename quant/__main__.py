"""python -m quant drift BUNDLE [--expected FILE] [--device D] [--json OUT] [--check]

Measures every variant in the bundle against the reference's outputs (the bundle's own
expected.npz by default, or one made with `python -m export expected`), torch-free, prints a
table, writes the figures into the bundle's manifest (and JSON with --json). With --check it
exits 1 when a variant is outside its thresholds (quant/thresholds.json or --thresholds).
To run the PyTorch reference itself, use `python -m export drift` (needs the export extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from quant.cli import add_report_args, evalset_of, publish
from runtime.cli import Parser, run_guarded


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m quant", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    d = sub.add_parser("drift", help="measure every variant against the reference's outputs")
    d.add_argument("bundle", type=Path)
    d.add_argument("--expected", type=Path, help="expected outputs (default: the bundle's expected.npz)")
    d.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"], help="where the variants run")
    add_report_args(d)
    d.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    return run_guarded(lambda: _drift(args), args.verbose)


def _drift(args: argparse.Namespace) -> int:
    from quant.drift import gguf_text, measure
    from quant.expected import EXPECTED, load_expected
    from runtime.manifest import load_manifest

    manifest = load_manifest(args.bundle)
    path = args.expected or args.bundle / (manifest.expected.file if manifest.expected else EXPECTED)
    expected = load_expected(path)
    source = {"kind": "expected outputs", "source": str(path), "dtype": expected.reference_dtype,
              "device": expected.reference_device}
    report = measure(args.bundle, expected.cases, gguf_text(args.bundle), source=source, device=args.device,
                     evalset=evalset_of(args))
    return publish(args, args.bundle, report)


if __name__ == "__main__":
    sys.exit(main())
