"""The chat prompt with audio spans and time markers, as upstream's processor builds it.

The template, system text, default question and marker cadence come from the manifest.
The user's question is plain text: it is NFC-normalized (upstream's tokenizer does that
before BPE) and tokenized without parsing special tokens, so "<|im_end|>" typed by a user
stays text. It is tokenized together with the template text around it up to the nearest
control token, as upstream's tokenizer sees that run, so ordinary questions give upstream's ids.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from runtime.errors import PromptError
from runtime.manifest import AudioInfo, PromptInfo, TokenIds

Tokenize = Callable[[str, bool], list[int]]  # (text, parse_special) -> ids, no BOS


@dataclass(frozen=True)
class MarkerRule:
    """Elapsed-seconds digits every `every_seconds`, placed every int(tokens_per_second * every) rows."""

    every_seconds: int
    tokens_per_second: float

    @property
    def every_tokens(self) -> int:
        return int(self.tokens_per_second * self.every_seconds)

    @classmethod
    def of(cls, prompt: PromptInfo, audio: AudioInfo) -> "MarkerRule | None":
        """The manifest's rule, or None when the model has no time markers."""
        return cls(prompt.marker_every_seconds, audio.tokens_per_second) if prompt.time_markers else None


@dataclass(frozen=True)
class Prompt:
    """Token ids, and for each position the audio row it takes (-1: a token embedding)."""

    ids: np.ndarray
    audio_rows: np.ndarray
    opens_in_reasoning: bool = False  # the template pre-fills <think>: the answer starts inside it

    @property
    def n_audio(self) -> int:
        return int((self.audio_rows >= 0).sum())

    def __len__(self) -> int:
        return len(self.ids)


def audio_span_ids(n_tokens: int, tokens: TokenIds, markers: MarkerRule | None) -> list[int]:
    """Audio placeholders with the elapsed-seconds digits after every `every_tokens` of them.

    Markers go at every whole multiple of the cadence up to int(n_tokens / tokens_per_second)
    inclusive, so a span of exactly 25 tokens (2 s) ends with the marker "2" (upstream's arithmetic).
    """
    if markers is None:
        return [tokens.audio] * n_tokens
    ids: list[int] = []
    consumed = 0
    full_seconds = int(n_tokens / markers.tokens_per_second)
    for second in range(markers.every_seconds, full_seconds + 1, markers.every_seconds):
        marker_at = (second // markers.every_seconds) * markers.every_tokens
        ids += [tokens.audio] * (marker_at - consumed)
        consumed = marker_at
        ids += [tokens.digits[int(c)] for c in str(second)]
    return ids + [tokens.audio] * (n_tokens - consumed)


@dataclass(frozen=True)
class TemplateText:
    """The template around the audio spans and the question, cut where tokenization must cut."""

    head: str  # before the first clip (special tokens parsed)
    before_question: str  # after the last clip, up to the question's plain-text run (parsed)
    question_run: tuple[str, str]  # template text tokenized as plain text with the question, before/after it
    tail: str  # after the run (parsed)
    clip_separator: str

    @classmethod
    def of(cls, info: PromptInfo) -> "TemplateText":
        head, rest = info.template.replace("{system}", info.system).split("{audio}")
        pre, post = rest.split("{question}")
        specials = sorted(info.special_texts, key=len, reverse=True)
        cut_pre, cut_post = 0, len(post)
        if specials:
            pattern = re.compile("|".join(re.escape(s) for s in specials))
            ends = [m.end() for m in pattern.finditer(pre)]
            cut_pre = ends[-1] if ends else 0
            first = pattern.search(post)
            cut_post = first.start() if first else len(post)
        return cls(head, pre[:cut_pre], (pre[cut_pre:], post[:cut_post]), post[cut_post:], info.clip_separator)


def normalize_question(question: str) -> str:
    if not isinstance(question, str):
        raise PromptError(f"the question must be text, got {type(question).__name__}")
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:
        raise PromptError("the question is not valid UTF-8 text (it holds undecodable bytes); pass it as UTF-8") from None
    return unicodedata.normalize("NFC", question)


def with_hotwords(question: str, hotwords: Sequence[str]) -> str:
    """The question with a hint naming words the audio may hold, as OpenMOSS's prompt recipes append
    one (MOSS-Transcribe-Diarize examples/prompts.md): "热词提示：" after a Chinese question, else " Hotwords: "."""
    words = [w.strip() for w in hotwords if w.strip()]
    if not words:
        return question
    chinese = any("\u4e00" <= c <= "\u9fff" for c in question)
    return question + ("热词提示：" if chinese else " Hotwords: ") + ", ".join(words)


def build_prompt(tokenize: Tokenize, tokens: TokenIds, audio_token_counts: Sequence[int], question: str,
                 info: PromptInfo, markers: MarkerRule | None) -> Prompt:
    """Tokenize the template text between spans and splice the spans in."""
    if not audio_token_counts:
        raise PromptError("no audio given: MOSS-Audio prompts need at least one clip")
    if any(n <= 0 for n in audio_token_counts):
        raise PromptError("an audio clip gives no audio tokens; it is too short to be represented")
    text = TemplateText.of(info)
    question = normalize_question(question)
    ids: list[int] = []
    rows: list[int] = []

    def add_text(piece: str, special: bool) -> list[int]:
        got = tokenize(piece, special) if piece else []
        ids.extend(got)
        rows.extend([-1] * len(got))
        return got

    add_text(text.head, True)
    next_row = 0
    for i, count in enumerate(audio_token_counts):
        if i:
            add_text(text.clip_separator, True)
        span = [tokens.audio_start] + audio_span_ids(count, tokens, markers) + [tokens.audio_end]
        ids.extend(span)
        for t in span:
            rows.append(next_row if t == tokens.audio else -1)
            next_row += t == tokens.audio
    add_text(text.before_question, True)
    add_text(text.question_run[0] + question + text.question_run[1], False)
    tail = add_text(text.tail, True)
    return Prompt(ids=np.asarray(ids, dtype=np.int64), audio_rows=np.asarray(rows, dtype=np.int64),
                  opens_in_reasoning=_opens_think(tail, tokens))


def _opens_think(tail: list[int], tokens: TokenIds) -> bool:
    """A template whose assistant turn pre-fills <think> leaves the answer starting inside it."""
    if tokens.think_start is None or tokens.think_start not in tail:
        return False
    last = len(tail) - 1 - tail[::-1].index(tokens.think_start)
    return tokens.think_end not in tail[last:]
