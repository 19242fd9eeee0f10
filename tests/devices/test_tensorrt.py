import dataclasses
import shutil
import sys
import types

import pytest

from devices.tensorrt import engine_key
from runtime.manifest import EngineInfo, load_manifest
from runtime.placement.detect import Machine, detect
from runtime.placement.plan import matching_engine

RTX = Machine("gpu", "NVIDIA GeForce RTX 4090", "x86_64", frozenset(), 24.0, 23.0, "8.9")


def test_engine_names_say_what_built_them():
    assert engine_key("NVIDIA GeForce RTX 4090", "10.7.0", "fp16") == "nvidia-geforce-rtx-4090-trt10.7.0-fp16"


def test_an_engine_is_used_only_on_its_gpu_with_its_tensorrt(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.7.0"))
    bundle = tmp_path / "b"
    shutil.copytree(tiny_bundle, bundle)
    (bundle / "e.engine").write_bytes(b"engine")
    entry = EngineInfo(file="e.engine", gpu=RTX.model, compute_capability="8.9", tensorrt="10.7.0", precision="fp16",
                       built_from="encoder-fp16.onnx", max_chunks=8)
    manifest = dataclasses.replace(load_manifest(bundle, verify=False), engines={"k": entry})
    assert matching_engine(bundle, manifest, RTX) == entry
    assert matching_engine(bundle, manifest, dataclasses.replace(RTX, model="NVIDIA GeForce RTX 3060")) is None
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.8.0"))
    assert matching_engine(bundle, manifest, RTX) is None  # another TensorRT: rebuild
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # not installed
    assert matching_engine(bundle, manifest, RTX) is None


def test_build_and_run_an_engine_on_this_gpu(tiny_bundle, tiny_reference, tmp_path):
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed: the engine path needs an NVIDIA GPU")
    if detect().kind == "cpu":
        pytest.skip("no NVIDIA GPU here (NVML, nvidia-smi, Jetson device tree): the engine build was not exercised")
    from devices.tensorrt import build_engine
    from runtime.pipeline import Pipeline
    from tests.conftest import clip

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    path = build_engine(bundle, max_chunks=8)
    manifest = load_manifest(bundle)  # the engine is listed with its sha256 and verifies
    assert path.name in manifest.files and list(manifest.engines.values())[0].file == path.name
    pipe = Pipeline.load(bundle, device="cuda")
    assert pipe.encoder.providers == ["TensorRT"], pipe.notes
    assert pipe.encoder.width == manifest.model.row_width  # read from the engine, not the manifest
    x = clip(9.3)
    expected, got = tiny_reference.audio_rows(x).numpy(), pipe.encode_audio(x)
    cos = float((expected * got).sum() / (((expected ** 2).sum() * (got ** 2).sum()) ** 0.5))
    assert cos >= 0.999999, trt.__version__  # the fp16 ONNX graph measured 0.9999997 on the CPU


def test_build_and_run_an_engine_of_a_windowed_family_on_this_gpu(diarize_bundle, diarize_ckpt, tmp_path):
    """Transcribe-Diarize's graph takes whole 30 s windows (mel only): the engine's profile and the
    backend's inputs follow the manifest."""
    pytest.importorskip("tensorrt", reason="TensorRT is not installed: the engine path needs an NVIDIA GPU")
    if detect().kind == "cpu":
        pytest.skip("no NVIDIA GPU here (NVML, nvidia-smi, Jetson device tree): the engine build was not exercised")
    from devices.tensorrt import build_engine
    from export.checkpoint import Checkpoint
    from export.reference import MossAudioReference
    from runtime.pipeline import Pipeline
    from tests.conftest import clip

    bundle = tmp_path / "bundle"
    shutil.copytree(diarize_bundle, bundle)
    build_engine(bundle, max_chunks=2)
    pipe = Pipeline.load(bundle, device="cuda")
    assert pipe.encoder.providers == ["TensorRT"], pipe.notes
    x = clip(33.0)  # two windows
    _, rows = MossAudioReference(Checkpoint.open(diarize_ckpt)).prepare([x], "?")
    expected, got = rows.numpy(), pipe.encode_audio(x)
    cos = float((expected * got).sum() / (((expected ** 2).sum() * (got ** 2).sum()) ** 0.5))
    # the engine is built from the fp16 graph, which measured cosine >= 0.9999997 on the CPU (7, 33, 65 s);
    # no GPU has run this test yet
    assert cos >= 0.999999
