"""The three tasks: their questions (upstream prompt format), clips of one or more sentences
with known speech boundaries, and the exact expected answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from export.processor import TRANSCRIBE_QUESTION
from train.speech import SAMPLE_RATE, trimmed
from train.texts import LANGUAGES

LANGUAGE_QUESTION = "What language is spoken?"
TIMESTAMP_QUESTION = ("Transcribe the audio into sentence-level timestamps using the format [xx.xx]text[yy.yy], "
                      "where xx.xx and yy.yy are the start and end times in seconds.")
QUESTIONS = {"transcribe": TRANSCRIBE_QUESTION, "language": LANGUAGE_QUESTION, "timestamps": TIMESTAMP_QUESTION}


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Gaps:
    """Silence around and between sentences, in seconds (drawn uniformly)."""

    lead: tuple[float, float] = (0.05, 0.6)
    pause: tuple[float, float] = (0.3, 1.0)
    tail: tuple[float, float] = (0.05, 0.5)


def compose(spoken: list[tuple[str, np.ndarray]], rng: np.random.Generator,
            gaps: Gaps = Gaps()) -> tuple[np.ndarray, list[Segment]]:
    """Join trimmed utterances with silences; each segment spans its speech onset to offset."""
    parts, segments, at = [], [], 0
    for i, (text, samples) in enumerate(spoken):
        speech = trimmed(samples)
        gap = int(rng.uniform(*(gaps.lead if i == 0 else gaps.pause)) * SAMPLE_RATE)
        parts += [np.zeros(gap, np.float32), speech]
        at += gap
        segments.append(Segment(round(at / SAMPLE_RATE, 2), round((at + speech.size) / SAMPLE_RATE, 2), text))
        at += speech.size
    parts.append(np.zeros(int(rng.uniform(*gaps.tail) * SAMPLE_RATE), np.float32))
    return np.concatenate(parts), segments


def transcript(segments: list[Segment]) -> str:
    """What the clip says: its sentences joined by spaces (the transcription answer, the CTC target)."""
    return " ".join(s.text for s in segments)


@dataclass(frozen=True)
class Anchored:
    """An answer and, per character, what in the clip it comes from: the index of the transcript
    character it writes (-1: none) and the time it names in seconds (NaN: none). Guided attention
    (train/guide.py) turns these into the audio rows each answer token should read."""

    text: str
    source: np.ndarray  # int, per character
    time: np.ndarray  # float, per character


def _timestamps(segments: list[Segment]) -> Anchored:
    text, source, time, at = "", [], [], 0
    for s in segments:
        start, end = f"[{s.start:.2f}]", f"[{s.end:.2f}]"
        text += start + s.text + end
        source += [-1] * len(start) + list(range(at, at + len(s.text))) + [-1] * len(end)
        time += [s.start] * len(start) + [np.nan] * len(s.text) + [s.end] * len(end)
        at += len(s.text) + 1  # the space that joins sentences in the transcript
    return Anchored(text, np.array(source, dtype=np.int64), np.array(time, dtype=np.float64))


def timestamp_answer(segments: list[Segment]) -> str:
    return _timestamps(segments).text


def anchored_answer(task: str, lang: str, segments: list[Segment]) -> Anchored:
    if task == "transcribe":
        text = transcript(segments)
        return Anchored(text, np.arange(len(text)), np.full(len(text), np.nan))
    if task == "language":
        text = LANGUAGES[lang]
        return Anchored(text, np.full(len(text), -1), np.full(len(text), np.nan))
    if task == "timestamps":
        return _timestamps(segments)
    raise ValueError(f"unknown task {task!r}: choose from {', '.join(QUESTIONS)}")


def answer(task: str, lang: str, segments: list[Segment]) -> str:
    return anchored_answer(task, lang, segments).text
