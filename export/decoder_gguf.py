"""The Qwen3 decoder as a llama.cpp GGUF of arch `qwen3vl`, so audio rows carry DeepStack natively
(or of the stock `qwen3`, for a family whose rows enter at the input only).

llama.cpp's qwen3vl reads an input row [main | tap0 | ...] of width n_embd * (1 + k), uses
`main` as layer-0 input and adds tap j to the output of layer j. A tied head writes no
output.weight: llama.cpp then uses token_embd. Tensors stream one at a time from the
checkpoint: the 8B never sits in memory twice.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
import numpy as np

from export.checkpoint import Checkpoint
from export.progress import progress
from runtime.errors import CheckpointError

DIRECT_TYPES = ("f32", "f16", "bf16")  # written here; every other type goes through llama.cpp's quantizer

# HF name -> GGUF name; an unmapped language-model tensor is an error, never dropped.
_LAYER_MAP = {
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_GLOBAL_MAP = {
    "language_model.embed_tokens.weight": "token_embd.weight",
    "language_model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
_LAYER_RE = re.compile(r"(?:model\.)?language_model\.layers\.(\d+)\.(.+)")

# Stored in the GGUF for tools that format prompts themselves; the runtime builds ids directly.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def gguf_name(hf_name: str) -> str:
    """The GGUF name of a decoder tensor, under MOSS-Audio's prefix or Transcribe-Diarize's (model.)."""
    if hf_name.removeprefix("model.") in _GLOBAL_MAP:
        return _GLOBAL_MAP[hf_name.removeprefix("model.")]
    m = _LAYER_RE.fullmatch(hf_name)
    if m and m.group(2) in _LAYER_MAP:
        return f"blk.{m.group(1)}.{_LAYER_MAP[m.group(2)]}"
    raise CheckpointError(f"no GGUF mapping for tensor {hf_name}")


def decoder_tensors(ckpt: Checkpoint) -> list[str]:
    cfg = ckpt.config
    return [n for n in cfg.expected_tensors() if n.startswith(cfg.lm_prefix) or n == cfg.lm_head]


def rope_sections(head_dim: int) -> list[int]:
    """qwen3vl's interleaved M-RoPE with [s, s, s, 0] and equal positions is Qwen3's NEOX RoPE."""
    s = math.ceil(head_dim / 2 / 3)
    return [s, s, s, 0]


def write_decoder_gguf(ckpt: Checkpoint, path: Path, ftype: str) -> Path:
    """Write `path` as F32, F16 or BF16 (1-D tensors always F32, as llama.cpp expects)."""
    import gguf

    if ftype not in DIRECT_TYPES:
        raise ValueError(f"{ftype} is made by the quantizer from an f16/f32 GGUF, not written directly")
    cfg, t = ckpt.config, ckpt.config.text
    w = gguf.GGUFWriter(str(path), cfg.arch)
    w.add_name(f"{cfg.family.name} decoder ({ckpt.folder.name})")
    w.add_context_length(t.max_position_embeddings)
    w.add_embedding_length(t.hidden_size)
    w.add_block_count(t.num_hidden_layers)
    w.add_feed_forward_length(t.intermediate_size)
    w.add_head_count(t.num_attention_heads)
    w.add_head_count_kv(t.num_key_value_heads)
    w.add_key_length(t.head_dim)
    w.add_value_length(t.head_dim)
    w.add_rope_dimension_count(t.head_dim)
    w.add_rope_freq_base(t.rope_theta)
    w.add_layer_norm_rms_eps(t.rms_norm_eps)
    if cfg.arch == "qwen3vl":
        w.add_rope_dimension_sections(rope_sections(t.head_dim))
        w.add_num_deepstack_layers(cfg.n_deepstack)
    w.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                     "bf16": gguf.LlamaFileType.MOSTLY_BF16}[ftype])
    _add_tokenizer(w, ckpt)

    names = decoder_tensors(ckpt)
    plans = []
    for name in names:
        shape = ckpt.config.expected_tensors()[name]
        kind = "f32" if len(shape) == 1 else ftype
        dtype, raw = {"f32": (np.float32, None), "f16": (np.float16, None),
                      "bf16": (np.uint16, gguf.GGMLQuantizationType.BF16)}[kind]
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        w.add_tensor_info(gguf_name(name), shape, np.dtype(dtype), nbytes, raw_dtype=raw)
        plans.append((name, kind))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, kind in progress(plans, total=len(plans), desc=f"decoder {ftype}"):
        w.write_tensor_data(_convert(ckpt.tensor(name), kind))
    w.close()
    return path


def _convert(tensor, kind: str) -> np.ndarray:
    import gguf

    data = tensor.float().numpy()
    if kind == "f32":
        return np.ascontiguousarray(data, dtype=np.float32)
    if kind == "f16":
        return np.ascontiguousarray(data.astype(np.float16))
    return gguf.quants.quantize(data, gguf.GGMLQuantizationType.BF16).view(np.uint16).reshape(data.shape)


def _add_tokenizer(w, ckpt: Checkpoint) -> None:
    """gpt2 BPE with qwen2 pre-tokenizer; one name per embedding row, control tokens marked."""
    import gguf

    data = json.loads((ckpt.folder / "tokenizer.json").read_text())
    rows = ckpt.config.text.vocab_size
    tokens: list[str | None] = [None] * rows
    types = [gguf.TokenType.NORMAL] * rows
    for text, i in data["model"]["vocab"].items():
        if i < rows:
            tokens[i] = text
    for added in data.get("added_tokens", []):
        i = added["id"]
        if i < rows:
            tokens[i] = added["content"]
            types[i] = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
    ids = ckpt.token_ids
    for i, name in zip((ids.audio, ids.audio_start, ids.audio_end), ckpt.config.family.audio_tokens):
        if tokens[i] is None:  # upstream patches these names in; the hub tokenizer lacks them
            tokens[i], types[i] = name, gguf.TokenType.CONTROL
    for i in range(rows):
        if tokens[i] is None:
            tokens[i], types[i] = f"[PAD{i}]", gguf.TokenType.UNUSED
    if len(set(tokens)) != rows:
        raise CheckpointError("tokenizer.json gives two embedding rows the same token text")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    special = gguf.SpecialVocab(ckpt.folder, load_merges=True, n_vocab=rows)  # merges, eos/pad from the checkpoint
    if "eos" not in special.special_token_ids:
        special.special_token_ids["eos"] = ids.eos[0]
    special.add_to_gguf(w)
    w.add_add_bos_token(False)
    if not special.chat_template:  # the checkpoint's own template wins where it ships one
        w.add_chat_template(CHAT_TEMPLATE)


def write_digit_rows(gguf_path: Path, digits: tuple[int, ...], out: Path) -> Path:
    """The token-embedding rows of the time-marker digits, dequantized exactly as the GGUF holds
    them, so the runtime needs no GGUF reader (whose cost grows with the vocabulary) at load."""
    import gguf

    reader = gguf.GGUFReader(str(gguf_path))
    table = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    if table is None:
        raise CheckpointError(f"{gguf_path.name} has no token_embd.weight")
    rows = gguf.quants.dequantize(np.asarray(table.data[list(digits)]), table.tensor_type)
    np.save(out, np.asarray(rows, dtype=np.float32).reshape(len(digits), -1))
    return out
