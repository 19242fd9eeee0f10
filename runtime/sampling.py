"""Token selection: greedy, temperature, top-k, top-p, repetition penalty, seeded."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

from runtime.errors import OptionsError


@dataclass(frozen=True)
class GenerationOptions:
    """Upstream's generation defaults; temperature 0 is greedy. Validated once, here."""

    max_new_tokens: int = 1024
    temperature: float = 1.0
    top_k: int = 50  # 0 disables
    top_p: float = 1.0  # 1 disables
    repetition_penalty: float = 1.0  # HF semantics over prompt + generated ids
    seed: int = 0

    def __post_init__(self) -> None:
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

    @classmethod
    def from_kwargs(cls, **kwargs) -> "GenerationOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown generation option(s) {unknown}; known: {sorted(known)}")
        return cls(**kwargs)


class Sampler:
    def __init__(self, options: GenerationOptions):
        self.options = options
        self.rng = np.random.default_rng(options.seed)

    def __call__(self, logits: np.ndarray, history: Sequence[int] = ()) -> int:
        o = self.options
        logits = np.asarray(logits, dtype=np.float64)
        if o.repetition_penalty != 1.0 and len(history):
            seen = np.unique(np.asarray(history))
            seen = seen[(seen >= 0) & (seen < logits.size)]
            logits = logits.copy()
            vals = logits[seen]
            logits[seen] = np.where(vals > 0, vals / o.repetition_penalty, vals * o.repetition_penalty)
        if o.temperature == 0:
            return int(np.argmax(logits))
        logits = logits / o.temperature
        if 0 < o.top_k < logits.size:
            kth = np.partition(logits, -o.top_k)[-o.top_k]
            logits = np.where(logits < kth, -np.inf, logits)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        if o.top_p < 1.0:
            order = np.argsort(-probs, kind="stable")
            before = np.cumsum(probs[order]) - probs[order]  # mass of strictly better tokens
            probs[order[before >= o.top_p]] = 0.0
            probs /= probs.sum()
        return int(self.rng.choice(probs.size, p=probs))
