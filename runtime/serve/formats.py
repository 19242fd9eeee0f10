"""A transcript in the response_format asked for: json, text, verbose_json, srt or vtt.

Segments are the model's own timestamps where it gives them (runtime.segments: upstream's
`[0.00]text[2.01]`, `start - end: text` lines, windowed clock times), else one per window.
A diarizing model's speaker labels go into verbose_json (`speaker`), and into SRT and WebVTT
as the cue's speaker (`[S01] text` and `<v S01>text`). What the caller should know about how
it was answered (`Result.notes`: e.g. a recording too long for one pass went in windows, so
speaker labels restart in each) goes into verbose_json as `notes`."""

from __future__ import annotations

from starlette.responses import JSONResponse, PlainTextResponse, Response

from runtime.segments import Segment
from runtime.serve.jobs import Finished

RESPONSE_FORMATS = ("json", "text", "verbose_json", "srt", "vtt")
STREAMABLE = ("json", "text")  # a stream sends text events, whatever the format


def transcript(fmt: str, done: Finished, duration_s: float, language: str | None) -> Response:
    text = done.text.strip()
    usage = {"type": "duration", "seconds": round(duration_s, 3)}
    if fmt == "text":
        return PlainTextResponse(text + "\n")
    if fmt == "srt":
        return PlainTextResponse(srt(transcript_segments(done, duration_s)))
    if fmt == "vtt":
        return PlainTextResponse(vtt(transcript_segments(done, duration_s)), media_type="text/vtt")
    if fmt == "verbose_json":
        body = {"task": "transcribe", "duration": round(duration_s, 3), "text": text,
                "segments": [{"id": i, "seek": 0, "start": s.start, "end": s.end, "text": s.text}
                             | ({"speaker": s.speaker} if s.speaker else {})
                             for i, s in enumerate(transcript_segments(done, duration_s))], "usage": usage}
        if done.result.notes:
            body["notes"] = list(done.result.notes)
        return JSONResponse({**body, "language": language} if language else body)
    return JSONResponse({"text": text, "usage": usage})


def transcript_segments(done: Finished, duration_s: float) -> list[Segment]:
    """The answer's own timestamps, else one per window; a clip short enough for one window was
    answered unwindowed (to stream), so it is that one window."""
    found = done.result.segments
    text = done.text.strip()
    return found if found or not text else [Segment(0.0, round(duration_s, 3), text)]


def srt(segments: list[Segment]) -> str:
    return "".join(f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n"
                   f"{f'[{s.speaker}] ' if s.speaker else ''}{s.text}\n\n" for i, s in enumerate(segments, 1))


def vtt(segments: list[Segment]) -> str:
    return "WEBVTT\n\n" + "".join(f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n"
                                  f"{f'<v {s.speaker}>' if s.speaker else ''}{s.text}\n\n" for s in segments)


def _clock(seconds: float, decimal_mark: str) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{decimal_mark}{ms:03d}"
