"""Two bundles' answers on the same evaluation set, compared with a paired bootstrap over its clips.

Every recipe change so far was judged by one run on a 110-clip set, where one clip moves language
accuracy by 4 points and 48 English clips carry the CER. Resampling the clips (the same draw for
both, so a clip both get wrong costs neither) says how much of a difference the set's own sampling
could make. It does not measure run-to-run spread of training (another seed), which needs more runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from train.score import Span, edits, normalize_text, parse_segments, timestamp_error

RESAMPLES = 10_000


@dataclass(frozen=True)
class Metric:
    """A ratio of per-clip sums, sum(num) / sum(den), over the clips of one task."""

    name: str
    lower_is_better: bool
    ids: tuple[str, ...]
    num: np.ndarray
    den: np.ndarray

    def value(self) -> float:
        return float(self.num.sum() / max(self.den.sum(), 1e-12))


def metrics(items: list[dict]) -> dict[str, Metric]:
    """The summary's metrics (train/score.py summarize) as per-clip sums, keyed by name."""
    out: dict[str, Metric] = {}

    def add(name: str, lower: bool, rows: list[tuple[str, float, float]]) -> None:
        if rows:
            ids, num, den = zip(*rows)
            out[name] = Metric(name, lower, ids, np.array(num, dtype=float), np.array(den, dtype=float))

    for key, keep in (("en", lambda i: i["language"] == "English"), ("all", lambda i: True)):
        chosen = [i for i in items if i["task"] == "transcribe" and keep(i)]
        add(f"cer_{key}", True, [(i["id"], *edits(i["answer"], i["prediction"])[:2]) for i in chosen])
    add("language_accuracy", False, [(i["id"], float(normalize_text(i["prediction"]) == normalize_text(i["answer"])), 1.0)
                                     for i in items if i["task"] == "language"])
    stamps = [i for i in items if i["task"] == "timestamps"]
    errors = [timestamp_error(parse_segments(i["prediction"]), [Span(s["start"], s["end"], s["text"]) for s in i["segments"]],
                              i["seconds"]) for i in stamps]
    add("timestamp_mae_s", True, [(i["id"], e, b) for i, (e, b) in zip(stamps, errors)])
    add("timestamp_segment_count_accuracy", False,
        [(i["id"], float(len(parse_segments(i["prediction"])) == len(i["segments"])), 1.0) for i in stamps])
    add("timestamp_text_cer", True, [(i["id"], *edits(" ".join(s["text"] for s in i["segments"]),
                                                      " ".join(s.text for s in parse_segments(i["prediction"])))[:2])
                                     for i in stamps])
    return out


@dataclass(frozen=True)
class Difference:
    name: str
    a: float
    b: float
    low: float  # 95 % interval of b - a over resamples
    high: float
    b_better: float  # share of resamples where b is strictly better


def compare(a_items: list[dict], b_items: list[dict], resamples: int = RESAMPLES, seed: int = 0) -> list[Difference]:
    """Per metric both share: the values, and b - a's 95 % paired-bootstrap interval."""
    ids_a, ids_b = sorted(i["id"] for i in a_items), sorted(i["id"] for i in b_items)
    if ids_a != ids_b:
        only = sorted(set(ids_a) ^ set(ids_b))[:5]
        raise ValueError(f"the two score files answer different clips (e.g. {only}): score both bundles on the same "
                         "evaluation set (python -m train score BUNDLE --eval SET --json FILE)")
    ma, mb = metrics(a_items), metrics(b_items)
    rng = np.random.default_rng(seed)
    out = []
    for name, x in ma.items():
        y = mb[name]
        at = {clip: k for k, clip in enumerate(y.ids)}
        order = [at[clip] for clip in x.ids]  # b's clips in a's order: one draw picks the same clips
        y_num, y_den = y.num[order], y.den[order]
        picks = rng.integers(0, len(x.ids), size=(resamples, len(x.ids)))
        diff = y_num[picks].sum(1) / np.maximum(y_den[picks].sum(1), 1e-12) - x.num[picks].sum(1) / np.maximum(x.den[picks].sum(1), 1e-12)
        better = diff < 0 if x.lower_is_better else diff > 0
        low, high = np.percentile(diff, [2.5, 97.5])
        out.append(Difference(name, x.value(), y.value(), float(low), float(high), float(better.mean())))
    return out


def load_items(path: Path) -> list[dict]:
    """The answers in a `python -m train score --json` file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "items" not in data:
        raise ValueError(f"{path}: no per-clip answers; write them with python -m train score BUNDLE --json {path}")
    return data["items"]


def format_differences(rows: list[Difference], a: str, b: str) -> str:
    def show(name: str, v: float) -> str:
        return f"{v:.3f} s" if name == "timestamp_mae_s" else f"{100 * v:.2f} %"

    def span(name: str, v: float) -> str:
        return f"{v:+.3f} s" if name == "timestamp_mae_s" else f"{100 * v:+.2f}"

    lines = [f"| metric | A: {a} | B: {b} | B - A | 95 % interval (clips resampled) | B better in |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.name} | {show(r.name, r.a)} | {show(r.name, r.b)} | {span(r.name, r.b - r.a)} | "
                     f"[{span(r.name, r.low)}, {span(r.name, r.high)}] | {100 * r.b_better:.1f} % |")
    return "\n".join(lines)
