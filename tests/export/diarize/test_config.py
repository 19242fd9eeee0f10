"""A MOSS-Transcribe-Diarize checkpoint is read from its own files, and refused clearly when they disagree."""

import json
import shutil

import pytest

from export.checkpoint import Checkpoint
from export.diarize.config import DiarizeConfig
from export.diarize.synth import SIZES, config_dict
from runtime.errors import CheckpointError


def test_tied_and_untied_heads():
    raw = config_dict(SIZES["tiny"], audio_token_id=348)
    tied = DiarizeConfig.from_dict(raw)
    assert tied.lm_head is None and "lm_head.weight" not in tied.expected_tensors()
    assert tied.row_width == 64 and tied.window_tokens == 375 and tied.arch == "qwen3"
    untied = DiarizeConfig.from_dict(dict(raw, tie_word_embeddings=False))
    assert untied.expected_tensors()["lm_head.weight"] == (384, 64)


def test_inconsistent_configs_list_every_problem():
    raw = config_dict(SIZES["tiny"], audio_token_id=348)
    raw["audio_config"]["encoder_attention_heads"] = 5
    raw["adaptor_input_dim"] = 100
    with pytest.raises(CheckpointError, match="not divisible by 5 heads; adaptor_input_dim 100 is not"):
        DiarizeConfig.from_dict(raw)


@pytest.fixture
def copy(diarize_ckpt, tmp_path):
    out = tmp_path / "ckpt"
    shutil.copytree(diarize_ckpt, out)
    return out


def test_a_template_that_hides_the_audio_is_refused(copy):
    (copy / "chat_template.jinja").write_text("{% for m in messages %}{{ m.role }}{% endfor %}")
    with pytest.raises(CheckpointError, match="renders an audio item as something other than"):
        Checkpoint.open(copy).prompt_info


def test_a_front_end_that_disagrees_with_the_encoder_is_refused(copy):
    fe = json.loads((copy / "preprocessor_config.json").read_text())
    (copy / "preprocessor_config.json").write_text(json.dumps(dict(fe, feature_size=128)))
    with pytest.raises(CheckpointError, match="feature_size 128 differs from config.json num_mel_bins 80"):
        Checkpoint.open(copy).audio_info
    (copy / "preprocessor_config.json").unlink()
    with pytest.raises(CheckpointError, match="has no preprocessor_config.json"):
        Checkpoint.open(copy).audio_info
