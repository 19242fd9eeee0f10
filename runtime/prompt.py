"""The chat prompt with audio spans and time markers, as upstream's processor builds it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from runtime.errors import PromptError

# 16 kHz / hop 160 = 100 mel frames per second; the conv stem divides by 8 -> 12.5 tokens/s.
TOKENS_PER_SECOND = 12.5
MARKER_EVERY_SECONDS = 2
MARKER_EVERY_TOKENS = int(TOKENS_PER_SECOND * MARKER_EVERY_SECONDS)  # 25

SYSTEM_PROMPT = "You are a helpful assistant."
TRANSCRIBE_QUESTION = "Transcribe the audio."


@dataclass(frozen=True)
class TokenIds:
    """Ids the prompt and the stop rule need; read from the checkpoint, stored in the manifest."""

    audio: int
    audio_start: int
    audio_end: int
    eos: tuple[int, ...]
    digits: tuple[int, ...]  # ids of "0".."9"
    think_start: int | None = None
    think_end: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TokenIds":
        return cls(**{**d, "eos": tuple(d["eos"]), "digits": tuple(d["digits"])})


@dataclass(frozen=True)
class Prompt:
    """Token ids, and for each position the audio row it takes (-1: a token embedding)."""

    ids: np.ndarray
    audio_rows: np.ndarray

    @property
    def n_audio(self) -> int:
        return int((self.audio_rows >= 0).sum())

    def __len__(self) -> int:
        return len(self.ids)


def audio_span_ids(n_tokens: int, tokens: TokenIds, time_markers: bool = True) -> list[int]:
    """Audio placeholders with the elapsed-seconds digits after every 25 of them.

    Markers go at every whole multiple of 2 s up to int(n_tokens / 12.5) inclusive, so a
    span of exactly 25 tokens ends with the marker "2" (upstream's arithmetic).
    """
    if not time_markers:
        return [tokens.audio] * n_tokens
    ids: list[int] = []
    consumed = 0
    full_seconds = int(n_tokens / TOKENS_PER_SECOND)
    for second in range(MARKER_EVERY_SECONDS, full_seconds + 1, MARKER_EVERY_SECONDS):
        marker_at = (second // MARKER_EVERY_SECONDS) * MARKER_EVERY_TOKENS
        ids += [tokens.audio] * (marker_at - consumed)
        consumed = marker_at
        ids += [tokens.digits[int(c)] for c in str(second)]
    return ids + [tokens.audio] * (n_tokens - consumed)


def chat_texts(question: str, n_clips: int, system: str = SYSTEM_PROMPT) -> list[str]:
    """The template's text around the audio spans: n_clips + 1 pieces."""
    head = f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"
    tail = f"\n{question}<|im_end|>\n<|im_start|>assistant\n"
    return [head] + [""] * (n_clips - 1) + [tail]


def build_prompt(
    tokenize: Callable[[str], list[int]],
    tokens: TokenIds,
    audio_token_counts: Sequence[int],
    question: str,
    *,
    time_markers: bool = True,
    system: str = SYSTEM_PROMPT,
) -> Prompt:
    """Tokenize the template text between spans (special tokens parsed) and splice the spans in.

    `tokenize` must split on the tokenizer's special tokens, as upstream's does.
    """
    if not audio_token_counts:
        raise PromptError("no audio given: MOSS-Audio prompts need at least one clip")
    if any(n <= 0 for n in audio_token_counts):
        raise PromptError("an audio clip gives no audio tokens; it is too short to be represented")
    texts = chat_texts(question, len(audio_token_counts), system)
    ids: list[int] = []
    rows: list[int] = []
    next_row = 0
    for i, text in enumerate(texts):
        piece = tokenize(text) if text else []
        ids += piece
        rows += [-1] * len(piece)
        if i == len(audio_token_counts):
            break
        span = [tokens.audio_start] + audio_span_ids(audio_token_counts[i], tokens, time_markers) + [tokens.audio_end]
        ids += span
        rows += _span_rows(span, tokens.audio, next_row)
        next_row += audio_token_counts[i]
    return Prompt(ids=np.asarray(ids, dtype=np.int64), audio_rows=np.asarray(rows, dtype=np.int64))


def _span_rows(span: list[int], audio_id: int, first_row: int) -> list[int]:
    rows, row = [], first_row
    for t in span:
        if t == audio_id:
            rows.append(row)
            row += 1
        else:
            rows.append(-1)
    return rows
