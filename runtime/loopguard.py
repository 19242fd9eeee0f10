"""Stop a generation that repeats itself: a known failure of audio LLMs on silence and under
quantization ("thank you. thank you. thank you. ..." until max_new_tokens)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoopGuard:
    """A loop is the same span of 1..max_period tokens repeated back to back until the repeats
    cover at least `min_tokens` tokens and `min_repeats` copies."""

    max_period: int = 64
    min_repeats: int = 4
    min_tokens: int = 24

    def looping(self, tokens: list[int]) -> bool:
        """Whether the end of `tokens` is such a loop (checked after each new token)."""
        n = len(tokens)
        last = tokens[-1] if tokens else None
        for period in range(1, min(self.max_period, n // self.min_repeats) + 1):
            if tokens[n - 1 - period] != last:
                continue
            span = max(self.min_tokens, period * self.min_repeats)
            if span > n:
                continue
            tail = tokens[n - span :]
            if tail[period:] == tail[:-period]:
                return True
        return False
