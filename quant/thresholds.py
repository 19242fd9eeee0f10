"""Per-quant-level drift thresholds from one data file; a breach is named, never silent.

A NaN measurement breaks its bound, a bound on a metric nobody measures is an error in the
file (a misspelt key must not turn a gate off), and a variant without bounds fails.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path

from runtime.errors import OptionsError
from runtime.manifest import DriftReport, VariantDrift

DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.json")
KINDS = ("encoder", "decoder")
METRICS = tuple(f.name for f in fields(VariantDrift) if "float" in str(f.type) and f.name != "peak_rss_mb")
EVAL_METRICS = ("eval_cer", "eval_wer", "language_accuracy", "timestamp_mae_s")  # need an evaluation set


def load_thresholds(path: Path | None = None) -> dict:
    path = Path(path or DEFAULT_THRESHOLDS)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise OptionsError(f"cannot read thresholds {path}: {e}") from None
    for kind in KINDS:
        if not isinstance(data.get(kind), dict):
            raise OptionsError(f"thresholds {path} has no '{kind}' table")
        for variant, bounds in data[kind].items():
            for key, bound in bounds.items():
                metric, _, side = key.rpartition("_")
                if side not in ("min", "max") or metric not in METRICS:
                    raise OptionsError(f"thresholds {path}: {kind} {variant} has the key {key!r}, which is no "
                                       f"<metric>_min/_max of {', '.join(METRICS)}")
                if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
                    raise OptionsError(f"thresholds {path}: {kind} {variant} {key} must be a finite number")
    return data


def measured_eval(report: DriftReport) -> bool:
    """Whether the drift run had an evaluation set (--eval)."""
    return any(getattr(v, m) is not None for v in report.variants.values() for m in EVAL_METRICS)


def unchecked(report: DriftReport, thresholds: dict) -> list[str]:
    """Bounds on evaluation-set scores that a run without an evaluation set could not check."""
    if measured_eval(report):
        return []
    return sorted({f"{kind} {name} {key}" for kind in KINDS for name, bounds in thresholds[kind].items()
                   for key in bounds if key.rpartition("_")[0] in EVAL_METRICS})


def unchecked_note(items: list[str]) -> str:
    return f"not checked without an evaluation set (pass --eval): {', '.join(items)}"


def breaches(report: DriftReport, thresholds: dict) -> list[str]:
    """Every metric outside its bound, and every variant with no bounds at all. Bounds on
    evaluation-set scores apply when the run had an evaluation set (see `unchecked`)."""
    out = []
    with_eval = measured_eval(report)
    for variant, metrics in report.variants.items():
        kind, name = variant.split(":", 1)
        bounds = thresholds[kind].get(name)
        if bounds is None:
            out.append(f"{variant}: no thresholds for {kind} '{name}' in the thresholds file")
            continue
        for key, bound in bounds.items():
            metric, _, side = key.rpartition("_")
            if metric in EVAL_METRICS and not with_eval:
                continue
            value = getattr(metrics, metric)
            if value is None:
                out.append(f"{variant}: {metric} was not measured")
            elif math.isnan(value):
                out.append(f"{variant}: {metric} is NaN")
            elif (side == "min" and value < bound) or (side == "max" and value > bound):
                word = "below" if side == "min" else "above"
                out.append(f"{variant}: {metric} {value:.6g} is {word} its {side} {bound:.6g}")
    return out
