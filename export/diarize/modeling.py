"""PyTorch modules of MOSS-Transcribe-Diarize's audio side: one 30 s window's mel to its rows.

Whisper's encoder (conv stem of two Conv1d with GELU, learned positions, pre-LN layers, final
LayerNorm), `audio_merge_size` consecutive frames concatenated, then the VQ adaptor. Parameter
names follow upstream's checkpoint (model.whisper_encoder.*, model.vq_adaptor.layers.*).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from export.diarize.config import DiarizeConfig
from export.modeling import EncoderLayer


class WhisperEncoder(nn.Module):
    def __init__(self, cfg) -> None:
        super().__init__()
        d = cfg.d_model
        self.conv1 = nn.Conv1d(cfg.num_mel_bins, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(cfg.max_source_positions, d)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.layer_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, n_mels, window frames] -> [B, max_source_positions, d]."""
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        x = x + self.embed_positions.weight[None, : x.shape[1]]
        no_mask = torch.zeros((1, 1, 1, x.shape[1]), dtype=x.dtype, device=x.device)
        for layer in self.layers:
            x = layer(x, no_mask)
        return self.layer_norm(x)


class Adaptor(nn.Module):
    def __init__(self, d_in: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(d_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                    nn.LayerNorm(hidden, eps=eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Model(nn.Module):
    """Named as upstream's inner `model`, so checkpoint names load as they are."""

    def __init__(self, config: DiarizeConfig) -> None:
        super().__init__()
        self.whisper_encoder = WhisperEncoder(config.audio)
        # upstream builds the adaptor's LayerNorm with the text config's rms_norm_eps
        self.vq_adaptor = Adaptor(config.adaptor_input_dim, config.text.hidden_size, config.text.rms_norm_eps)


class WindowTower(nn.Module):
    """mel [B, n_mels, window frames] -> rows [B, window tokens, hidden]; a window of n samples keeps
    its first (n - 1) // samples_per_token + 1 rows (the runtime's and the reference's cut)."""

    def __init__(self, config: DiarizeConfig) -> None:
        super().__init__()
        self.config = config
        self.model = Model(config)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        frames = self.model.whisper_encoder(mel)
        b, t, d = frames.shape
        merged = frames.reshape(b, t // self.config.audio_merge_size, d * self.config.audio_merge_size)
        return self.model.vq_adaptor(merged)
