"""What every drift command does with its report: a table, JSON, the manifest, the gate."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from quant.report import drift_table
from quant.thresholds import breaches, load_thresholds, unchecked, unchecked_note
from runtime.manifest import DriftReport, update_manifest
from runtime.typed import to_json


def add_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--eval", type=Path, help="an evaluation folder (eval.jsonl): score every variant against the "
                   "truth too (CER/WER, language, timestamps), e.g. models/moss-audio-tiny/eval")
    p.add_argument("--json", type=Path, help="write the report here too")
    p.add_argument("--check", action="store_true", help="exit 1 when a variant breaks its thresholds")
    p.add_argument("--thresholds", type=Path, help="thresholds file (default: quant/thresholds.json)")
    p.add_argument("--no-manifest", action="store_true", help="do not record the figures in the bundle's manifest")


def evalset_of(args: argparse.Namespace) -> list:
    from quant.evalset import load_evalset

    return load_evalset(args.eval) if args.eval else []


def publish(args: argparse.Namespace, bundle: Path, report: DriftReport) -> int:
    thresholds = load_thresholds(args.thresholds) if args.check else None
    failed = breaches(report, thresholds) if thresholds else []
    print(drift_table(report, failed))
    if args.json:
        args.json.write_text(json.dumps(to_json(report), indent=2))
    if not args.no_manifest:
        update_manifest(bundle, lambda m: dataclasses.replace(m, drift=report))
    for line in failed:
        print(f"FAIL {line}", file=sys.stderr)
    skipped = unchecked(report, thresholds) if thresholds else []
    if skipped:
        print(unchecked_note(skipped), file=sys.stderr)
    return 1 if failed else 0
