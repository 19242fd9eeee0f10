"""Importance matrix from audio prompts: the mean squared input of each decoder matmul column.

llama.cpp's imatrix tool sees only text; MOSS-Audio's decoder also sees audio rows (and
DeepStack taps), whose activations differ. The PyTorch reference runs the real audio
prompts, and hooks on its linear layers read the inputs directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from runtime.audio import AudioInput
from runtime.sampling import GenerationOptions

CONTINUATION_TOKENS = 32  # greedy tokens appended (teacher-forced) so generated positions count too


@dataclass
class ImportanceMatrix:
    values: dict[str, np.ndarray]  # GGUF tensor name -> float32 [in_features]
    tokens: int  # positions averaged over
    clips: int


def collect_imatrix(reference, clips: Sequence[AudioInput], question: str | None = None,
                    continuation: int = CONTINUATION_TOKENS) -> ImportanceMatrix:
    import torch

    from export.decoder_gguf import gguf_name

    question = reference.ckpt.prompt_info.default_question if question is None else question
    sums: dict[str, torch.Tensor] = {}
    total = 0
    modules = [(f"language_model.{n}.weight", m) for n, m in reference.language_model.named_modules()
               if isinstance(m, torch.nn.Linear)]
    if reference.config.lm_head:  # a tied head is token_embd, which llama.cpp quantizes without one
        modules.append(("lm_head.weight", reference.lm_head))

    def hook_for(name: str):
        def hook(_module, inputs):
            x = inputs[0].detach().float().reshape(-1, inputs[0].shape[-1])
            sums[name] = sums.get(name, 0) + (x * x).sum(0)

        return hook

    for clip in clips:
        prompt, rows = reference.prepare([clip], question)
        tokens = reference.generate(prompt, rows, GenerationOptions(max_new_tokens=continuation, temperature=0))
        handles = [m.register_forward_pre_hook(hook_for(gguf_name(n))) for n, m in modules]
        try:
            reference.logits(prompt, rows, tokens[:-1])
        finally:
            for h in handles:
                h.remove()
        total += len(prompt) + len(tokens) - 1
    values = {name: (s / total).cpu().numpy().astype(np.float32) for name, s in sums.items()}
    return ImportanceMatrix(values=values, tokens=total, clips=len(clips))
