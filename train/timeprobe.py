"""Time probe: a training-only head that reads each audio row's time off the decoder's hidden state.

The timestamp answers get the whole second roughly and not the fraction: the shipped model's
boundaries end in a few habitual digit pairs (".99", ".96", ".52", ".55") and are 0.59 s off on
clips whose segment count is right. A timestamp token is guided to attend to the row where its
boundary is (train/guide.py), but what it reads there has to say when that row is: the encoder
knows a row's place only inside its 4 s chunk (its positions restart every chunk), the whole
seconds only the time-marker digits between rows say. This head asks the hidden state of every
audio row, at the input of a chosen decoder layer, for the digits of its time (whole seconds,
tenths, hundredths of the row's centre), so that the layers from there on find the time where the
guide points them. Like the CTC head it is not in the checkpoint. Off by default: what it did to a
full run is in TrainConfig and the README.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

SECONDS = 32  # classes for the whole seconds; later rows count as the last (training clips are shorter)
CLASSES = (SECONDS, 10, 10)  # seconds, tenths, hundredths


def row_time_digits(rows: torch.Tensor, tokens_per_second: float) -> torch.Tensor:
    """[N, 3] long: (seconds, tenths, hundredths) of each audio row's centre, rows counted from 0."""
    centis = torch.round((rows.double() + 0.5) * 100 / tokens_per_second).long()
    return torch.stack([(centis // 100).clamp(max=SECONDS - 1), centis // 10 % 10, centis % 10], dim=-1)


def time_probe_loss(head: nn.Linear, hidden: torch.Tensor, audio_rows: torch.Tensor,
                    tokens_per_second: float) -> torch.Tensor:
    """Mean over the three digits of the cross-entropy of `head` on every audio position of the
    batch. hidden: [B, L, h]; audio_rows: [B, L], the clip's row index or -1 for a token."""
    where = audio_rows >= 0
    logits = head(hidden[where]).float().split(CLASSES, dim=-1)
    target = row_time_digits(audio_rows[where], tokens_per_second)
    return torch.stack([F.cross_entropy(lg, target[:, k]) for k, lg in enumerate(logits)]).mean()


@contextmanager
def layer_input(layers: nn.ModuleList, index: int) -> Iterator[list[torch.Tensor]]:
    """While inside, each forward through layers[index] appends the hidden states it is given: the
    output of the layer below with its DeepStack part already added."""
    seen: list[torch.Tensor] = []

    def hook(_module, args, kwargs):
        seen.append(kwargs["hidden_states"] if "hidden_states" in kwargs else args[0])

    handle = layers[index].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield seen
    finally:
        handle.remove()
