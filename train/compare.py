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

from train.score import clip_metrics

RESAMPLES = 10_000
# What makes two answers answers to the same clip: an evaluation set's ids are positional
# (task-language-number), so two sets built alike but from other sentences or seeds share them.
_SAME_CLIP = ("task", "language", "question", "answer", "segments", "audio")


@dataclass(frozen=True)
class Difference:
    name: str
    a: float
    b: float
    low: float  # 95 % interval of b - a over resamples
    high: float
    b_better: float  # share of resamples where b is strictly better


def _paired(a_items: list[dict], b_items: list[dict]) -> list[dict]:
    """b's answers in a's order (so one draw picks the same clips of both), once they are known to
    answer the same clips."""
    a, b = {i["id"]: i for i in a_items}, {i["id"]: i for i in b_items}
    if a.keys() != b.keys():
        only = sorted(a.keys() ^ b.keys())[:5]
        raise ValueError(f"the two score files answer different clips (e.g. {only}): score both bundles on the same "
                         "evaluation set (python -m train score BUNDLE --eval SET --json FILE)")
    for clip, item in a.items():
        differs = [k for k in _SAME_CLIP if item.get(k) != b[clip].get(k)]
        if differs:
            raise ValueError(f"clip {clip} is not the same clip in both files ({', '.join(differs)} differ): they come "
                             "from different evaluation sets; score both bundles on one")
    return [b[i["id"]] for i in a_items]


def compare(a_items: list[dict], b_items: list[dict], resamples: int = RESAMPLES, seed: int = 0) -> list[Difference]:
    """Per metric of train/score.py's summary: both values, and b - a's 95 % paired-bootstrap interval."""
    if resamples < 1:
        raise ValueError(f"resamples={resamples}: need at least 1 (10 000 gives stable 95 % intervals)")
    ma, mb = clip_metrics(a_items), clip_metrics(_paired(a_items, b_items))
    out = []
    for name, x in ma.items():
        y = mb[name]
        # the same draws for every metric of the same clips, whatever other metrics there are
        picks = np.random.default_rng(seed).integers(0, len(x.ids), size=(resamples, len(x.ids)))
        ratio = lambda m: m.num[picks].sum(1) / np.maximum(m.den[picks].sum(1), 1)  # as Metric.value
        diff = ratio(y) - ratio(x)
        better = diff < 0 if x.lower_is_better else diff > 0
        low, high = np.percentile(diff, [2.5, 97.5])
        out.append(Difference(name, x.value(), y.value(), float(low), float(high), float(better.mean())))
    return out


def load_items(path: Path) -> list[dict]:
    """The answers in a `python -m train score --json` file."""
    hint = f"write one with python -m train score BUNDLE --json {path}"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a score file ({e}); {hint}") from None
    if not isinstance(data, dict) or "items" not in data:
        raise ValueError(f"{path}: no per-clip answers; {hint}")
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
