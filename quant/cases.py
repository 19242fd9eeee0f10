"""One clip as the reference saw it: what every variant is measured against."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.prompt import Prompt

TOP_K = 64  # reference tokens kept per compared position; KL is taken over this set, renormalized


@dataclass
class Case:
    name: str
    samples: np.ndarray  # at the model's rate
    prompt: Prompt
    rows: np.ndarray  # reference packed rows, float32
    continuation: list[int]  # reference greedy tokens
    ref_tokens: np.ndarray  # [positions, k]: most likely first, at the last prompt position and each continuation step
    ref_logprobs: np.ndarray  # [positions, k] their log-probabilities

    @property
    def first_position(self) -> int:
        """Where the compared positions start: the last prompt position (its prediction is the answer's first)."""
        return len(self.prompt) - 1


def top_k(logprobs: np.ndarray, k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
    """The k most likely tokens per row, most likely first, and their log-probabilities."""
    k = min(k, logprobs.shape[-1])
    part = np.argpartition(-logprobs, k - 1, axis=-1)[:, :k]
    vals = np.take_along_axis(logprobs, part, -1)
    order = np.argsort(-vals, axis=-1, kind="stable")
    return np.take_along_axis(part, order, -1), np.take_along_axis(vals, order, -1)
