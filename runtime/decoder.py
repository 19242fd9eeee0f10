"""The decoder stage: the prompt in as few batches as n_batch allows, then token-by-token.

Audio spans go in as embedding batches of packed rows [main | taps]; a time-marker digit
inside a span takes its token embedding (read from the GGUF) and a zero DeepStack part.
The rest of the prompt goes in as token batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from runtime.errors import BundleError, PromptError
from runtime.llama import LlamaContext, LlamaModel
from runtime.prompt import Prompt, TokenIds
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


class Decoder:
    def __init__(self, path: Path, tokens: TokenIds, row_width: int, options: DecoderOptions = DecoderOptions()):
        self.model = LlamaModel(path, n_gpu_layers=options.n_gpu_layers, verbose=options.verbose)
        if self.model.arch != "qwen3vl" or self.model.n_embd_inp != row_width:
            raise BundleError(
                f"{path.name} is a {self.model.arch} GGUF taking rows of {self.model.n_embd_inp}, but this bundle's "
                f"encoder makes rows of {row_width}: the decoder is from a different model; re-export the bundle")
        self.tokens, self.options = tokens, options
        self.threads = options.n_threads or os.cpu_count() or 1
        self.marker_rows = _token_rows(path, tokens.digits, self.model.n_embd)
        self.ctx: LlamaContext | None = None

    @property
    def context_limit(self) -> int:
        return self.model.n_ctx_train

    def tokenize(self, text: str) -> list[int]:
        return self.model.tokenize(text)

    def _context_for(self, n_tokens: int) -> LlamaContext:
        if n_tokens > self.context_limit:
            raise PromptError(f"the prompt needs {n_tokens} positions but the model's context is "
                              f"{self.context_limit}: shorten the audio or the question")
        if self.ctx is None or self.ctx.n_ctx < n_tokens:
            if self.ctx is not None:
                self.ctx.close()
            size = min(self.context_limit, -(-n_tokens // CTX_ROUND) * CTX_ROUND)
            self.ctx = LlamaContext(self.model, n_ctx=size, n_batch=self.options.n_batch,
                                    n_threads=self.threads, kv_type=self.options.kv_type,
                                    flash_attn=self.options.flash_attn)
        self.ctx.clear()
        return self.ctx

    def _embedding_rows(self, prompt: Prompt, rows: np.ndarray, run: Run) -> np.ndarray:
        width, hidden = rows.shape[1], self.model.n_embd
        out = np.zeros((run.stop - run.start, width), dtype=np.float32)
        which = prompt.audio_rows[run.start : run.stop]
        audio = which >= 0
        out[audio] = rows[which[audio]]
        for k in np.flatnonzero(~audio):
            digit = self.tokens.digits.index(int(prompt.ids[run.start + k]))
            out[k, :hidden] = self.marker_rows[digit]
        return out

    def prefill(self, prompt: Prompt, rows: np.ndarray, *, reserve: int = 0, logits: str = "last") -> np.ndarray:
        """Decode the prompt; `reserve` positions stay free for generation (context permitting)."""
        if rows.shape[0] != prompt.n_audio:
            raise PromptError(f"{rows.shape[0]} audio rows for a prompt with {prompt.n_audio} audio positions")
        ctx = self._context_for(max(len(prompt), min(self.context_limit, len(prompt) + reserve)))
        runs = prompt_runs(prompt, self.tokens.digits)
        out = []
        for r_i, run in enumerate(runs):
            for start in range(run.start, run.stop, ctx.n_batch):
                stop = min(run.stop, start + ctx.n_batch)
                final = r_i == len(runs) - 1 and stop == run.stop
                mode = logits if (logits == "all" or final) else "none"
                piece = Run(start, stop, run.embedded)
                if run.embedded:
                    got = ctx.decode(start, embd=self._embedding_rows(prompt, rows, piece), logits=mode)
                else:
                    got = ctx.decode(start, tokens=prompt.ids[start:stop], logits=mode)
                if got is not None:
                    out.append(got)
        return np.concatenate(out)

    def step(self, token: int, position: int, logits: str = "last") -> np.ndarray:
        return self.ctx.decode(position, tokens=np.asarray([token]), logits=logits)[-1]

    def generate(self, prompt: Prompt, rows: np.ndarray, options: GenerationOptions,
                 stop_ids: tuple[int, ...] | None = None) -> Iterator[int]:
        """Yield sampled ids; stops after a stop id (yielded; default the EOS ids), max_new_tokens,
        or a full context."""
        logits = self.prefill(prompt, rows, reserve=options.max_new_tokens)[-1]
        sampler, history = Sampler(options), prompt.ids.tolist()
        eos = set(self.tokens.eos if stop_ids is None else stop_ids)
        position = len(prompt)
        for produced in range(options.max_new_tokens):
            token = sampler(logits, history)
            yield token
            if token in eos or produced + 1 == options.max_new_tokens or position + 1 > self.ctx.n_ctx:
                return
            history.append(token)
            logits = self.step(token, position)
            position += 1

    def close(self) -> None:
        if self.ctx is not None:
            self.ctx.close()
        self.model.close()


def _token_rows(path: Path, ids: tuple[int, ...], n_embd: int) -> np.ndarray:
    """Dequantized token-embedding rows, as the model itself would embed those tokens."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    table = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    if table is None:
        raise BundleError(f"{path.name} has no token_embd.weight; it is not a MOSS-Audio decoder")
    rows = gguf.quants.dequantize(np.asarray(table.data[list(ids)]), table.tensor_type)
    return np.asarray(rows, dtype=np.float32).reshape(len(ids), n_embd)
