"""A recipe small enough for seconds: a handful of clips, a tiny model, a few steps."""

from __future__ import annotations

import shutil

import pytest


def require_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed: apt-get install espeak-ng")


def small_recipe(steps: int = 40, ctc_steps: int = 10):
    from train.data import DataConfig
    from train.evalset import EvalSetConfig
    from train.recipe import RecipeConfig, TrainConfig

    return RecipeConfig(
        seed=3,
        data=DataConfig(seed=3, single={"en": 8, "de": 2, "fr": 2}, multi={"en": 2}, words={"de": 1},
                        workers=1),
        train=TrainConfig(ctc_steps=ctc_steps, steps=steps, lr=3e-3, warmup=4, budget_frames=3000, max_batch=4, curriculum=0.2,
                          log_every=5, guide_layers=(0, 1),  # the guide is on by default; 2 layers here
                          time_weight=0.5, time_layer=1),  # the probe is off by default: on here so the recipe's runs cover it
        audio=dict(d_model=64, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=128,
                   downsample_hidden_size=8, output_dim=64, deepstack_encoder_layer_indexes=[0, 1]),
        text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, head_dim=32, max_position_embeddings=1024),
        adapter_hidden_size=64, bpe_size=300, dtype="float32",
        evalset=EvalSetConfig(seed=5, transcribe={"en": 2}, language=1, timestamps={"en": 1}),
        threads=1,
    )


def small_model(ctc_chars: int, **kwargs):
    """An untrained training model of the small recipe's shape (vocabulary 64)."""
    from export.config import ModelConfig
    from export.synth import SynthSize, config_dict
    from train.model import TrainableMossAudio

    cfg = small_recipe()
    raw = config_dict(SynthSize(audio=cfg.audio, text=dict(cfg.text, vocab_size=64),
                                adapter_hidden_size=cfg.adapter_hidden_size, dtype="float32"))
    return TrainableMossAudio(ModelConfig.from_dict(raw), ctc_chars=ctc_chars, ctc_upsample=3, **kwargs)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """(folder, train_info) of one small recipe run."""
    require_espeak()
    from train.recipe import run

    root = tmp_path_factory.mktemp("recipe")
    info = run(small_recipe(), root / "model", root / "cache", log=lambda m: None)
    return root / "model", info
