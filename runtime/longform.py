"""Audio longer than the context: windows with overlap, read lazily, answers joined.

Each window is read from the file on its own (an hour of audio is never in memory at once),
answered with the usual prompt, its timestamps shifted to absolute time, and its text joined
to the previous window's without the words both heard in the overlap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from runtime.audio import SAMPLE_RATE, AudioInput, file_info, to_model_rate
from runtime.errors import AudioError

MAX_WINDOW_S = 30.0  # upstream's serving limit per clip (vLLM DEFAULT_MAX_AUDIO_SECONDS)
OVERLAP_S = 2.0
MIN_WINDOW_S = 4.0
SEAM_MAX_WORDS = 40

# Timestamps as MOSS-Audio writes them, following the prompt: "start_sec - end_sec:" lines in
# plain decimal seconds, and [MM:SS] / [HH:MM:SS] clock times.
_RANGE_LINE = re.compile(r"(?m)^(\s*)(\d+(?:\.\d+)?)(\s*[-\u2013]\s*)(\d+(?:\.\d+)?)(\s*:)")
_CLOCK = re.compile(r"(?<![\d:])(?:(\d{1,2}):)?(\d{1,2}):(\d{2})(\.\d+)?(?![\d:])")


@dataclass(frozen=True)
class Window:
    index: int
    start_s: float
    samples: np.ndarray  # 16 kHz mono float32

    @property
    def duration_s(self) -> float:
        return self.samples.size / SAMPLE_RATE


def source_duration_s(audio: AudioInput, sample_rate: int | None = None) -> float:
    """Length without decoding the whole file."""
    if isinstance(audio, (str, Path)):
        frames, rate = file_info(Path(audio))
        return frames / rate
    arr = np.asarray(audio)
    n = arr.shape[0] if arr.ndim == 1 or arr.shape[0] >= arr.shape[-1] else arr.shape[-1]
    return n / (sample_rate or SAMPLE_RATE)


def iter_windows(audio: AudioInput, window_s: float, overlap_s: float = OVERLAP_S) -> Iterator[Window]:
    """Windows of `window_s` seconds starting every window_s - overlap_s seconds."""
    if window_s < MIN_WINDOW_S or overlap_s >= window_s / 2:
        raise AudioError(f"window {window_s:.1f} s with overlap {overlap_s:.1f} s: windows need at least "
                         f"{MIN_WINDOW_S:.0f} s and an overlap under half of them")
    hop = window_s - overlap_s
    total = source_duration_s(audio)
    index, start = 0, 0.0
    while start < total:
        stop = min(total, start + window_s)
        samples = _read_span(audio, start, stop)
        if samples is not None:
            yield Window(index, start, samples)
        if stop >= total:
            return
        index, start = index + 1, start + hop


def _read_span(audio: AudioInput, start_s: float, stop_s: float) -> np.ndarray | None:
    """One window at 16 kHz; None for a tail too short to be a mel frame."""
    if isinstance(audio, (str, Path)):
        import soundfile

        with soundfile.SoundFile(str(audio)) as f:
            rate = f.samplerate
            f.seek(int(start_s * rate))
            block = f.read(int(round((stop_s - start_s) * rate)), dtype="float32", always_2d=True)
    else:
        block, rate = np.asarray(audio), SAMPLE_RATE
        block = block[int(start_s * rate) : int(round(stop_s * rate))]
    if block.shape[0] * SAMPLE_RATE < 160 * rate:
        return None
    return to_model_rate(block, rate, f"the audio at {start_s:.1f} s")


def shift_timestamps(text: str, offset_s: float) -> str:
    """Add `offset_s` to the timestamps an answer gives relative to its window."""
    if offset_s == 0:
        return text

    def shift_range(m: re.Match) -> str:
        a, b = float(m.group(2)) + offset_s, float(m.group(4)) + offset_s
        return f"{m.group(1)}{a:.2f}{m.group(3)}{b:.2f}{m.group(5)}"

    def shift_clock(m: re.Match) -> str:
        hours = int(m.group(1) or 0)
        seconds = hours * 3600 + int(m.group(2)) * 60 + int(m.group(3)) + float(m.group(4) or 0) + offset_s
        h, rest = divmod(seconds, 3600)
        mm, ss = divmod(rest, 60)
        frac = f"{ss - int(ss):.{len(m.group(4)) - 1}f}"[1:] if m.group(4) else ""
        body = f"{int(mm):02d}:{int(ss):02d}{frac}"
        return f"{int(h):02d}:{body}" if (h or m.group(1)) else body

    return _CLOCK.sub(shift_clock, _RANGE_LINE.sub(shift_range, text))


def join_seam(previous: str, following: str, max_words: int = SEAM_MAX_WORDS) -> str:
    """`following` without its opening words when they repeat the end of `previous`
    (the overlap was heard twice). Compared case- and punctuation-insensitively."""
    prev_words, next_words = previous.split(), following.split()

    def norm(words: list[str]) -> list[str]:
        return [re.sub(r"[^\w]", "", w).lower() for w in words]

    a, b = norm(prev_words[-max_words:]), norm(next_words[:max_words])
    for k in range(min(len(a), len(b)), 0, -1):
        if a[-k:] == b[:k] and any(a[-k:]):
            return " ".join(next_words[k:])
    return following

