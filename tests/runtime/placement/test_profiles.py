import json
import subprocess
import sys

import pytest
import torch

from runtime.placement.budget import budget, model_data
from runtime.placement.profiles import ProfileError, all_profiles, load_profile

TARGETS = {"orin-nano-8gb", "orin-nx-16gb", "agx-orin-32gb", "agx-orin-64gb", "agx-thor", "rtx-3060-12gb",
           "rtx-3090-24gb", "rtx-4090-24gb", "rtx-4060ti-16gb", "rtx-5090-32gb", "cpu-x86-avx2", "cpu-x86-avx512",
           "cpu-aarch64-neon"}


def test_every_target_has_a_valid_profile_and_list_shows_it():
    assert {p.name for p in all_profiles()} == TARGETS
    out = subprocess.run([sys.executable, "-m", "devices", "list"], capture_output=True, text=True, check=True)
    for name in TARGETS:
        assert name in out.stdout


def test_written_arithmetic_is_what_the_budget_computes():
    """Each profile states its memory arithmetic; it must not drift from devices/budget.py."""
    for p in all_profiles():
        for size, choice in p.decoder.items():
            if choice.quant is None:
                assert "does not fit" in choice.reason
                continue
            b = budget(size, p.encoder.precision, choice.quant, p.context_tokens)
            assert choice.arithmetic == b.explain(size, p.encoder.precision, choice.quant, p.context_tokens)
            assert choice.budget_gb == b.total
            assert p.usable_gb is None or b.total <= p.usable_gb


def test_model_shapes_match_the_real_configs():
    from export.config import ModelConfig
    from export.synth import SIZES, config_dict

    for size, m in model_data()["models"].items():
        shapes = ModelConfig.from_dict(config_dict(SIZES[size])).expected_tensors()

        def count(pred):
            return sum(torch.Size(s).numel() for k, s in shapes.items() if pred(k))

        assert m["decoder_layer_params"] == count(lambda k: k.startswith("language_model.layers."))
        assert m["embedding_params"] == count(lambda k: k == "language_model.embed_tokens.weight")
        assert m["encoder_params"] == count(lambda k: not k.startswith(("language_model.", "lm_head")))


def test_inconsistent_profile_is_refused(tmp_path):
    from runtime.placement.profiles import PROFILE_DIR

    src = next(p for p in all_profiles() if p.name == "rtx-3060-12gb")
    raw = json.loads((PROFILE_DIR / f"{src.name}.json").read_text())
    raw["decoder"]["8b"]["budget_gb"] = 40.0
    bad = tmp_path / f"{src.name}.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(ProfileError, match="over 11.3 GB usable"):
        load_profile(bad)
    (tmp_path / "renamed.json").write_text(json.dumps(raw))
    with pytest.raises(ProfileError, match="differs from the file name"):
        load_profile(tmp_path / "renamed.json")
