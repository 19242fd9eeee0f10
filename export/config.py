"""The model's shape, read from a checkpoint's config.json and validated in one place."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, replace
from typing import Any, Mapping

from export.families import MOSS_AUDIO, Family, family_of
from runtime.chunks import stem_out_len
from runtime.errors import CheckpointError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class AudioConfig:
    d_model: int
    encoder_layers: int
    encoder_attention_heads: int
    encoder_ffn_dim: int
    downsample_hidden_size: int
    output_dim: int
    num_mel_bins: int = 128
    n_window: int = 200
    layer_norm_eps: float = 1e-5
    deepstack_encoder_layer_indexes: tuple[int, ...] = (8, 16, 24)

    @property
    def chunk_frames(self) -> int:
        """Upstream encodes the mel in independent chunks of 2*n_window frames."""
        return 2 * self.n_window

    @property
    def stem_features(self) -> int:
        """stem_proj input width: channels x mel bins left after the stem."""
        return self.downsample_hidden_size * stem_out_len(self.num_mel_bins)

    @property
    def has_out_proj(self) -> bool:
        return self.output_dim != self.d_model


@dataclass(frozen=True)
class TextConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int


@dataclass(frozen=True)
class ModelConfig:
    audio: AudioConfig
    text: TextConfig
    adapter_hidden_size: int
    deepstack_num_inject_layers: int | None
    family: Family = MOSS_AUDIO

    @property
    def n_deepstack(self) -> int:
        """Taps actually used: upstream keeps the first deepstack_num_inject_layers."""
        k = len(self.audio.deepstack_encoder_layer_indexes)
        if self.deepstack_num_inject_layers is not None:
            k = min(k, self.deepstack_num_inject_layers)
        return k

    @property
    def deepstack_layers(self) -> tuple[int, ...]:
        return self.audio.deepstack_encoder_layer_indexes[: self.n_deepstack]

    @property
    def row_width(self) -> int:
        """Width of one packed audio row [main | tap0 | ...] fed to the decoder."""
        return self.text.hidden_size * (1 + self.n_deepstack)

    # Where the decoder's tensors are, and which llama.cpp architecture carries it.
    lm_prefix = "language_model."
    lm_head = "lm_head.weight"  # None (a tied head): the embedding
    arch = "qwen3vl"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "ModelConfig":
        family = family_of(raw)
        for section in ("audio_config", "language_config"):
            if not isinstance(raw.get(section), Mapping):
                raise CheckpointError(
                    f"config.json has no '{section}' object; this is not a MOSS-Audio checkpoint"
                )
        audio = _build(AudioConfig, raw["audio_config"], "audio_config")
        audio = replace(audio, deepstack_encoder_layer_indexes=tuple(int(i) for i in audio.deepstack_encoder_layer_indexes))
        text = text_config(raw["language_config"], "language_config")
        inject = raw.get("deepstack_num_inject_layers")
        config = cls(
            audio=audio,
            text=text,
            adapter_hidden_size=int(raw.get("adapter_hidden_size", 8192)),
            deepstack_num_inject_layers=None if inject is None else int(inject),
            family=family,
        )
        config._check()
        return config

    def _check(self) -> None:
        a, t = self.audio, self.text
        problems = head_problems(a.d_model, a.encoder_attention_heads, t)
        if a.d_model % 2:
            problems.append(f"audio d_model {a.d_model} must be even for sinusoidal positions")
        for i in a.deepstack_encoder_layer_indexes:
            if not 0 <= i < a.encoder_layers:
                problems.append(f"deepstack encoder layer {i} is outside 0..{a.encoder_layers - 1}")
        if self.n_deepstack > t.num_hidden_layers:
            problems.append(f"{self.n_deepstack} DeepStack taps but only {t.num_hidden_layers} LLM layers")
        refuse(problems)

    def expected_tensors(self) -> dict[str, Shape]:
        """Every weight a MOSS-Audio checkpoint of this config holds, with its shape."""
        a, t = self.audio, self.text
        c, d, f = a.downsample_hidden_size, a.d_model, a.encoder_ffn_dim
        out: dict[str, Shape] = {
            "audio_encoder.conv1.weight": (c, 1, 3, 3),
            "audio_encoder.conv2.weight": (c, c, 3, 3),
            "audio_encoder.conv3.weight": (c, c, 3, 3),
            "audio_encoder.conv1.bias": (c,),
            "audio_encoder.conv2.bias": (c,),
            "audio_encoder.conv3.bias": (c,),
            "audio_encoder.stem_proj.weight": (d, a.stem_features),
            "audio_encoder.stem_proj.bias": (d,),
            "audio_encoder.layer_norm.weight": (d,),
            "audio_encoder.layer_norm.bias": (d,),
        }
        out.update(whisper_layer_tensors("audio_encoder.", a.encoder_layers, d, f))
        if a.has_out_proj:
            out["audio_encoder.out_proj.weight"] = (a.output_dim, d)
        h, ah = t.hidden_size, self.adapter_hidden_size
        for mlp in ["audio_adapter"] + [f"deepstack_audio_merger_list.{k}" for k in range(self.n_deepstack)]:
            out[f"{mlp}.gate_proj.weight"] = (ah, a.output_dim)
            out[f"{mlp}.up_proj.weight"] = (ah, a.output_dim)
            out[f"{mlp}.down_proj.weight"] = (h, ah)
        out.update(qwen3_tensors(t, self.lm_prefix))
        out[self.lm_head] = (t.vocab_size, h)
        return out


def text_config(section: Mapping[str, Any], name: str) -> TextConfig:
    """A Qwen3 text config as config.json writes it (transformers 4 or 5 spelling)."""
    lang = dict(section)
    if "rope_theta" not in lang and isinstance(lang.get("rope_parameters"), Mapping):
        lang["rope_theta"] = lang["rope_parameters"].get("rope_theta")
    lang.setdefault("head_dim", lang.get("hidden_size", 0) // max(1, lang.get("num_attention_heads", 1)))
    lang.setdefault("num_key_value_heads", lang.get("num_attention_heads"))
    lang.setdefault("rms_norm_eps", 1e-6)
    lang.setdefault("max_position_embeddings", 40960)
    _reject_unsupported(lang, name)
    return _build(TextConfig, lang, name)


def head_problems(audio_d: int, audio_heads: int, t: TextConfig) -> list[str]:
    """What is wrong with the attention heads of both towers (nothing: [])."""
    problems = []
    if audio_d % audio_heads:
        problems.append(f"audio d_model {audio_d} is not divisible by {audio_heads} heads")
    if t.num_attention_heads % t.num_key_value_heads:
        problems.append("num_attention_heads must be a multiple of num_key_value_heads")
    return problems


def refuse(problems: list[str]) -> None:
    if problems:
        raise CheckpointError("config.json is inconsistent: " + "; ".join(problems))


def whisper_layer_tensors(prefix: str, layers: int, d: int, ffn: int) -> dict[str, Shape]:
    """Whisper encoder layers' weights (k_proj without bias) under `prefix`layers.i."""
    out: dict[str, Shape] = {}
    for i in range(layers):
        p = f"{prefix}layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out[f"{p}self_attn.{proj}.weight"] = (d, d)
            if proj != "k_proj":
                out[f"{p}self_attn.{proj}.bias"] = (d,)
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            out[f"{p}{norm}.weight"] = (d,)
            out[f"{p}{norm}.bias"] = (d,)
        out[f"{p}fc1.weight"], out[f"{p}fc1.bias"] = (ffn, d), (ffn,)
        out[f"{p}fc2.weight"], out[f"{p}fc2.bias"] = (d, ffn), (d,)
    return out


def qwen3_tensors(t: TextConfig, prefix: str) -> dict[str, Shape]:
    """The Qwen3 decoder's weights (embedding, layers, final norm) under `prefix`."""
    h = t.hidden_size
    q, kv = t.num_attention_heads * t.head_dim, t.num_key_value_heads * t.head_dim
    out: dict[str, Shape] = {prefix + "embed_tokens.weight": (t.vocab_size, h)}
    for i in range(t.num_hidden_layers):
        p = f"{prefix}layers.{i}."
        out[p + "self_attn.q_proj.weight"] = (q, h)
        out[p + "self_attn.k_proj.weight"] = (kv, h)
        out[p + "self_attn.v_proj.weight"] = (kv, h)
        out[p + "self_attn.o_proj.weight"] = (h, q)
        out[p + "self_attn.q_norm.weight"] = (t.head_dim,)
        out[p + "self_attn.k_norm.weight"] = (t.head_dim,)
        out[p + "input_layernorm.weight"] = (h,)
        out[p + "post_attention_layernorm.weight"] = (h,)
        out[p + "mlp.gate_proj.weight"] = (t.intermediate_size, h)
        out[p + "mlp.up_proj.weight"] = (t.intermediate_size, h)
        out[p + "mlp.down_proj.weight"] = (h, t.intermediate_size)
    out[prefix + "norm.weight"] = (h,)
    return out


def _build(cls: type, values: Mapping[str, Any], section: str):
    fields = cls.__dataclass_fields__
    missing = [n for n, f in fields.items() if n not in values and f.default is MISSING]
    if missing:
        raise CheckpointError(f"config.json '{section}' lacks {', '.join(missing)}")
    return cls(**{n: values[n] for n in fields if n in values and values[n] is not None})


def _reject_unsupported(lang: Mapping[str, Any], name: str) -> None:
    if lang.get("attention_bias"):
        raise CheckpointError(f"{name}.attention_bias=true is not a Qwen3 layout this exporter supports")
    scaling = lang.get("rope_scaling")
    if scaling and scaling.get("rope_type", scaling.get("type")) not in (None, "default"):
        raise CheckpointError(f"rope scaling {scaling} is not supported; only plain RoPE (Qwen3) is")
