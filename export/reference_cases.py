"""The PyTorch reference run on clips, kept as the cases every variant is measured against."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from quant.cases import TOP_K, Case, top_k
from quant.expected import Expected
from quant.metrics import log_softmax
from runtime.audio import AudioInput
from runtime.sampling import GenerationOptions

GREEDY_TOKENS = 32


def reference_cases(reference, audio: Sequence[AudioInput], question: str, n_tokens: int = GREEDY_TOKENS,
                    k: int = TOP_K) -> list[Case]:
    """Each clip's prompt, rows, greedy continuation, and the reference's top-k next tokens at the
    last prompt position and each continuation step."""
    cases = []
    for i, clip in enumerate(audio):
        samples = reference.samples(clip)
        prompt, rows = reference.prepare([samples], question)
        cont = reference.generate(prompt, rows, GenerationOptions(max_new_tokens=n_tokens, temperature=0))
        logits = reference.logits(prompt, rows, cont[:-1])[len(prompt) - 1 :]
        tokens, logprobs = top_k(log_softmax(logits.numpy().astype(np.float64)), k)
        name = Path(str(clip)).name if isinstance(clip, (str, Path)) else f"array{i}"
        cases.append(Case(name, samples, prompt, rows.numpy(), cont, tokens, logprobs))
    return cases


def reference_expected(reference, audio: Sequence[AudioInput], question: str,
                       n_tokens: int = GREEDY_TOKENS) -> Expected:
    return Expected(reference_cases(reference, audio, question, n_tokens), question,
                    str(reference.dtype).removeprefix("torch."), str(reference.device))
