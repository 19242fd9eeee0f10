"""What an answer is: text and reasoning, token ids, timings; streamed or whole."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import Iterator


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

    def to_dict(self) -> dict:
        return {"encode_s": round(self.encode_s, 4), "prefill_s": round(self.prefill_s, 4),
                "prefill_tok_s": round(self.prefill_tok_s, 2), "decode_s": round(self.decode_s, 4),
                "decode_tok_s": round(self.decode_tok_s, 2)}


@dataclass
class Result:
    text: str
    reasoning: str
    token_ids: list[int]
    prompt_token_ids: list[int]
    stop_reason: str  # "eos", "max_new_tokens" or "context"
    timings: Timings = field(default_factory=Timings)
    windows: list[dict] = field(default_factory=list)  # with window=: start_s, duration_s, text each

    def to_dict(self) -> dict:
        return {"text": self.text, "reasoning": self.reasoning, "token_ids": self.token_ids,
                "prompt_token_ids": self.prompt_token_ids, "stop_reason": self.stop_reason,
                "timings": self.timings.to_dict(), "windows": self.windows}


class Stream:
    """The text pieces of one answer; `result` fills in as they are read."""

    def __init__(self, pieces: Iterator[str], result: Result):
        self._pieces, self.result = pieces, result

    def __iter__(self) -> Iterator[str]:
        for piece in self._pieces:
            self.result.text += piece
            yield piece


class ThinkSplitter:
    """Routes token text to 'reasoning' inside <think>...</think> and 'answer' elsewhere."""

    def __init__(self, start: int | None, end: int | None):
        self.start, self.end = start, end
        self.kind = "answer"
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.seen_answer = False

    def feed(self, token: int, piece: bytes) -> Iterator[tuple[str, str]]:
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
            yield self.kind, text

    def flush(self) -> Iterator[tuple[str, str]]:
        text = self.utf8.decode(b"", final=True)
        if text:
            yield self.kind, text
