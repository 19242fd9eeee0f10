"""MOSS-Transcribe-Diarize's shape, from its config.json (configuration_moss_transcribe_diarize.py).

`text_config` is a Qwen3 (tied embeddings unless it says otherwise), `audio_config` a Whisper
encoder; `audio_merge_size` consecutive encoder frames are concatenated before the adaptor
(Linear -> SiLU -> Linear -> LayerNorm), whose rows replace the audio placeholders at the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from export.config import (Shape, TextConfig, _build, head_problems, qwen3_tensors, refuse, text_config,
                           whisper_layer_tensors)
from export.families import MOSS_TRANSCRIBE_DIARIZE, Family
from runtime.errors import CheckpointError


@dataclass(frozen=True)
class WhisperConfig:
    num_mel_bins: int
    d_model: int
    encoder_layers: int
    encoder_attention_heads: int
    encoder_ffn_dim: int
    max_source_positions: int = 1500
    activation_function: str = "gelu"
    scale_embedding: bool = False
    layer_norm_eps: float = 1e-5  # Whisper's nn.LayerNorm default

    @property
    def window_frames(self) -> int:
        """Mel frames of one window: the stride-2 conv stem leaves max_source_positions."""
        return 2 * self.max_source_positions


@dataclass(frozen=True)
class DiarizeConfig:
    audio: WhisperConfig
    text: TextConfig
    audio_merge_size: int
    adaptor_input_dim: int
    tied: bool
    family: Family = MOSS_TRANSCRIBE_DIARIZE
    n_deepstack = 0
    lm_prefix = "model.language_model."
    arch = "qwen3"  # llama.cpp's stock architecture: rows at the input only, 1-D RoPE

    @property
    def row_width(self) -> int:
        return self.text.hidden_size

    @property
    def lm_head(self) -> str | None:
        return None if self.tied else "lm_head.weight"

    @property
    def window_tokens(self) -> int:
        return self.audio.max_source_positions // self.audio_merge_size

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "DiarizeConfig":
        for section in ("audio_config", "text_config"):
            if not isinstance(raw.get(section), Mapping):
                raise CheckpointError(f"config.json has no '{section}' object; this is not a MOSS-Transcribe-Diarize "
                                      "checkpoint")
        audio = _build(WhisperConfig, raw["audio_config"], "audio_config")
        text = text_config(raw["text_config"], "text_config")
        merge = int(raw.get("audio_merge_size", 4))
        tied = bool(raw.get("tie_word_embeddings", raw["text_config"].get("tie_word_embeddings", True)))
        config = cls(audio=audio, text=text, audio_merge_size=merge,
                     adaptor_input_dim=int(raw.get("adaptor_input_dim") or audio.d_model * merge), tied=tied)
        config._check()
        return config

    def _check(self) -> None:
        a, t = self.audio, self.text
        problems = head_problems(a.d_model, a.encoder_attention_heads, t)
        if a.activation_function != "gelu" or a.scale_embedding:
            problems.append("only Whisper's exact GELU without embedding scaling is supported")
        if a.max_source_positions % self.audio_merge_size:
            problems.append(f"{a.max_source_positions} encoder frames do not merge by {self.audio_merge_size}")
        if self.adaptor_input_dim != a.d_model * self.audio_merge_size:
            problems.append(f"adaptor_input_dim {self.adaptor_input_dim} is not d_model x audio_merge_size")
        refuse(problems)

    def expected_tensors(self) -> dict[str, Shape]:
        """Every weight the checkpoint holds (upstream's ForConditionalGeneration), with its shape."""
        a, t = self.audio, self.text
        d, f, h = a.d_model, a.encoder_ffn_dim, t.hidden_size
        w = "model.whisper_encoder."
        out: dict[str, Shape] = {
            w + "conv1.weight": (d, a.num_mel_bins, 3), w + "conv1.bias": (d,),
            w + "conv2.weight": (d, d, 3), w + "conv2.bias": (d,),
            w + "embed_positions.weight": (a.max_source_positions, d),
            w + "layer_norm.weight": (d,), w + "layer_norm.bias": (d,),
        }
        out.update(whisper_layer_tensors(w, a.encoder_layers, d, f))
        v = "model.vq_adaptor.layers."
        out.update({v + "0.weight": (h, self.adaptor_input_dim), v + "0.bias": (h,), v + "2.weight": (h, h),
                    v + "2.bias": (h,), v + "3.weight": (h,), v + "3.bias": (h,)})
        out.update(qwen3_tensors(t, self.lm_prefix))
        if not self.tied:
            out["lm_head.weight"] = (t.vocab_size, h)
        return out
