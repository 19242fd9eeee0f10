"""Model families: config.json's model_type picks the path; MOSS-Music takes MOSS-Audio's, and a
family we do not export is refused by name with the ones we do."""

import json

import pytest

from export.checkpoint import Checkpoint
from export.config import ModelConfig
from export.families import MOSS_AUDIO, MOSS_MUSIC, family_of
from export.synth import SIZES, config_dict, write_checkpoint
from runtime.errors import CheckpointError
from runtime.manifest import load_manifest
from runtime.pipeline import Pipeline
from tests.conftest import clip

SUPPORTED = (r"it supports moss-audio \(model_type 'moss_audio'\), moss-music \(model_type 'moss_music'\), "
             r"moss-transcribe-diarize \(model_type 'moss_transcribe_diarize'\)")


@pytest.mark.parametrize("model_type,family", [("moss_audio", MOSS_AUDIO), ("moss_music", MOSS_MUSIC)])
def test_model_type_picks_the_family(model_type, family):
    raw = dict(config_dict(SIZES["tiny"]), model_type=model_type)
    assert family_of(raw) is family and ModelConfig.from_dict(raw).family is family


@pytest.mark.parametrize("model_type,message", [
    ("qwen2_audio", "has model_type 'qwen2_audio': not a model family this exporter knows"),
    (None, "has no model_type: not a model family this exporter knows"),
])
def test_other_families_are_refused_naming_the_supported_ones(model_type, message):
    raw = {k: v for k, v in config_dict(SIZES["tiny"]).items() if k != "model_type"}
    if model_type:
        raw["model_type"] = model_type
    with pytest.raises(CheckpointError, match=f"{message}.*; {SUPPORTED}"):
        ModelConfig.from_dict(raw)


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    from export.bundle import ExportOptions, export_bundle

    ckpt = write_checkpoint(tmp_path_factory.mktemp("ckpt") / "music", "tiny", seed=11, family=MOSS_MUSIC)
    bundle = tmp_path_factory.mktemp("bundle") / "music"
    export_bundle(ckpt, bundle, ExportOptions(encoder=("fp32",), decoder=("f32",)))
    return ckpt, bundle


def test_moss_music_exports_through_the_moss_audio_path(music):
    ckpt, bundle = music
    assert json.loads((ckpt / "config.json").read_text())["architectures"] == ["MossMusicModel"]
    m = load_manifest(bundle)
    assert m.model.family == "moss-music"
    assert m.prompt.default_question == MOSS_MUSIC.default_question  # upstream's app asks this by default


def test_moss_music_bundle_equals_its_reference(music):
    """Greedy on the family's default question, two chunks and a marker: the F32 bundle as the PyTorch reference."""
    from export.reference import MossAudioReference
    from runtime.sampling import GenerationOptions

    ckpt, bundle = music
    reference = MossAudioReference(Checkpoint.open(ckpt))
    x = clip(5.0, seed=5)
    prompt, rows = reference.prepare([x], MOSS_MUSIC.default_question)
    expected = reference.generate(prompt, rows, GenerationOptions(max_new_tokens=16, temperature=0))
    pipe = Pipeline.load(bundle, device="cpu", decoder="f32", kv_type="f32", flash_attn="off")
    result = pipe.generate(x, temperature=0, max_new_tokens=16)  # no question: the bundle's default
    assert result.prompt_token_ids == prompt.ids.tolist()
    assert result.token_ids == expected
