"""Audio longer than the context: windows with overlap, read lazily, answers joined.

Each window is read from the file on its own (an hour of audio is never in memory at once),
answered with the usual prompt, its timestamps shifted to absolute time, and its text joined
to the previous window's without the words both heard in the overlap.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from runtime.audio import AudioInput, as_samples, channels_last, file_info, read_file, to_model_rate
from runtime.errors import AudioError, OptionsError

MAX_WINDOW_S = 30.0  # upstream's serving limit per clip (vLLM DEFAULT_MAX_AUDIO_SECONDS)
OVERLAP_S = 2.0
MIN_WINDOW_S = 4.0
WORDS_PER_SECOND = 4.0  # fast speech: bounds how many words the overlap can hold
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class AudioWindow:
    index: int
    start_s: float
    samples: np.ndarray  # at the model's rate, mono float32
    rate: int

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.rate


def is_auto(window: object) -> bool:
    return isinstance(window, str) and window.strip().lower() == "auto"


def window_size(window: object, fits_s: float, longest_s: float = MAX_WINDOW_S) -> float:
    """'auto' (any case) or a number of seconds, checked; 'auto' is the longest that fits, at most
    longest_s."""
    if is_auto(window):
        return min(longest_s, fits_s)
    try:
        size = float(window)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise OptionsError(f"window {window!r}: give 'auto' or a number of seconds") from None
    if not math.isfinite(size) or size < MIN_WINDOW_S:
        raise OptionsError(f"window {window!r}: give 'auto' or a number of seconds of at least {MIN_WINDOW_S:.0f}")
    return size


def source_duration_s(audio: AudioInput, rate: int, sample_rate: int | None = None) -> float:
    """Length without decoding the whole file."""
    if isinstance(audio, (str, Path)):
        frames, file_rate = file_info(Path(audio))
        return frames / file_rate
    return channels_last(as_samples(audio)).shape[0] / (sample_rate or rate)


def iter_windows(audio: AudioInput, window_s: float, rate: int, overlap_s: float = OVERLAP_S,
                 min_samples: int = 1) -> Iterator[AudioWindow]:
    """Windows of `window_s` seconds starting every window_s - overlap_s seconds, at `rate`."""
    if window_s < MIN_WINDOW_S or overlap_s >= window_s / 2:
        raise AudioError(f"window {window_s:.1f} s with overlap {overlap_s:.1f} s: windows need at least "
                         f"{MIN_WINDOW_S:.0f} s and an overlap under half of them")
    hop = window_s - overlap_s
    total = source_duration_s(audio, rate)
    index, start = 0, 0.0
    while start < total:
        stop = min(total, start + window_s)
        samples = _read_span(audio, start, stop, rate)
        if samples.size >= min_samples or index == 0:
            yield AudioWindow(index, start, samples, rate)
        if stop >= total:
            return
        index, start = index + 1, start + hop


def _read_span(audio: AudioInput, start_s: float, stop_s: float, rate: int) -> np.ndarray:
    """One window at the model's rate."""
    if isinstance(audio, (str, Path)):
        _, file_rate = file_info(Path(audio))
        block, _ = read_file(Path(audio), int(start_s * file_rate), int(round((stop_s - start_s) * file_rate)))
    else:
        file_rate = rate
        block = channels_last(as_samples(audio))[int(start_s * rate) : int(round(stop_s * rate))]
    return to_model_rate(block, file_rate, rate, f"the audio at {start_s:.1f} s")


def join_seam(previous: str, following: str, overlap_s: float = OVERLAP_S) -> str:
    """`following` without its opening words when they repeat the end of `previous` (the overlap
    was heard twice). Only a run of at least two words that ends `previous` and starts
    `following` (one mis-heard word allowed before it), within what the overlap can hold, counts;
    compared case- and punctuation-insensitively. The rest of `following` keeps its lines."""
    limit = max(3, math.ceil(overlap_s * WORDS_PER_SECOND))
    prev_words = _WORD.findall(previous)[-limit:]
    spans = list(_WORD.finditer(following))[:limit]
    a, b = _norm(prev_words), _norm([m.group() for m in spans])
    match = max(difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks(), key=lambda m: m.size)
    if match.size >= 2 and match.a + match.size == len(a) and match.b <= 1 and any(a[match.a:]):
        cut = match.b + match.size
        return following[spans[cut].start():] if cut < len(spans) else ""
    return following


def join_windows(previous: str, following: str) -> str:
    """Window answers one after another: lines stay lines."""
    if not previous or not following:
        return previous or following
    return previous + ("\n" if "\n" in previous or "\n" in following else " ") + following


def _norm(words: list[str]) -> list[str]:
    return [re.sub(r"[^\w]", "", w).lower() for w in words]
