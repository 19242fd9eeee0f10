"""Accuracy against the truth, not against the reference: a bundle's greedy answers on an
evaluation set whose transcripts, languages and sentence times are known because we made them.

The set is a folder with `eval.jsonl`, one clip a line: id, audio (a path in the folder), task
(transcribe | language | timestamps), question, answer, language, and for timestamps the true
segments [{start, end, text}].

CER and WER are corpus-level (edits over reference length, after quant.metrics.normalize_text)
on the English transcription clips. Language identification is exact after normalization.
Timestamps: the answer's segments are paired with the true ones in order; a pair adds |Δstart|
+ |Δend|; a segment without a partner adds the clip's duration for each of its two boundaries,
the worst a boundary inside the clip can be; the mean is over all boundaries counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from quant.metrics import edits, normalize_text
from runtime.errors import EncoderOverflow, OptionsError
from runtime.segments import Segment, parse_segments

TASKS = ("transcribe", "language", "timestamps")
EVAL_FILE = "eval.jsonl"


@dataclass(frozen=True)
class EvalItem:
    id: str
    audio: Path
    task: str
    question: str
    answer: str
    language: str
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class EvalScores:
    cer: float | None = None  # English transcription
    wer: float | None = None
    language_accuracy: float | None = None
    timestamp_mae_s: float | None = None
    counts: dict = field(default_factory=dict)


def load_evalset(folder: Path) -> list[EvalItem]:
    folder = Path(folder)
    path = folder / EVAL_FILE
    if not path.is_file():
        raise OptionsError(f"{folder} has no {EVAL_FILE}: give an evaluation folder (models/moss-audio-tiny/eval)")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            items.append(EvalItem(id=str(d["id"]), audio=folder / d["audio"], task=d["task"], question=d["question"],
                                  answer=d["answer"], language=d.get("language", ""),
                                  segments=tuple(Segment(float(s["start"]), float(s["end"]), s["text"])
                                                 for s in d.get("segments", ()))))
        except (ValueError, KeyError, TypeError) as e:
            raise OptionsError(f"{path}:{n} is not an evaluation line ({e})") from None
        if items[-1].task not in TASKS:
            raise OptionsError(f"{path}:{n}: task {items[-1].task!r} is none of {', '.join(TASKS)}")
    return items


def timestamp_error(predicted: Sequence[Segment], true: Sequence[Segment], duration: float) -> tuple[float, int]:
    """(total absolute boundary error in seconds, boundaries counted); see the module doc."""
    paired = min(len(predicted), len(true))
    error = sum(abs(p.start - t.start) + abs(p.end - t.end) for p, t in zip(predicted, true))
    unmatched = max(len(predicted), len(true)) - paired
    return error + 2 * duration * unmatched, 2 * max(len(predicted), len(true))


def score(items: Sequence[EvalItem], answers: Sequence[str], durations: Sequence[float]) -> EvalScores:
    chars = words = char_edits = word_edits = 0
    right = lang_total = boundaries = 0
    stamp_error = 0.0
    for item, answer, seconds in zip(items, answers, durations):
        if item.task == "transcribe" and item.language == "English":
            ref, hyp = normalize_text(item.answer), normalize_text(answer)
            char_edits, chars = char_edits + edits(ref, hyp), chars + len(ref)
            word_edits, words = word_edits + edits(ref.split(), hyp.split()), words + len(ref.split())
        elif item.task == "language":
            right, lang_total = right + (normalize_text(answer) == normalize_text(item.answer)), lang_total + 1
        elif item.task == "timestamps":
            e, b = timestamp_error(parse_segments(answer), item.segments, seconds)
            stamp_error, boundaries = stamp_error + e, boundaries + b
    counts = {"transcribe_en": sum(i.task == "transcribe" and i.language == "English" for i in items),
              "language": lang_total, "timestamps": sum(i.task == "timestamps" for i in items)}
    return EvalScores(cer=char_edits / chars if chars else None, wer=word_edits / words if words else None,
                      language_accuracy=right / lang_total if lang_total else None,
                      timestamp_mae_s=stamp_error / boundaries if boundaries else None, counts=counts)


def answer_all(pipe, items: Sequence[EvalItem], max_new_tokens: int = 256) -> tuple[list[str], list[float]]:
    """Greedy answers of a loaded Pipeline, and each clip's duration."""
    answers, durations = [], []
    rate = pipe.manifest.audio.sample_rate
    for item in items:
        samples = pipe.samples(item.audio)
        try:
            answers.append(pipe.generate(samples, item.question, temperature=0, max_new_tokens=max_new_tokens).text)
        except EncoderOverflow:  # the variant cannot answer this clip: scored as an empty answer
            answers.append("")
        durations.append(samples.size / rate)
    return answers, durations
