"""Guided attention: the tapped probabilities are the layer's own, the penalty is the diagonal
prior, the loss skips language answers, and a recipe with it on trains and logs it."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from tests.train.conftest import small_model, small_recipe


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("head", range(4))
def test_tapped_probabilities_are_the_layers_attention(head, bias):
    """Every head of a 4-query / 2-key-value layer (GQA: heads 2 and 3 share the second kv head),
    with and without projection biases."""
    from transformers import Qwen3Config, Qwen3Model
    from train.guide import head_attention

    torch.manual_seed(0)
    lm = Qwen3Model(Qwen3Config(vocab_size=32, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                attention_bias=bias)).eval()
    lm.config._attn_implementation = "eager"  # the path that returns its weights
    x = torch.randn(2, 9, 64)
    got = []
    hook = lambda m, args, kwargs, out: got.append(head_attention(m, kwargs["hidden_states"], *kwargs["position_embeddings"], head))
    lm.layers[0].self_attn.register_forward_hook(hook, with_kwargs=True)
    with torch.no_grad():
        want = lm(inputs_embeds=x, use_cache=False, output_attentions=True).attentions[0][:, head]
    # measured: max abs 0.0 for every head, with and without bias; 1e-6 leaves room for another BLAS
    torch.testing.assert_close(got[0], want, rtol=0, atol=1e-6)


def test_taps_collect_the_chosen_layers_and_change_nothing():
    from train.guide import attention_taps

    model = small_model(4).eval()
    x = torch.randn(2, 9, model.config.text.hidden_size)
    with torch.no_grad():
        plain = model.language_model(inputs_embeds=x, use_cache=False).last_hidden_state
        with attention_taps(model.language_model.layers, (0, 1)) as probs:
            tapped = model.language_model(inputs_embeds=x, use_cache=False).last_hidden_state
    assert torch.equal(plain, tapped) and len(probs) == 2 and probs[0].shape == (2, 9, 9)
    torch.testing.assert_close(probs[1].sum(-1), torch.ones(2, 9))


def test_penalty_is_the_diagonal_prior():
    from train.guide import diagonal_penalty

    audio_rows = torch.tensor([-1, 0, 1, 2, 3, -1, -1, -1])  # 4 audio rows between text tokens
    pen = diagonal_penalty(audio_rows, 2, width=0.2)
    assert pen.shape == (2, 8)
    assert torch.all(pen[:, [0, 5, 6, 7]] == 1)  # text positions count fully
    for j in range(2):
        for a in range(4):
            d = (a + 0.5) / 4 - (j + 0.5) / 2
            assert math.isclose(float(pen[j, a + 1]), 1 - math.exp(-d * d / 0.08), rel_tol=1e-6)
    assert pen[0, 1] < pen[0, 4] and pen[1, 4] < pen[1, 1]  # early answer: early audio, late: late


def test_loss_is_zero_on_the_diagonal_and_skips_unguided_answers():
    from train.guide import guide_loss

    audio_rows = torch.tensor([[0, 1, 2, 3, -1, -1, -1, -1]] * 2)
    labels = torch.full((2, 8), -100)
    labels[:, 4:8] = 5  # positions 4..7 predict the answer's four tokens
    on_diagonal = torch.zeros(2, 8, 8)
    for j in range(4):
        on_diagonal[:, 4 + j, j] = 1.0  # answer token j looks at audio row j only
    uniform = torch.full((2, 8, 8), 1 / 8)
    both = torch.tensor([True, True])
    small = guide_loss([on_diagonal], audio_rows, labels, both, 0.2, -100)
    large = guide_loss([uniform], audio_rows, labels, both, 0.2, -100)
    # answer j of 4 on audio row j of 4: the prior's centre, penalty exactly 0
    assert float(small) == 0.0 and float(large) > 0.6
    mixed = torch.stack([on_diagonal[0], uniform[1]])  # the unguided clip's uniform attention is not counted
    assert torch.equal(guide_loss([mixed], audio_rows, labels, torch.tensor([True, False]), 0.2, -100), small)
    assert torch.equal(guide_loss([uniform], audio_rows, labels, torch.tensor([False, True]), 0.2, -100), large)


def test_recipe_with_guided_attention_trains_and_logs_it(trained, tmp_path):
    """The same small recipe with it on: the guide loss is logged in the joint phase and falls."""
    import shutil

    from train.recipe import run

    folder, plain = trained
    cache = tmp_path / "cache"
    shutil.copytree(folder.parent / "cache", cache)
    cfg = small_recipe()
    cfg = replace(cfg, train=replace(cfg.train, guide_weight=1.0, guide_layers=(0, 1)), evalset=None)
    info = run(cfg, tmp_path / "model", cache, log=lambda m: None)
    guide = [h["guide"] for h in info["history"] if h["phase"] == "joint"]
    assert all("guide" not in h for h in info["history"] if h["phase"] == "acoustic")
    assert len(guide) == len([h for h in plain["history"] if h["phase"] == "joint"]) and all(map(math.isfinite, guide))
    assert guide[-1] < guide[0], guide
