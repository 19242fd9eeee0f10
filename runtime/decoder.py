"""The decoder stage: the prompt in as few batches as n_batch allows, then token-by-token.

Audio spans go in as embedding batches of packed rows [main | taps]; a time-marker digit
inside a span takes its token embedding (the exporter's digit rows, dequantized as this GGUF
embeds them) and a zero DeepStack part.
The rest of the prompt goes in as token batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable, Iterator, Sequence

import numpy as np

from runtime.errors import BundleError, PromptError
from runtime.llama import LlamaContext, LlamaModel
from runtime.manifest import TokenIds
from runtime.prompt import Prompt
from runtime.sampling import GenerationOptions, Sampler

CTX_ROUND = 256  # contexts are sized up to a multiple of this, and reused while large enough


@dataclass(frozen=True)
class DecoderOptions:
    n_threads: int | None = None  # None: all cores
    n_gpu_layers: int = 0  # -1: all layers on the GPU
    n_batch: int = 512
    kv_type: str = "f16"  # f16 as llama.cpp defaults
    # llama.cpp's CPU flash attention works in f16 whatever kv_type says: with "off" and
    # kv_type f32 the F32 decoder matches the reference to ~1e-6 relative; "auto" gives ~1.5e-3.
    flash_attn: str = "auto"
    repack: bool = True  # llama.cpp's CPU weight repacking (see runtime/placement/profiles)
    verbose: bool = False


@dataclass(frozen=True)
class Run:
    """Prompt positions [start, stop) decoded the same way."""

    start: int
    stop: int
    embedded: bool


def prompt_runs(prompt: Prompt, digits: tuple[int, ...]) -> list[Run]:
    """Audio spans (audio rows plus the marker digits among and right after them) vs text."""
    is_audio = prompt.audio_rows >= 0
    is_digit = np.isin(prompt.ids, np.asarray(digits))
    runs: list[Run] = []
    i, n = 0, len(prompt)
    while i < n:
        j = i + 1
        if is_audio[i]:
            while j < n and (is_audio[j] or is_digit[j]):
                j += 1
        else:
            while j < n and not is_audio[j]:
                j += 1
        runs.append(Run(i, j, bool(is_audio[i])))
        i = j
    return runs


def position_keys(prompt: Prompt, row_keys: Sequence[Hashable] | None) -> list[Hashable]:
    """What each prompt position holds: a token id, or its audio row's key."""
    unique = object()
    rows = prompt.audio_rows.tolist()
    return [int(t) if r < 0 else (row_keys[r] if row_keys is not None else (unique, r))
            for t, r in zip(prompt.ids.tolist(), rows)]


def common_prefix(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


class Decoder:
    """`context` caps the positions a prompt and its answer may use (the plan's context)."""

    def __init__(self, path: Path, tokens: TokenIds, row_width: int, context: int,
                 options: DecoderOptions = DecoderOptions(), marker_rows: np.ndarray | None = None,
                 arch: str = "qwen3vl", grow: Callable[[int, int, int], int] | None = None):
        """grow(need, wanted, old) says how far the context may grow from old positions (at least
        need, at most wanted) with the memory there is, or raises (runtime.placement.plan.grown_context)."""
        self.model = LlamaModel(path, n_gpu_layers=options.n_gpu_layers, repack=options.repack, verbose=options.verbose)
        if self.model.arch != arch or self.model.n_embd_inp != row_width:
            raise BundleError(
                f"{path.name} is a {self.model.arch} GGUF taking rows of {self.model.n_embd_inp}, but this bundle's "
                f"encoder makes rows of {row_width}: the decoder is from a different model; re-export the bundle")
        self.tokens, self.options = tokens, options
        self.threads = options.n_threads or os.cpu_count() or 1
        if marker_rows is not None and marker_rows.shape != (len(tokens.digits), self.model.n_embd):
            raise BundleError(f"the digit rows for {path.name} have shape {marker_rows.shape}, the model embeds "
                              f"{self.model.n_embd}: they belong to another model; re-export the bundle")
        self.marker_rows = marker_rows
        self.context_limit = min(context, self.model.n_ctx_train)
        self.grow = grow
        self.ctx: LlamaContext | None = None
        self.cached: list[Hashable] = []  # what each position of the context's cache holds (see prefill)

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        return self.model.tokenize(text, special)

    def _context_for(self, n_tokens: int) -> tuple[LlamaContext, bool]:
        """A context of at least n_tokens positions, and whether it is new (empty)."""
        if n_tokens > self.context_limit:
            raise PromptError(f"the prompt needs {n_tokens} positions but the planned context is "
                              f"{self.context_limit}: shorten the audio or the question")
        if self.ctx is not None and self.ctx.n_ctx >= n_tokens:
            return self.ctx, False
        size = min(self.context_limit, -(-n_tokens // CTX_ROUND) * CTX_ROUND)
        if self.grow is not None:
            size = self.grow(n_tokens, size, self.allocated)
        if self.ctx is not None:
            self.ctx.close()
        self.ctx = LlamaContext(self.model, n_ctx=size, n_batch=self.options.n_batch, n_threads=self.threads,
                                kv_type=self.options.kv_type, flash_attn=self.options.flash_attn)
        self.cached = []
        return self.ctx, True

    @property
    def allocated(self) -> int:
        """Positions of the context allocated now (0 before the first prompt)."""
        return self.ctx.n_ctx if self.ctx is not None else 0

    def reserve(self, n_tokens: int) -> None:
        """Size the context for n_tokens now (a session that will grow), keeping what it holds if it fits."""
        self._context_for(n_tokens)

    def _embedding_rows(self, prompt: Prompt, rows: np.ndarray, run: Run) -> np.ndarray:
        width, hidden = rows.shape[1], self.model.n_embd
        out = np.zeros((run.stop - run.start, width), dtype=np.float32)
        which = prompt.audio_rows[run.start : run.stop]
        audio = which >= 0
        out[audio] = rows[which[audio]]
        for k in np.flatnonzero(~audio):
            if self.marker_rows is None:
                raise BundleError("this prompt has time markers but the bundle lists no digit rows for its decoder; "
                                  "re-export the bundle")
            digit = self.tokens.digits.index(int(prompt.ids[run.start + k]))
            out[k, :hidden] = self.marker_rows[digit]
        return out

    def prefill(self, prompt: Prompt, rows: np.ndarray, *, row_keys: Sequence[Hashable] | None = None,
                reserve: int = 0, logits: str = "last") -> np.ndarray:
        """Decode the prompt; `reserve` positions stay free for generation (context permitting).

        The cache keeps what an earlier prompt left: positions up to where it and this prompt
        first differ are reused, not decoded again. A text position is its token id; an audio
        position is its row's key (`row_keys[i]` for row i: equal keys promise equal rows), or
        unique to this call when no keys are given. With logits="all" nothing is reused."""
        if rows.shape[0] != prompt.n_audio:
            raise PromptError(f"{rows.shape[0]} audio rows for a prompt with {prompt.n_audio} audio positions")
        keys = position_keys(prompt, row_keys)
        ctx, _ = self._context_for(max(len(prompt), min(self.context_limit, len(prompt) + reserve)))
        start = 0 if logits == "all" else min(common_prefix(self.cached, keys), len(prompt) - 1)
        if start:
            ctx.truncate(start)
        else:
            ctx.clear()
        self.cached = keys[:start]
        out = []
        runs = [r for r in prompt_runs(prompt, self.tokens.digits) if r.stop > start]
        for r_i, run in enumerate(runs):
            for first in range(max(run.start, start), run.stop, ctx.n_batch):
                stop = min(run.stop, first + ctx.n_batch)
                final = r_i == len(runs) - 1 and stop == run.stop
                mode = logits if (logits == "all" or final) else "none"
                piece = Run(first, stop, run.embedded)
                if run.embedded:
                    got = ctx.decode(first, embd=self._embedding_rows(prompt, rows, piece), logits=mode)
                else:
                    got = ctx.decode(first, tokens=prompt.ids[first:stop], logits=mode)
                self.cached += keys[first:stop]
                if got is not None:
                    out.append(got)
        return np.concatenate(out)

    def step(self, token: int, position: int, logits: str = "last", copy: bool = True) -> np.ndarray:
        del self.cached[position:]
        got = self.ctx.decode(position, tokens=np.asarray([token]), logits=logits, copy=copy)[-1]
        self.cached.append(token)
        return got

    def forget(self) -> None:
        """Empty the cache (after decoding into the context by hand, as the bench does)."""
        if self.ctx is not None:
            self.ctx.clear()
        self.cached = []

    def truncate(self, position: int) -> None:
        """Keep the cache's first `position` positions (a session's audio, say) and forget the rest."""
        if self.ctx is not None and position < len(self.cached):
            self.ctx.truncate(position)
            del self.cached[position:]

    def generate(self, prompt: Prompt, rows: np.ndarray, options: GenerationOptions,
                 stop_ids: tuple[int, ...] | None = None, row_keys: Sequence[Hashable] | None = None) -> Iterator[int]:
        """Yield sampled ids; stops after a stop id (yielded; default the EOS ids), max_new_tokens,
        or a full context."""
        logits = self.prefill(prompt, rows, row_keys=row_keys, reserve=options.max_new_tokens)[-1]
        sampler, history = Sampler(options), prompt.ids.tolist()
        eos = set(self.tokens.eos if stop_ids is None else stop_ids)
        position = len(prompt)
        for produced in range(options.max_new_tokens):
            token = sampler(logits, history)
            yield token
            if token in eos or produced + 1 == options.max_new_tokens or position + 1 > self.room:
                return
            history.append(token)
            logits = self.step(token, position, copy=False)  # read by the sampler before the next decode
            position += 1

    @property
    def room(self) -> int:
        """Positions the current context may hold."""
        return min(self.ctx.n_ctx, self.context_limit)

    def close(self) -> None:
        if self.ctx is not None:
            self.ctx.close()
        self.model.close()

