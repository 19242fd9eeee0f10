"""PyTorch modules of MOSS-Audio's audio side, following upstream's serving code (vLLM)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from export.config import AudioConfig, ModelConfig
from runtime.chunks import chunk_lengths


class GatedMLP(nn.Module):
    """down(silu(gate(x)) * up(x)), no biases: the adapter and each DeepStack merger."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int):
        super().__init__()
        self.gate_proj = nn.Linear(d_in, d_hidden, bias=False)
        self.up_proj = nn.Linear(d_in, d_hidden, bias=False)
        self.down_proj = nn.Linear(d_hidden, d_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Attention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        """key_bias: [B, 1, 1, T], 0 for real keys and -inf for padding."""
        b, t, _ = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) * (self.head_dim ** -0.5) + key_bias
        out = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, -1))


class EncoderLayer(nn.Module):
    """Whisper encoder layer, pre-LN, exact GELU."""

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        self.self_attn = Attention(cfg.d_model, cfg.encoder_attention_heads)
        self.self_attn_layer_norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.fc1 = nn.Linear(cfg.d_model, cfg.encoder_ffn_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_dim, cfg.d_model)
        self.final_layer_norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x), key_bias)
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


def sinusoids(length: int, channels: int) -> torch.Tensor:
    """Whisper's positions: [sin | cos] over log-spaced timescales up to 10000."""
    step = math.log(10000.0) / (channels // 2 - 1)
    inv = torch.exp(-step * torch.arange(channels // 2, dtype=torch.float32))
    t = torch.arange(length, dtype=torch.float32)[:, None] * inv[None, :]
    return torch.cat([t.sin(), t.cos()], dim=1)


def _downsampled(frames: torch.Tensor) -> torch.Tensor:
    for _ in range(3):
        frames = torch.div(frames - 1, 2, rounding_mode="floor") + 1
    return frames


class AudioEncoder(nn.Module):
    def __init__(self, cfg: AudioConfig, taps: tuple[int, ...]):
        super().__init__()
        self.cfg, self.taps = cfg, taps
        c = cfg.downsample_hidden_size
        self.conv1 = nn.Conv2d(1, c, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.stem_proj = nn.Linear(cfg.stem_features, cfg.d_model)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.layer_norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.out_proj = nn.Linear(cfg.d_model, cfg.output_dim, bias=False) if cfg.has_out_proj else nn.Identity()
        # A chunk's positions, sliced to its length: a constant in an exported graph whose chunks vary in width
        full = _downsampled(torch.tensor(cfg.chunk_frames)).item()
        self.register_buffer("positions", sinusoids(full, cfg.d_model), persistent=False)

    def encode_chunks(
        self, mel: torch.Tensor, frames: torch.Tensor, stem_frames: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """mel [B, n_mels, T] with `frames` valid per chunk -> top [B, t, out] and taps.

        The conv stem sees the zero-padded batch, as upstream's does. `stem_frames` narrows
        what it sees per chunk (positions past it are zeroed after each conv), which lets a
        fixed-width graph reproduce a chunk that upstream encodes unpadded.
        """
        x = mel.unsqueeze(1)
        for i, conv in enumerate((self.conv1, self.conv2, self.conv3), start=1):
            x = F.gelu(conv(x))
            if stem_frames is not None:
                valid = stem_frames
                for _ in range(i):
                    valid = torch.div(valid - 1, 2, rounding_mode="floor") + 1
                keep = torch.arange(x.shape[-1], device=x.device)[None, :] < valid[:, None]
                x = x * keep[:, None, None, :].to(x.dtype)
        x = self.stem_proj(x.permute(0, 3, 1, 2).flatten(2))
        x = x + self.positions[: x.shape[1]].to(x.dtype)
        real = torch.arange(x.shape[1], device=x.device)[None, :] < _downsampled(frames)[:, None]
        key_bias = torch.zeros(real.shape, dtype=x.dtype, device=x.device).masked_fill(~real, float("-inf"))
        key_bias = key_bias[:, None, None, :]
        taps: list[torch.Tensor] = []
        for i, layer in enumerate(self.layers):
            x = layer(x, key_bias)
            if i in self.taps:
                taps.append(x)
        top = self.out_proj(self.layer_norm(x))
        return top, [self.out_proj(t) for t in taps]

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One clip's mel [n_mels, T] -> top [N, out] and taps [N, out], N = ceil(T/8).

        Chunks of 2*n_window frames, the last shorter; all padded to the longest and
        encoded as one batch, valid tokens kept in order (upstream's forward).
        """
        size = self.cfg.chunk_frames
        lengths = chunk_lengths(mel.shape[-1], size)
        width = max(lengths)
        batch = mel.new_zeros((len(lengths), mel.shape[0], width))
        for i, n in enumerate(lengths):
            batch[i, :, :n] = mel[:, i * size : i * size + n]
        frames = torch.tensor(lengths, device=mel.device)
        top, taps = self.encode_chunks(batch, frames)
        keep = torch.arange(top.shape[1], device=mel.device)[None, :] < _downsampled(frames)[:, None]
        return top[keep], [t[keep] for t in taps]


class AudioTower(nn.Module):
    """Encoder + adapter + mergers: mel to the packed decoder rows [main | tap0 | ...]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        a = config.audio
        self.audio_encoder = AudioEncoder(a, config.deepstack_layers)
        self.audio_adapter = GatedMLP(a.output_dim, config.adapter_hidden_size, config.text.hidden_size)
        self.deepstack_audio_merger_list = nn.ModuleList(
            GatedMLP(a.output_dim, config.adapter_hidden_size, config.text.hidden_size)
            for _ in range(config.n_deepstack)
        )

    def pack(self, top: torch.Tensor, taps: list[torch.Tensor]) -> torch.Tensor:
        parts = [self.audio_adapter(top)] + [m(t) for m, t in zip(self.deepstack_audio_merger_list, taps)]
        return torch.cat(parts, dim=-1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.pack(*self.audio_encoder(mel))



def load_tower(ckpt) -> nn.Module:
    """The audio side of a checkpoint (no LLM tensors read): MOSS-Audio's tower, or a windowed family's."""
    from export.diarize.config import DiarizeConfig

    if isinstance(ckpt.config, DiarizeConfig):
        from export.diarize.modeling import WindowTower

        return load_streaming(WindowTower(ckpt.config), ckpt, "").eval()
    return load_streaming(AudioTower(ckpt.config), ckpt, "").eval()


def load_streaming(module: nn.Module, ckpt, prefix: str) -> nn.Module:
    """Copy checkpoint tensors into `module` one at a time: peak memory is the module plus one
    tensor, not a second copy of the model (the 4B in FP32 barely fits 24 GB as it is)."""
    names = set(module.state_dict())
    with torch.no_grad():
        for name, target in module.state_dict(keep_vars=True).items():
            target.copy_(ckpt.tensor(prefix + name))
    stored = {n[len(prefix):] for n in ckpt.weight_files if n.startswith(prefix)}
    if prefix == "":
        stored = {n for n in stored if not n.startswith((ckpt.config.lm_prefix, "lm_head."))}
    if stored != names:
        raise RuntimeError(f"weights do not match the module: {sorted(stored ^ names)[:5]}")
    return module
