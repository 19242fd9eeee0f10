"""Which audio row each answer token should read: the guided-attention targets (train/guide.py).

A transcript token's row is where the CTC head of the same training step emits its first letter on
the most probable path that spells exactly the transcript (forced alignment, Viterbi over CTC's
states): it moves with what the encoder hears, where a prior of words evenly spread over the clip
does not. A timestamp token's row is the time it names. Other tokens (language names, the closing
<|im_end|>, the spaces) are not guided.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from train.tasks import Anchored


def ctc_first_frames(log_probs: np.ndarray, target: Sequence[int], blank: int) -> np.ndarray:
    """[S]: the frame at which each target symbol is first emitted on the best CTC path through
    log_probs [T, C]; -1 for all when no path fits (fewer frames than the target needs)."""
    frames, length = log_probs.shape[0], len(target)
    if length == 0:
        return np.full(0, -1)
    y = np.asarray(target, dtype=np.int64)
    states = np.full(2 * length + 1, blank, dtype=np.int64)
    states[1::2] = y
    n = len(states)
    # A symbol's state may be entered from two states back, skipping the blank between, unless it
    # repeats the symbol before it (CTC needs a blank between repeats).
    skip = np.zeros(n, dtype=bool)
    skip[3::2] = y[1:] != y[:-1]
    need = length + int((y[1:] == y[:-1]).sum())
    if frames < max(1, need):
        return np.full(length, -1)
    low = -np.inf
    score = np.full(n, low)
    score[:2] = log_probs[0, states[:2]]
    back = np.zeros((frames, n), dtype=np.int8)
    for t in range(1, frames):
        stay, step = score, np.concatenate(([low], score[:-1]))
        jump = np.where(skip, np.concatenate(([low, low], score[:-2])), low)
        moves = np.stack([stay, step, jump])
        best = moves.argmax(0)
        score = moves[best, np.arange(n)] + log_probs[t, states]
        back[t] = best
    s = n - 1 if score[n - 1] >= score[n - 2] else n - 2
    first = np.full(length, -1)
    for t in range(frames - 1, -1, -1):
        if s % 2:
            first[s // 2] = t
        s -= int(back[t, s])
    return first


@dataclass(frozen=True)
class Anchors:
    """Per answer token (the closing <|im_end|> included): the CTC target symbol whose emission
    places it (-1: none), else the audio row it names (NaN: not guided)."""

    symbol: torch.Tensor  # long [J]
    row: torch.Tensor  # float [J]

    def rows(self, first_frames: np.ndarray, per_row: int) -> torch.Tensor:
        """[J] target audio rows given where the CTC path first emits each symbol; NaN: unguided."""
        placed = torch.full_like(self.row, float("nan"))
        known = self.symbol >= 0
        frames = torch.from_numpy(first_frames).to(torch.float32)[self.symbol[known]]
        placed[known] = torch.where(frames >= 0, frames / per_row, torch.nan)
        return torch.where(known, placed, self.row)

    @property
    def any(self) -> bool:
        return self.aligned or bool((~torch.isnan(self.row)).any())

    @property
    def aligned(self) -> bool:
        """Some token is placed by forced alignment."""
        return bool((self.symbol >= 0).any())


def token_anchors(answer: Anchored, spans: list[tuple[int, int]], symbol_of_char: np.ndarray,
                  rows_per_second: float, closing: int = 1) -> Anchors:
    """Anchors of the answer's tokens (character `spans`, as the tokenizer cut them) and of the
    `closing` tokens after it: a token is placed by its first non-space character that is a CTC
    target symbol (`symbol_of_char` maps transcript characters to symbols, -1 for those CTC drops),
    else by the mean time its characters name."""
    symbols, rows = [], []
    for a, b in spans:
        chars = [i for i in range(a, b) if answer.source[i] >= 0 and answer.text[i] != " "
                 and symbol_of_char[answer.source[i]] >= 0]
        times = answer.time[a:b][~np.isnan(answer.time[a:b])]
        symbols.append(int(symbol_of_char[answer.source[chars[0]]]) if chars else -1)
        rows.append(float(times.mean()) * rows_per_second if not chars and len(times) else float("nan"))
    return Anchors(torch.tensor(symbols + [-1] * closing, dtype=torch.long),
                   torch.tensor(rows + [float("nan")] * closing, dtype=torch.float32))
