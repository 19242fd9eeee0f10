"""Synthetic MOSS-Audio checkpoints in the upstream HF layout, with random weights.

`tiny` for fast tests, `small` with every LLM matrix width a multiple of 256 (llama.cpp
K-quants apply), `4b`/`8b` with the real shapes for benchmarks (speed ignores values).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from export.atomic import atomic_dir
from export.config import ModelConfig
from export.families import MOSS_AUDIO, Family
from export.progress import progress

# Qwen's added-token block, in order; upstream names slot 11 <|AUDIO|> (the hub file calls
# it <|vision_pad|>) and puts <|audio_bos|>/<|audio_eos|> right after </think>, past the
# tokenizer. `special` False marks tokens that are decoded as text.
QWEN_ADDED = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
    ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True),
    ("<|vision_start|>", True), ("<|vision_end|>", True), ("<|AUDIO|>", True),
    ("<|image_pad|>", True), ("<|video_pad|>", True), ("<tool_call>", False),
    ("</tool_call>", False), ("<|fim_prefix|>", False), ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False), ("<|fim_pad|>", False), ("<|repo_name|>", False),
    ("<|file_sep|>", False), ("<tool_response>", False), ("</tool_response>", False),
    ("<think>", False), ("</think>", False),
]
BASE_VOCAB = 320  # 256 byte symbols + 64 merges
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_CORPUS = (
    "You are a helpful assistant. Transcribe the audio. What is the speaker saying? "
    "Describe the sound, the music and the voice. The quick brown fox jumps over the lazy dog. "
    "There is a man talking in a quiet room while a bird sings and the rain falls outside. "
)


@dataclass(frozen=True)
class SynthSize:
    audio: dict
    text: dict
    adapter_hidden_size: int
    dtype: str = "float32"
    extra: dict = field(default_factory=dict)


# The released encoder (both sizes): 32 Whisper layers of 1280, taps after layers 8, 16, 24.
REAL_ENCODER = dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120,
                    downsample_hidden_size=480, output_dim=1280, deepstack_encoder_layer_indexes=[8, 16, 24])

SIZES: dict[str, SynthSize] = {
    "tiny": SynthSize(
        audio=dict(d_model=64, encoder_layers=4, encoder_attention_heads=4, encoder_ffn_dim=128,
                   downsample_hidden_size=8, output_dim=64, deepstack_encoder_layer_indexes=[0, 1, 2]),
        text=dict(vocab_size=384, hidden_size=64, intermediate_size=160, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=8192),
        adapter_hidden_size=128,
    ),
    "small": SynthSize(
        audio=dict(d_model=256, encoder_layers=6, encoder_attention_heads=4, encoder_ffn_dim=1024,
                   downsample_hidden_size=32, output_dim=256, deepstack_encoder_layer_indexes=[1, 3, 5]),
        text=dict(vocab_size=512, hidden_size=256, intermediate_size=768, num_hidden_layers=6,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=8192),
        adapter_hidden_size=512,
    ),
    "4b": SynthSize(
        audio=REAL_ENCODER,
        text=dict(vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                  num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960),
        adapter_hidden_size=8192, dtype="bfloat16",
    ),
    "8b": SynthSize(
        audio=REAL_ENCODER,
        text=dict(vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                  num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960),
        adapter_hidden_size=8192, dtype="bfloat16",
    ),
}

SHARD_BYTES = 2 * 1024**3


def config_dict(size: SynthSize) -> dict:
    audio = dict(num_mel_bins=128, n_window=200, layer_norm_eps=1e-5, max_source_positions=1500,
                 activation_function="gelu", **size.audio)
    text = dict(model_type="qwen3", rms_norm_eps=1e-6, rope_theta=1_000_000.0, tie_word_embeddings=False,
                attention_bias=False, hidden_act="silu", **size.text)
    return dict(model_type="moss_audio", architectures=["MossAudioModel"], audio_config=audio,
                language_config=text, adapter_hidden_size=size.adapter_hidden_size,
                deepstack_num_inject_layers=None, torch_dtype=size.dtype, **size.extra)


def special_ids(base: int = BASE_VOCAB) -> dict[str, int]:
    """Ids of the added tokens when the BPE vocabulary has `base` entries (write_tokenizer's return)."""
    ids = {name: base + i for i, (name, _) in enumerate(QWEN_ADDED)}
    ids["<|audio_bos|>"] = base + len(QWEN_ADDED)
    ids["<|audio_eos|>"] = base + len(QWEN_ADDED) + 1
    return ids


def write_checkpoint(out: Path, size: str | SynthSize, seed: int = 0, *, config_overrides: dict | None = None,
                     family: Family = MOSS_AUDIO, text_only_head: bool = False) -> Path:
    """Write a checkpoint folder atomically; `config_overrides` edits config.json sections.

    `text_only_head` zeroes the head's rows past the tokenizer, as training leaves them unused: a
    4B-shape model has 151,936 rows and a few hundred tokens, and random weights otherwise sample
    almost only rows that have no text (the benchmarks time answers by their text)."""
    spec = SIZES[size] if isinstance(size, str) else size
    raw = apply_overrides(dict(config_dict(spec), model_type=family.model_type, architectures=[family.architecture]),
                          config_overrides)
    config = ModelConfig.from_dict(raw)
    with atomic_dir(out) as tmp:
        (tmp / "config.json").write_text(json.dumps(raw, indent=2))
        base = write_tokenizer(tmp, config.text.vocab_size)
        ids = special_ids(base)
        (tmp / "processor_config.json").write_text(json.dumps(dict(
            processor_class=family.architecture.replace("Model", "Processor"), audio_token_id=ids["<|AUDIO|>"],
            audio_start_id=ids["<|audio_bos|>"], audio_end_id=ids["<|audio_eos|>"], enable_time_marker=True,
            mel_config=dict(mel_dim=128, mel_sr=16000, mel_hop_length=160, mel_n_fft=400)), indent=2))
        (tmp / "generation_config.json").write_text(json.dumps(dict(
            eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]], pad_token_id=ids["<|endoftext|>"],
            do_sample=True, temperature=1.0, top_p=1.0, top_k=50, max_new_tokens=1024), indent=2))
        _write_weights(tmp, config, spec.dtype, seed, head_rows=base + len(QWEN_ADDED) if text_only_head else None)
    return out


def apply_overrides(raw: dict, overrides: dict | None) -> dict:
    """config.json with `overrides` applied: a dict updates its section, anything else replaces it."""
    for section, values in (overrides or {}).items():
        if isinstance(values, dict) and isinstance(raw.get(section), dict):
            raw[section].update(values)
        else:
            raw[section] = values
    return raw


def write_tokenizer(folder: Path, vocab_rows: int, corpus: Iterable[str] | None = None,
                    bpe_size: int = BASE_VOCAB, extra: tuple[str, ...] = ()) -> int:
    """Train a byte-level BPE in Qwen2's format and write tokenizer.json, vocab.json, merges.txt
    and tokenizer_config.json; Qwen's added tokens follow the BPE vocabulary.

    `corpus` defaults to the small built-in text the synthetic checkpoints use; `bpe_size`
    counts the 256 byte symbols plus the merges; `extra` names special tokens added after Qwen's
    (a family's own audio tokens). Returns the id of the first added token
    (the BPE vocabulary's real size: a small corpus may yield fewer merges than asked).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=bpe_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([_CORPUS * 4] if corpus is None else corpus, trainer=trainer)
    data = json.loads(tok.to_str())
    base = len(data["model"]["vocab"])
    added = [dict(id=base + i, content=name, single_word=False, lstrip=False, rstrip=False,
                  normalized=False, special=special)
             for i, (name, special) in enumerate(QWEN_ADDED + [(e, True) for e in extra])]
    if added[-1]["id"] + 3 > vocab_rows:
        raise ValueError(f"vocab_size {vocab_rows} leaves no room for the special tokens")
    data["added_tokens"] = added
    (folder / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False))
    (folder / "vocab.json").write_text(json.dumps(data["model"]["vocab"], ensure_ascii=False))
    merges = ["#version: 0.2"] + [" ".join(m) if isinstance(m, list) else m for m in data["model"]["merges"]]
    (folder / "merges.txt").write_text("\n".join(merges) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps(dict(
        tokenizer_class="Qwen2Tokenizer", model_max_length=131072, errors="replace", add_prefix_space=False,
        bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None,
        clean_up_tokenization_spaces=False, split_special_tokens=False,
        added_tokens_decoder={str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added},
    ), indent=2))
    return base


def _init_scale(name: str, shape: tuple[int, ...], config: ModelConfig) -> tuple[str, float]:
    """(kind, std): fan-in scaled matrices keep activations O(1); the head is wider so
    greedy decoding has clear winners instead of near-ties."""
    if name.endswith("norm.weight"):
        return "one", 0.1
    if name.endswith(".bias"):
        return "normal", 0.02
    if name.removeprefix("model.") == "language_model.embed_tokens.weight":
        # A tied head scores each token by its own embedding, so a wide one makes greedy repeat the last
        # token forever (std 1.0 and 0.3 did on every clip tried); 0.1 lets the layers' output decide.
        return "normal", 0.1 if getattr(config, "tied", False) else 1.0
    if name == "lm_head.weight":
        return "normal", 6.0 / math.sqrt(shape[1])
    fan_in = math.prod(shape[1:])
    return "normal", 1.0 / math.sqrt(fan_in)


def _write_weights(folder: Path, config: ModelConfig, dtype: str, seed: int, head_rows: int | None = None) -> None:
    import torch
    from safetensors.torch import save_file

    torch_dtype = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(seed)
    shapes = config.expected_tensors()
    shard: dict[str, torch.Tensor] = {}
    shard_bytes, shards = 0, []
    weight_map: dict[str, str] = {}

    def flush() -> None:
        nonlocal shard, shard_bytes
        if shard:
            name = f"model-{len(shards) + 1:05d}.safetensors"
            save_file(shard, str(folder / name), metadata={"format": "pt"})
            shards.append(name)
            weight_map.update({k: name for k in shard})
            shard, shard_bytes = {}, 0

    for name, shape in progress(shapes.items(), total=len(shapes), desc="synth weights"):
        kind, std = _init_scale(name, shape, config)
        t = torch.randn(shape, generator=gen) * std
        if kind == "one":
            t = t + 1.0
        if head_rows is not None and name == "lm_head.weight":
            t[head_rows:] = 0.0
        t = t.to(torch_dtype)
        nbytes = t.numel() * t.element_size()
        if shard_bytes + nbytes > SHARD_BYTES:
            flush()
        shard[name] = t
        shard_bytes += nbytes
    flush()
    if len(shards) == 1:
        (folder / shards[0]).rename(folder / "model.safetensors")
    else:
        total = sum((folder / s).stat().st_size for s in shards)
        (folder / "model.safetensors.index.json").write_text(json.dumps(
            dict(metadata=dict(total_size=total), weight_map=weight_map), indent=2))
