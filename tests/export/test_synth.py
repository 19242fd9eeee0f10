import json

import pytest
import torch

from export.checkpoint import Checkpoint
from export.config import ModelConfig
from export.synth import SIZES, config_dict, special_ids, write_checkpoint


def test_small_llm_matrices_fit_k_quants():
    cfg = ModelConfig.from_dict(config_dict(SIZES["small"]))
    for name, shape in cfg.expected_tensors().items():
        if (name.startswith("language_model.") or name == "lm_head.weight") and len(shape) == 2:
            assert shape[1] % 256 == 0, name  # llama.cpp quantizes along the input (row) width


# Qwen3 model cards: non-embedding parameters 3.6B (4B) and 6.95B (8B); DESIGN: 0.6B encoder.
@pytest.mark.parametrize("size,hidden,llm_b", [("4b", 2560, 3.6), ("8b", 4096, 6.95)])
def test_real_sizes_have_real_shapes(size, hidden, llm_b):
    cfg = ModelConfig.from_dict(config_dict(SIZES[size]))
    shapes = cfg.expected_tensors()

    def billions(prefix):
        return sum(torch.Size(s).numel() for n, s in shapes.items() if n.startswith(prefix)) / 1e9

    assert cfg.text.hidden_size == hidden and cfg.text.num_hidden_layers == 36
    assert cfg.audio.d_model == 1280 and cfg.audio.deepstack_encoder_layer_indexes == (8, 16, 24)
    assert abs(billions("language_model.layers.") - llm_b) < 0.05
    assert abs(billions("audio_encoder.") - 0.64) < 0.05


def test_special_tokens_sit_where_the_config_says(tiny_ckpt):
    processor = json.loads((tiny_ckpt / "processor_config.json").read_text())
    vocab = json.loads((tiny_ckpt / "tokenizer.json").read_text())
    added = {a["content"]: a["id"] for a in vocab["added_tokens"]}
    ids = special_ids()
    assert processor["audio_token_id"] == added["<|AUDIO|>"] == ids["<|AUDIO|>"]
    assert processor["audio_start_id"] not in added.values()  # past the tokenizer, as on the hub
    assert ids["<|im_end|>"] in json.loads((tiny_ckpt / "generation_config.json").read_text())["eos_token_id"]


def test_tokenizer_loads_as_qwen2_in_transformers(tiny_ckpt):
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoTokenizer.from_pretrained(str(tiny_ckpt))
    text = "<|im_start|>user\nWhat is 2024?<|im_end|>"
    assert hf.encode(text, add_special_tokens=False) == Checkpoint.open(tiny_ckpt).tokenize(text)


def test_seed_decides_the_weights(tmp_path, tiny_ckpt):
    again = Checkpoint.open(write_checkpoint(tmp_path / "same", "tiny", seed=0))
    other = Checkpoint.open(write_checkpoint(tmp_path / "other", "tiny", seed=1))
    base = Checkpoint.open(tiny_ckpt)
    assert torch.equal(again.tensor("lm_head.weight"), base.tensor("lm_head.weight"))
    assert not torch.equal(other.tensor("lm_head.weight"), base.tensor("lm_head.weight"))
