"""What an answer is: typed text pieces as they stream, and the whole result with its timings."""

from __future__ import annotations

import codecs
import threading
from dataclasses import dataclass, field
from typing import Iterator

from runtime.segments import Segment, parse_segments

FINISH_REASONS = ("stop", "length", "loop", "cancelled")


class Piece(str):
    """A piece of streamed text; `kind` is "answer" or "reasoning" (a thinking model's <think> part)."""

    kind: str

    def __new__(cls, text: str, kind: str = "answer") -> "Piece":
        piece = super().__new__(cls, text)
        piece.kind = kind
        return piece


@dataclass
class Timings:
    encode_s: float = 0.0
    prefill_s: float = 0.0
    prefill_tokens: int = 0
    decode_s: float = 0.0
    decode_tokens: int = 0

    @property
    def prefill_tok_s(self) -> float:
        return self.prefill_tokens / self.prefill_s if self.prefill_s else 0.0

    @property
    def decode_tok_s(self) -> float:
        return self.decode_tokens / self.decode_s if self.decode_s else 0.0

    def add(self, other: "Timings") -> None:
        for name in ("encode_s", "prefill_s", "prefill_tokens", "decode_s", "decode_tokens"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> dict:
        return {"encode_s": round(self.encode_s, 4), "prefill_s": round(self.prefill_s, 4),
                "prefill_tok_s": round(self.prefill_tok_s, 2), "decode_s": round(self.decode_s, 4),
                "decode_tok_s": round(self.decode_tok_s, 2)}


@dataclass
class Window:
    """One window of a long clip: where it starts and what was answered about it (times absolute)."""

    start_s: float
    duration_s: float
    text: str

    def to_dict(self) -> dict:
        return {"start_s": round(self.start_s, 3), "duration_s": round(self.duration_s, 3), "text": self.text}


@dataclass
class Result:
    text: str = ""
    reasoning: str = ""
    token_ids: list[int] = field(default_factory=list)
    prompt_token_ids: list[int] = field(default_factory=list)
    finish_reason: str = ""  # stop (EOS) | length (max_new_tokens or the context) | loop | cancelled
    timings: Timings = field(default_factory=Timings)
    windows: list[Window] = field(default_factory=list)  # with window=: one per window
    notes: list[str] = field(default_factory=list)  # what the caller should know about how it was answered

    @property
    def segments(self) -> list[Segment]:
        """The answer's own timestamps as segments (absolute times); with windows and no
        timestamps in the answer, one segment per window."""
        last = self.windows[-1] if self.windows else None
        found = parse_segments(self.text, end=last.start_s + last.duration_s if last else None)
        if found or not self.windows:
            return found
        return [Segment(w.start_s, w.start_s + w.duration_s, w.text) for w in self.windows if w.text]

    def to_dict(self) -> dict:
        return {"text": self.text, "reasoning": self.reasoning, "token_ids": self.token_ids,
                "prompt_token_ids": self.prompt_token_ids, "finish_reason": self.finish_reason,
                "segments": [s.to_dict() for s in self.segments], "timings": self.timings.to_dict(),
                "windows": [w.to_dict() for w in self.windows], "notes": self.notes}


class Stream:
    """The pieces of one answer as they are generated; `result` fills in as they are read.

    Iterate it (or `with` it); a stream left before its end holds the pipeline until it is
    closed, so close() it (or use `with`) when you stop early."""

    def __init__(self, pieces: Iterator[Piece] | None, result: Result, *, reasoning: bool = False,
                 cancelled: threading.Event | None = None):
        self._pieces, self.result, self.reasoning = pieces, result, reasoning
        self._parts: dict[str, list[str]] = {"answer": [], "reasoning": []}
        self._cancelled = cancelled or threading.Event()

    def __iter__(self) -> Iterator[Piece]:
        for piece in self._pieces or ():
            self._parts[piece.kind].append(piece)
            self.result.text, self.result.reasoning = "".join(self._parts["answer"]), "".join(self._parts["reasoning"])
            if piece.kind == "answer" or self.reasoning:
                yield piece
        self.result.text, self.result.reasoning = self.result.text.strip(), self.result.reasoning.strip()

    def text(self) -> str:
        """Read to the end; the whole answer."""
        for _ in self:
            pass
        return self.result.text

    def cancel(self) -> None:
        """Ask the generation to stop at its next token (finish_reason "cancelled"); safe from any
        thread, e.g. a server's when its client disconnects while another thread iterates."""
        self._cancelled.set()

    def close(self) -> None:
        """Stop generating (the result says finish_reason "cancelled") and free the pipeline.
        From the thread that iterates; other threads use cancel()."""
        close = getattr(self._pieces, "close", None)
        if close:
            close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ThinkSplitter:
    """Routes token text to 'reasoning' inside <think>...</think> and 'answer' elsewhere."""

    def __init__(self, start: int | None, end: int | None, opens_in_reasoning: bool = False):
        self.start, self.end = start, end
        self.kind = "reasoning" if opens_in_reasoning else "answer"
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.seen_answer = False

    def feed(self, token: int, piece: bytes) -> Iterator[Piece]:
        if token == self.start:
            yield from self.flush()
            self.kind = "reasoning"
            return
        if token == self.end:
            yield from self.flush()
            self.kind, self.seen_answer = "answer", False
            return
        text = self.utf8.decode(piece)
        if self.kind == "answer" and not self.seen_answer:
            text = text.lstrip()  # the answer after </think> opens with blank lines
            self.seen_answer = bool(text)
        if text:
            yield Piece(text, self.kind)

    def flush(self) -> Iterator[Piece]:
        text = self.utf8.decode(b"", final=True)
        if text:
            yield Piece(text, self.kind)
