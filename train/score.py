"""Scores of a bundle on an evaluation set (torch-free: numpy, rapidfuzz and the runtime).

Text normalization (CER, WER, language answers): Unicode NFC, lower case, every character
that is neither a letter/digit nor whitespace replaced by a space, runs of spaces collapsed.
CER and WER are corpus-level: total edit distance over total reference length.

Timestamps: '[a]text[b]' segments are parsed from the answer and paired with the true
segments in order. A pair contributes |a - a'| + |b - b'|; every segment without a partner
(missing or extra) contributes two boundaries of error equal to the clip's duration each,
the largest error a boundary inside the clip can have. The mean absolute error is the total
over all boundaries of max(predicted, true) segments per clip.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein

# Longest answer scored here and decoded in PyTorch (TrainableMossAudio.greedy): the same cap, so
# a pilot's looping decoder is cut where the bundle's is.
MAX_ANSWER_TOKENS = 256

_SEGMENT = re.compile(r"\[(\d+(?:\.\d+)?)\](.*?)\[(\d+(?:\.\d+)?)\]", re.S)


def normalize_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text).lower()
    text = "".join(c if (c.isalnum() or c.isspace()) else " " for c in text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    text: str


def parse_segments(text: str) -> list[Span]:
    """'[0.00]one[1.20][1.50]two[2.80]' -> spans in order; text outside that form is ignored."""
    return [Span(float(a), float(b), t.strip()) for a, t, b in _SEGMENT.findall(text)]


def edits(ref: str, hyp: str) -> tuple[int, int, int, int]:
    """(char edits, ref chars, word edits, ref words) after normalization."""
    r, h = normalize_text(ref), normalize_text(hyp)
    return Levenshtein.distance(r, h), len(r), Levenshtein.distance(r.split(), h.split()), len(r.split())


def timestamp_error(pred: list[Span], true: list[Span], duration: float) -> tuple[float, int]:
    """(total absolute boundary error in seconds, boundaries counted); see the module doc."""
    paired = min(len(pred), len(true))
    err = sum(abs(p.start - t.start) + abs(p.end - t.end) for p, t in zip(pred, true))
    err += 2 * duration * (max(len(pred), len(true)) - paired)
    return err, 2 * max(len(pred), len(true))


@dataclass(frozen=True)
class Metric:
    """A ratio of per-clip sums, sum(num) / sum(den), over the clips of one task (ids in item order):
    what `summarize` reports and what `train compare` resamples."""

    ids: tuple[str, ...]
    num: np.ndarray
    den: np.ndarray
    lower_is_better: bool

    def value(self) -> float:
        return float(self.num.sum() / max(self.den.sum(), 1))


def clip_metrics(items: list[dict]) -> dict[str, Metric]:
    """Every metric of the summary as per-clip sums, keyed by its summary name."""
    out: dict[str, Metric] = {}

    def add(name: str, lower: bool, chosen: list[dict], sums: list[tuple[float, float]]) -> None:
        if chosen:
            num, den = zip(*sums)
            out[name] = Metric(tuple(i.get("id", "") for i in chosen), np.array(num, dtype=float),
                               np.array(den, dtype=float), lower)

    for key, keep in (("en", lambda i: i["language"] == "English"), ("all", lambda i: True)):
        chosen = [i for i in items if i["task"] == "transcribe" and keep(i)]
        counted = [edits(i["answer"], i["prediction"]) for i in chosen]
        add(f"cer_{key}", True, chosen, [c[:2] for c in counted])
        add(f"wer_{key}", True, chosen, [c[2:] for c in counted])
    lang = [i for i in items if i["task"] == "language"]
    add("language_accuracy", False, lang, [(normalize_text(i["prediction"]) == normalize_text(i["answer"]), 1) for i in lang])
    stamps = [i for i in items if i["task"] == "timestamps"]
    pred = [parse_segments(i["prediction"]) for i in stamps]
    true = [[Span(s["start"], s["end"], s["text"]) for s in i["segments"]] for i in stamps]
    add("timestamp_mae_s", True, stamps, [timestamp_error(p, t, i["seconds"]) for p, t, i in zip(pred, true, stamps)])
    add("timestamp_segment_count_accuracy", False, stamps, [(len(p) == len(t), 1) for p, t in zip(pred, true)])
    add("timestamp_text_cer", True, stamps,
        [edits(" ".join(s.text for s in t), " ".join(s.text for s in p))[:2] for p, t in zip(pred, true)])
    return out


def summarize(items: list[dict]) -> dict:
    """Aggregate per-item results (each with task, language, answer, prediction, ...)."""
    metrics = clip_metrics(items)
    out: dict = {name: m.value() for name, m in metrics.items()}
    for count, name in (("n_transcribe_en", "cer_en"), ("n_transcribe_all", "cer_all"), ("n_language", "language_accuracy"),
                        ("n_timestamps", "timestamp_mae_s")):
        if name in metrics:
            out[count] = len(metrics[name].ids)
    return out


def score_bundle(bundle: Path, eval_dir: Path, *, encoder: str = "fp32", decoder: str = "f32",
                 max_new_tokens: int = MAX_ANSWER_TOKENS) -> dict:
    """Greedy answers of one encoder/decoder variant for every clip, and their summary."""
    from runtime.pipeline import Pipeline

    eval_dir = Path(eval_dir)
    lines = [json.loads(x) for x in (eval_dir / "eval.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    pipe = Pipeline.load(bundle, device="cpu", encoder=encoder, decoder=decoder, kv_type="f32", flash_attn="off")
    t0 = time.perf_counter()
    items = []
    for line in lines:
        got = pipe.generate(eval_dir / line["audio"], line["question"], temperature=0.0, max_new_tokens=max_new_tokens)
        items.append({**line, "prediction": got.text})
    summary = summarize(items)
    summary.update(encoder=encoder, decoder=decoder, seconds=round(time.perf_counter() - t0, 1))
    return {"summary": summary, "items": items}


def format_scores(s: dict) -> str:
    parts = [f"{s.get('encoder', '?')}/{s.get('decoder', '?')}:"]
    if "cer_en" in s:
        parts.append(f"CER(en) {100 * s['cer_en']:.2f}% WER(en) {100 * s['wer_en']:.2f}% [{s['n_transcribe_en']}]")
    if "cer_all" in s:
        parts.append(f"CER(all) {100 * s['cer_all']:.2f}% [{s['n_transcribe_all']}]")
    if "language_accuracy" in s:
        parts.append(f"language {100 * s['language_accuracy']:.1f}% [{s['n_language']}]")
    if "timestamp_mae_s" in s:
        parts.append(f"timestamps MAE {s['timestamp_mae_s']:.3f} s, count {100 * s['timestamp_segment_count_accuracy']:.0f}%,"
                     f" text CER {100 * s['timestamp_text_cer']:.2f}% [{s['n_timestamps']}]")
    return " ".join(parts)
