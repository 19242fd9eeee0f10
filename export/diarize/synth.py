"""Synthetic MOSS-Transcribe-Diarize checkpoints: random weights in upstream's layout and files.

The files are those upstream's from_pretrained and processor read: config.json (text_config,
audio_config, audio_token_id, audio_merge_size, tied embeddings), preprocessor_config.json
(WhisperFeatureExtractor), processor_config.json (markers every 5 s), a Qwen2 BPE tokenizer
with `<|audio_start|>`, `<|audio_end|>`, `<|audio_pad|>`, chat_template.jinja, and
generation_config.json (greedy).
"""

from __future__ import annotations

import json
from pathlib import Path

from export.atomic import atomic_dir
from export.diarize.config import DiarizeConfig
from export.families import MOSS_TRANSCRIBE_DIARIZE
from export.synth import QWEN_ADDED, SynthSize, _write_weights, apply_overrides, special_ids, write_tokenizer

# Qwen-style turns; an audio item renders as upstream's processor expects it.
TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'audio' %}<|audio_start|><|audio_pad|><|audio_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Whisper-medium and Qwen3-0.6B, tied: the released 0.9B's shapes.
SIZES: dict[str, SynthSize] = {
    "tiny": SynthSize(
        audio=dict(num_mel_bins=80, d_model=64, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=128),
        text=dict(vocab_size=384, hidden_size=64, intermediate_size=160, num_hidden_layers=3, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16, max_position_embeddings=8192),
        adapter_hidden_size=0),
    "0.9b": SynthSize(
        audio=dict(num_mel_bins=80, d_model=1024, encoder_layers=24, encoder_attention_heads=16, encoder_ffn_dim=4096),
        text=dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                  num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960),
        adapter_hidden_size=0, dtype="bfloat16"),
}
AUDIO_TOKENS = MOSS_TRANSCRIBE_DIARIZE.audio_tokens  # placeholder, start, end
MARKER_EVERY_SECONDS = 5  # the release's processor_config.json


def config_dict(size: SynthSize, audio_token_id: int) -> dict:
    audio = dict(max_source_positions=1500, activation_function="gelu", scale_embedding=False, dropout=0.0,
                 attention_dropout=0.0, activation_dropout=0.0, encoder_layerdrop=0.0, **size.audio)
    text = dict(model_type="qwen3", rms_norm_eps=1e-6, rope_theta=1_000_000.0, tie_word_embeddings=True,
                attention_bias=False, hidden_act="silu", **size.text)
    return dict(model_type=MOSS_TRANSCRIBE_DIARIZE.model_type, architectures=[MOSS_TRANSCRIBE_DIARIZE.architecture],
                text_config=text, audio_config=audio, audio_token_id=audio_token_id, audio_merge_size=4,
                tie_word_embeddings=True, torch_dtype=size.dtype)


def write_diarize_checkpoint(out: Path, size: str | SynthSize, seed: int = 0, *, config_overrides: dict | None = None,
                             template: str = TEMPLATE) -> Path:
    """Write a checkpoint folder atomically; `config_overrides` edits config.json sections."""
    spec = SIZES[size] if isinstance(size, str) else size
    with atomic_dir(out) as tmp:
        base = write_tokenizer(tmp, spec.text["vocab_size"], extra=(AUDIO_TOKENS[1], AUDIO_TOKENS[2], AUDIO_TOKENS[0]))
        ids = special_ids(base)
        audio_pad = base + len(QWEN_ADDED) + 2  # added after Qwen's block: start, end, then the placeholder
        raw = apply_overrides(config_dict(spec, audio_pad), config_overrides)
        config = DiarizeConfig.from_dict(raw)
        (tmp / "config.json").write_text(json.dumps(raw, indent=2))
        (tmp / "chat_template.jinja").write_text(template)
        (tmp / "preprocessor_config.json").write_text(json.dumps(dict(
            feature_extractor_type="WhisperFeatureExtractor", feature_size=config.audio.num_mel_bins,
            sampling_rate=16000, hop_length=160, n_fft=400, chunk_length=30, n_samples=480000, nb_max_frames=3000,
            padding_side="right", padding_value=0.0, return_attention_mask=False,
            processor_class="MossTranscribeDiarizeProcessor"), indent=2))
        (tmp / "processor_config.json").write_text(json.dumps(dict(
            processor_class="MossTranscribeDiarizeProcessor", audio_tokens_per_second=12.5,
            audio_merge_size=config.audio_merge_size, time_marker_every_seconds=MARKER_EVERY_SECONDS,
            enable_time_marker=True), indent=2))
        (tmp / "generation_config.json").write_text(json.dumps(dict(
            eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]], pad_token_id=ids["<|endoftext|>"],
            do_sample=False, max_new_tokens=5120), indent=2))
        _write_weights(tmp, config, spec.dtype, seed)
    return out
