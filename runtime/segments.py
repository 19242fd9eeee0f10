"""Timestamps in an answer: parsed into typed segments, and shifted when a window starts later.

MOSS-Audio writes times the way its prompt asks: upstream's sentence-level format
`[0.00]text[2.01][2.35]text[4.80]`, `start - end: text` lines in plain seconds, and
[MM:SS] / [HH:MM:SS] clock times in free text (lines that open with one are segments too).
MOSS-Transcribe-Diarize adds a speaker label after the start: `[0.48][S01]Good morning.[1.66]`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

_NUM = r"(\d+(?:\.\d+)?)"
_SENTENCE = re.compile(rf"\[{_NUM}\](?:\[(S\d+)\])?([^\[\]]*?)\[{_NUM}\]")
_BRACKETED = re.compile(rf"\[{_NUM}\]")
_RANGE_LINE = re.compile(r"(?m)^(\s*)(\d+(?:\.\d+)?)(\s*[-\u2013]\s*)(\d+(?:\.\d+)?)(\s*:)(.*)$")
_CLOCK = re.compile(r"(?<![\d:.])(?:(\d{1,2}):)?(\d{1,2}):(\d{2})(\.\d+)?(?![\d:])")
_CLOCK_TIME = r"(?:\d{1,2}:)?\d{1,2}:\d{2}(?:\.\d+)?"
_CLOCK_LINE = re.compile(rf"(?m)^[ \t]*\[?({_CLOCK_TIME})\]?(?:[ \t]*[-\u2013][ \t]*\[?({_CLOCK_TIME})\]?)?[ \t]*:?[ \t]*"
                         r"(.*?)[ \t]*$")


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    speaker: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def parse_segments(text: str, end: float | None = None) -> list[Segment]:
    """Segments in the sentence format, else in `start - end:` lines, else in lines that open with
    a clock time (each ends where the next starts, the last at `end` when known); [] when the
    answer has none of them."""
    found = [Segment(float(a), float(b), body.strip(), speaker or None) for a, speaker, body, b in _SENTENCE.findall(text)]
    if found:
        return found
    found = [Segment(float(m.group(2)), float(m.group(4)), m.group(6).strip()) for m in _RANGE_LINE.finditer(text)]
    if found:
        return found
    lines = list(_CLOCK_LINE.finditer(text))
    starts = [_clock_seconds(m.group(1)) for m in lines]
    for i, m in enumerate(lines):
        if m.group(2):
            stop = _clock_seconds(m.group(2))
        elif i + 1 < len(lines):
            stop = starts[i + 1]
        else:
            stop = starts[i] if end is None else max(starts[i], end)
        found.append(Segment(starts[i], stop, m.group(3)))
    return found


def _clock_seconds(clock: str) -> float:
    """[HH:]MM:SS[.f] in seconds."""
    return sum(float(part) * 60**i for i, part in enumerate(reversed(clock.split(":"))))


def shift_timestamps(text: str, offset_s: float) -> str:
    """Add `offset_s` to every timestamp an answer gives relative to its window."""
    if offset_s == 0:
        return text

    def shift_range(m: re.Match) -> str:
        a, b = float(m.group(2)) + offset_s, float(m.group(4)) + offset_s
        return f"{m.group(1)}{a:.2f}{m.group(3)}{b:.2f}{m.group(5)}{m.group(6)}"

    def shift_bracketed(m: re.Match) -> str:
        return f"[{float(m.group(1)) + offset_s:.2f}]"

    def shift_clock(m: re.Match) -> str:
        seconds = _clock_seconds(m.group(0)) + offset_s
        h, rest = divmod(seconds, 3600)
        mm, ss = divmod(rest, 60)
        frac = f"{ss - int(ss):.{len(m.group(4)) - 1}f}"[1:] if m.group(4) else ""
        body = f"{int(mm):02d}:{int(ss):02d}{frac}"
        return f"{int(h):02d}:{body}" if (h or m.group(1)) else body

    text = _RANGE_LINE.sub(shift_range, text)
    text = _BRACKETED.sub(shift_bracketed, text)
    return _CLOCK.sub(shift_clock, text)
