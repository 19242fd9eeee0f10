import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from export.checkpoint import Checkpoint
from runtime.errors import CheckpointError


@pytest.fixture
def broken(tiny_ckpt, tmp_path):
    """A writable copy of the tiny checkpoint and its tensors, to damage."""
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_ckpt, folder)
    return folder, load_file(str(folder / "model.safetensors"))


def test_reads_config_and_token_ids_from_the_files(tiny_ckpt):
    ckpt = Checkpoint.open(tiny_ckpt)
    processor = json.loads((tiny_ckpt / "processor_config.json").read_text())
    ids = ckpt.token_ids
    assert (ids.audio, ids.audio_start, ids.audio_end) == (
        processor["audio_token_id"], processor["audio_start_id"], processor["audio_end_id"])
    assert list(ids.eos) == json.loads((tiny_ckpt / "generation_config.json").read_text())["eos_token_id"]
    assert [ckpt.tokenize(str(d)) for d in range(10)] == [[i] for i in ids.digits]
    assert ckpt.config.row_width == ckpt.config.text.hidden_size * 4


def test_missing_tensor_is_named(broken):
    folder, tensors = broken
    del tensors["audio_encoder.layers.1.fc2.bias"]
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"1 missing tensor\(s\): audio_encoder.layers.1.fc2.bias"):
        Checkpoint.open(folder)


def test_misshapen_tensor_names_both_shapes(broken):
    folder, tensors = broken
    tensors["language_model.layers.0.mlp.up_proj.weight"] = torch.zeros(3, 64)
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"up_proj.weight is \(3, 64\), config says \(160, 64\)"):
        Checkpoint.open(folder)


def test_unexpected_tensor_is_named(broken):
    folder, tensors = broken
    tensors["deepstack_audio_merger_list.7.up_proj.weight"] = torch.zeros(2, 2)
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="does not define: deepstack_audio_merger_list.7.up_proj.weight"):
        Checkpoint.open(folder)


def test_sharded_checkpoint_with_index(tiny_ckpt, tmp_path, monkeypatch):
    import export.synth as synth

    monkeypatch.setattr(synth, "SHARD_BYTES", 200_000)
    folder = synth.write_checkpoint(tmp_path / "sharded", "tiny", seed=0)
    assert (folder / "model.safetensors.index.json").is_file()
    assert len(list(folder.glob("model-*.safetensors"))) > 2
    a, b = Checkpoint.open(folder), Checkpoint.open(tiny_ckpt)
    assert torch.equal(a.tensor("lm_head.weight"), b.tensor("lm_head.weight"))
    (folder / "model-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="names shard.*model-00002.safetensors"):
        Checkpoint.open(folder)


@pytest.mark.parametrize("damage,message", [
    (lambda f: (f / "config.json").unlink(), "has no config.json"),
    (lambda f: (f / "config.json").write_text("{not json"), "not valid JSON"),
    (lambda f: (f / "config.json").write_text('{"model_type": "qwen3"}'), "model_type 'qwen3': not a model family"),
    (lambda f: (f / "config.json").write_text('{"model_type": "moss_audio"}'), "no 'audio_config'"),
    (lambda f: (f / "model.safetensors").write_bytes(b"\x00" * 64), "not a readable safetensors"),
    (lambda f: (f / "model.safetensors").unlink(), "no \\*.safetensors"),
])
def test_broken_folders(broken, damage, message):
    folder, _ = broken
    damage(folder)
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.open(folder)


def test_inconsistent_config(broken):
    folder, _ = broken
    cfg = json.loads((folder / "config.json").read_text())
    cfg["audio_config"]["deepstack_encoder_layer_indexes"] = [0, 9]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="deepstack encoder layer 9 is outside 0..3"):
        Checkpoint.open(folder)


def test_hub_id_offline_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="could not download nobody/not-a-model"):
        Checkpoint.open("nobody/not-a-model")
    with pytest.raises(CheckpointError, match="neither a local folder nor a hub id"):
        Checkpoint.open("./no/such/folder")
