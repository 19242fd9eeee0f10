import shutil

import pytest

from devices.tensorrt import engine_key, matching_engine


def test_engine_names_say_what_built_them():
    assert engine_key("NVIDIA GeForce RTX 4090", "10.7.0", "fp16") == "nvidia-geforce-rtx-4090-trt10.7.0-fp16"


def test_no_engine_is_used_without_tensorrt_or_for_another_gpu(tiny_bundle):
    engines = {"k": {"file": "encoder-k.engine", "gpu": "Other GPU", "tensorrt": "0.0", "precision": "fp16"}}
    assert matching_engine(tiny_bundle, engines, "NVIDIA GeForce RTX 4090") is None


def test_build_and_run_an_engine_on_this_gpu(tiny_bundle, tiny_reference, tmp_path):
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed: the engine path needs an NVIDIA GPU")
    if shutil.which("nvidia-smi") is None:
        pytest.skip("no NVIDIA GPU here: the TensorRT engine build and encoder were not exercised")
    from devices.tensorrt import build_engine
    from runtime.pipeline import Pipeline
    from tests.conftest import clip

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    build_engine(bundle, max_chunks=8)
    pipe = Pipeline.load(bundle, device="cuda")
    assert pipe.encoder.providers == ["TensorRT"], pipe.notes
    x = clip(9.3)
    expected, got = tiny_reference.audio_rows(x).numpy(), pipe.encode_audio(x)
    cos = float((expected * got).sum() / (((expected ** 2).sum() * (got ** 2).sum()) ** 0.5))
    assert cos >= 0.999, trt.__version__
