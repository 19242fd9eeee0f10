import gguf
import pytest

from export.checkpoint import Checkpoint
from export.decoder_gguf import gguf_name, rope_sections
from runtime.errors import CheckpointError
from runtime.llama import LlamaModel


def field(reader, key):
    f = reader.fields[key]
    if f.types[0] == gguf.GGUFValueType.ARRAY:
        return [f.parts[i].tolist()[0] if f.types[-1] != gguf.GGUFValueType.STRING else bytes(f.parts[i]).decode()
                for i in f.data]
    value = f.parts[f.data[0]]
    return bytes(value).decode() if f.types[0] == gguf.GGUFValueType.STRING else value.tolist()[0]


def test_metadata_and_tokenizer(tiny_bundle, tiny_ckpt):
    ckpt = Checkpoint.open(tiny_ckpt)
    r = gguf.GGUFReader(str(tiny_bundle / "decoder-f16.gguf"))
    assert field(r, "general.architecture") == "qwen3vl"
    assert field(r, "qwen3vl.n_deepstack_layers") == 3
    assert field(r, "qwen3vl.rope.dimension_sections") == [3, 3, 3, 0]
    assert field(r, "tokenizer.ggml.model") == "gpt2" and field(r, "tokenizer.ggml.pre") == "qwen2"
    tokens, types = field(r, "tokenizer.ggml.tokens"), field(r, "tokenizer.ggml.token_type")
    ids = ckpt.token_ids
    assert len(tokens) == ckpt.config.text.vocab_size  # one name per embedding row
    assert tokens[ids.audio_start] == "<|audio_bos|>" and types[ids.audio_start] == gguf.TokenType.CONTROL
    assert tokens[321] == "<|im_start|>" and types[321] == gguf.TokenType.CONTROL
    assert tokens[-1] == f"[PAD{len(tokens) - 1}]" and types[-1] == gguf.TokenType.UNUSED
    dtypes = {t.name: t.tensor_type for t in r.tensors}
    assert dtypes["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.F16
    assert dtypes["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32  # 1-D stays F32


def test_llama_cpp_reads_deepstack_width_and_tokenizes_like_upstream(tiny_bundle, tiny_ckpt):
    ckpt = Checkpoint.open(tiny_ckpt)
    model = LlamaModel(tiny_bundle / "decoder-q8_0.gguf")
    assert model.n_embd_inp == ckpt.config.row_width == 4 * model.n_embd
    text = "<|im_start|>system\nYou are a helpful assistant. It's 2024!<|im_end|>\n"
    assert model.tokenize(text) == ckpt.tokenize(text)


def test_rope_sections_cover_every_rotary_pair():
    for head_dim in (16, 64, 128):
        s = rope_sections(head_dim)
        assert s[3] == 0 and 3 * s[0] >= head_dim // 2


def test_unmapped_tensor_is_an_error():
    with pytest.raises(CheckpointError, match="no GGUF mapping"):
        gguf_name("language_model.layers.0.self_attn.rotary_emb.inv_freq")
