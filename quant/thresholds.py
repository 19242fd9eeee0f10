"""Per-quant-level drift thresholds from one data file; a breach is named, never silent."""

from __future__ import annotations

import json
from pathlib import Path

from runtime.errors import OptionsError

DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.json")


def load_thresholds(path: Path | None = None) -> dict:
    path = Path(path or DEFAULT_THRESHOLDS)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise OptionsError(f"cannot read thresholds {path}: {e}") from None
    for kind in ("encoder", "decoder"):
        if not isinstance(data.get(kind), dict):
            raise OptionsError(f"thresholds {path} has no '{kind}' table")
    return data


def breaches(report: dict, thresholds: dict) -> list[str]:
    """Every metric outside its bound, and every variant with no bounds at all."""
    out = []
    for variant, metrics in report["variants"].items():
        kind, name = variant.split(":", 1)
        bounds = thresholds[kind].get(name)
        if bounds is None:
            out.append(f"{variant}: no thresholds for {kind} '{name}' in the thresholds file")
            continue
        for key, bound in bounds.items():
            metric, side = key.rsplit("_", 1)
            value = metrics.get(metric)
            if value is None:
                out.append(f"{variant}: {metric} was not measured")
            elif (side == "min" and value < bound) or (side == "max" and value > bound):
                word = "below" if side == "min" else "above"
                out.append(f"{variant}: {metric} {value:.6g} is {word} its {side} {bound:.6g}")
    return out
