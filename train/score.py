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


def summarize(items: list[dict]) -> dict:
    """Aggregate per-item results (each with task, language, answer, prediction, ...)."""
    out: dict = {}
    for name, keep in (("en", lambda i: i["language"] == "English"), ("all", lambda i: True)):
        rows = [edits(i["answer"], i["prediction"]) for i in items if i["task"] == "transcribe" and keep(i)]
        if rows:
            ce, cn, we, wn = (sum(x) for x in zip(*rows))
            out[f"cer_{name}"], out[f"wer_{name}"], out[f"n_transcribe_{name}"] = ce / max(1, cn), we / max(1, wn), len(rows)
    lang = [i for i in items if i["task"] == "language"]
    if lang:
        out["language_accuracy"] = sum(normalize_text(i["prediction"]) == normalize_text(i["answer"]) for i in lang) / len(lang)
        out["n_language"] = len(lang)
    stamps = [i for i in items if i["task"] == "timestamps"]
    if stamps:
        total, bounds, right, text = 0.0, 0, 0, []
        for i in stamps:
            pred = parse_segments(i["prediction"])
            true = [Span(s["start"], s["end"], s["text"]) for s in i["segments"]]
            e, b = timestamp_error(pred, true, i["seconds"])
            total, bounds, right = total + e, bounds + b, right + (len(pred) == len(true))
            text.append(edits(" ".join(s.text for s in true), " ".join(s.text for s in pred)))
        out["timestamp_mae_s"] = total / max(1, bounds)
        out["timestamp_segment_count_accuracy"] = right / len(stamps)
        out["timestamp_text_cer"] = sum(t[0] for t in text) / max(1, sum(t[1] for t in text))
        out["n_timestamps"] = len(stamps)
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
