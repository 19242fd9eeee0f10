"""Token selection: greedy, temperature, top-k, top-p, repetition penalty, seeded (HF semantics)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

from runtime.errors import OptionsError


@dataclass(frozen=True)
class GenerationOptions:
    """Upstream's generation defaults; temperature 0 (or do_sample False) is greedy. Validated once, here."""

    max_new_tokens: int = 1024
    temperature: float = 1.0
    top_k: int = 50  # 0 disables
    top_p: float = 1.0  # 1 disables
    repetition_penalty: float = 1.0  # HF semantics over prompt + generated ids
    do_sample: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "top_k", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise OptionsError(f"{name} must be a whole number, got {value!r}")
        for name in ("temperature", "top_p", "repetition_penalty"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise OptionsError(f"{name} must be a finite number, got {value!r}")
        if not isinstance(self.do_sample, bool):
            raise OptionsError(f"do_sample must be true or false, got {self.do_sample!r}")
        if self.max_new_tokens < 1:
            raise OptionsError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise OptionsError(f"temperature must be >= 0 (0 is greedy), got {self.temperature}")
        if self.top_k < 0:
            raise OptionsError(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise OptionsError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise OptionsError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if not 0 <= self.seed < 2**63:
            raise OptionsError(f"seed must be in [0, 2**63), got {self.seed}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or not self.do_sample

    @classmethod
    def from_kwargs(cls, **kwargs) -> "GenerationOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise OptionsError(f"unknown generation option(s) {unknown}; known: {sorted(known)}")
        return cls(**kwargs)


class Sampler:
    """HF generate's logits processors (repetition penalty, temperature, top-k, top-p) and its
    draw, done on the top-k candidates when top-k is on: tokens outside it get no mass either way,
    and a 151,936-wide softmax each token is a real share of a fast decode step."""

    def __init__(self, options: GenerationOptions):
        self.options = options
        self.rng = np.random.default_rng(options.seed)

    def __call__(self, logits: np.ndarray, history: Sequence[int] = ()) -> int:
        if self.options.greedy:
            return int(np.argmax(self._penalized(np.asarray(logits), history)))
        candidates, probs = self.distribution(logits, history)
        return int(candidates[self.rng.choice(probs.size, p=probs)])

    def distribution(self, logits: np.ndarray, history: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
        """The tokens that may be drawn and their probabilities (HF's, outside them zero)."""
        o = self.options
        logits = self._penalized(np.asarray(logits), history)
        if 0 < o.top_k < logits.size:
            candidates = np.argpartition(logits, -o.top_k)[-o.top_k :]
            kth = logits[candidates].min()
            candidates = np.flatnonzero(logits >= kth)  # ties with the k-th stay in, as HF keeps them
        else:
            candidates = np.arange(logits.size)
        scaled = logits[candidates].astype(np.float64) / o.temperature
        probs = np.exp(scaled - scaled.max())
        probs /= probs.sum()
        if o.top_p < 1.0:
            order = np.argsort(-probs, kind="stable")
            before = np.cumsum(probs[order]) - probs[order]  # mass of strictly better tokens
            probs[order[before >= o.top_p]] = 0.0
            probs /= probs.sum()
        return candidates, probs

    def _penalized(self, logits: np.ndarray, history: Sequence[int]) -> np.ndarray:
        """HF's repetition penalty on the seen tokens (a copy only when there is one to apply)."""
        penalty = self.options.repetition_penalty
        if penalty == 1.0 or not len(history):
            return logits
        seen = np.unique(np.asarray(history))
        seen = seen[(seen >= 0) & (seen < logits.size)]
        logits = logits.astype(np.float32, copy=True)
        vals = logits[seen]
        logits[seen] = np.where(vals > 0, vals / penalty, vals * penalty)
        return logits
