"""Guided attention: an alignment prior on one head of chosen decoder layers, for training only.

The trained decoder reads template sentences but not sequences of random words, which even a
weaker encoder's CTC head reads better (README, "The decoder is what does not listen"): its first
word is often right and then it loses its place in the audio and writes words it knows. Attention-based
speech models learn to follow the audio in order slowly; a penalty on attention mass far from where
the answer is (Tachibana et al. 2017 put it on the diagonal, for TTS) makes the alignment come sooner.
Here: head 0 of each guided layer, from every position that predicts a transcript or timestamp
token, to the audio rows; the target row of each is where it is spoken (train/align.py: forced
alignment of the transcript to the step's own CTC outputs) or the time it names, and mass on text
positions counts fully.

Nothing of it reaches the checkpoint: it shapes what the head learns, not the architecture.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn
from transformers.models.qwen3.modeling_qwen3 import rotate_half


def head_attention(attn: nn.Module, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                   head: int = 0) -> torch.Tensor:
    """Causal attention probabilities [B, L, L] of one head of a Qwen3Attention, computed as it
    computes them (q/k norm, RoPE, scaling); its SDPA path does not return them."""
    b, n, _ = hidden.shape
    d = attn.head_dim
    q = attn.q_norm(attn.q_proj(hidden).view(b, n, -1, d))[:, :, head]
    kv_head = head // (attn.config.num_attention_heads // attn.config.num_key_value_heads)
    k = attn.k_norm(attn.k_proj(hidden).view(b, n, -1, d))[:, :, kv_head]
    q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    scores = (q @ k.transpose(1, 2)) * attn.scaling
    future = torch.ones(n, n, dtype=torch.bool, device=hidden.device).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(-1)


@contextmanager
def attention_taps(layers: nn.ModuleList, which: tuple[int, ...]) -> Iterator[list[torch.Tensor]]:
    """While inside, each forward through the chosen layers appends head 0's probabilities."""
    probs: list[torch.Tensor] = []

    def hook(module, args, kwargs, _output):
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        probs.append(head_attention(module, hidden, *kwargs["position_embeddings"]))

    handles = [layers[i].self_attn.register_forward_hook(hook, with_kwargs=True) for i in which]
    try:
        yield probs
    finally:
        for h in handles:
            h.remove()


def aligned_penalty(audio_rows: torch.Tensor, targets: torch.Tensor, width: float) -> torch.Tensor:
    """[J, L]: 1 - exp(-(a - t)^2 / 2 width^2) on audio row a for an answer position whose target
    row is t (train/align.py), and 1 on every text position."""
    pen = 1 - torch.exp(-((audio_rows[None, :].float() - targets[:, None]) ** 2) / (2 * width * width))
    return torch.where(audio_rows[None, :] >= 0, pen, torch.ones_like(pen))


def guide_loss(probs: list[torch.Tensor], audio_rows: torch.Tensor, labels: torch.Tensor,
               targets: list[torch.Tensor | None], width: float, ignore: int) -> torch.Tensor:
    """Mean over clips and tapped heads of the attention mass the penalty weighs, per guided answer
    position: 0 when each looks only near its target row. targets[b]: [J] rows, NaN for answer
    tokens not guided; None for a clip with none."""
    total, count = probs[0].new_zeros(()), 0
    for b, target in enumerate(targets):
        if target is None or bool(torch.isnan(target).all()):
            continue
        answer = torch.nonzero(labels[b] != ignore).flatten()
        guided = ~torch.isnan(target)
        pen = aligned_penalty(audio_rows[b], target[guided], width)
        for p in probs:
            total = total + (p[b, answer[guided]] * pen).sum(-1).mean()
            count += 1
    return total / max(1, count)
