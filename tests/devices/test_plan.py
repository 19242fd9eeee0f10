import pytest

import devices.plan as plan_mod
from devices.detect import Machine
from devices.plan import plan
from runtime.errors import BundleError
from runtime.manifest import load_manifest

CPU = Machine("cpu", "Test CPU", "x86_64", frozenset({"avx2"}), 24.0, 20.0)
GPU = Machine("gpu", "NVIDIA GeForce RTX 4090", "x86_64", frozenset(), 24.0, 23.0, "8.9")


def test_gpu_without_gpu_libraries_falls_back_with_one_line(tiny_bundle, monkeypatch):
    monkeypatch.setattr(plan_mod, "_missing_gpu_libraries", lambda: "onnxruntime has no CUDA provider")
    p = plan(tiny_bundle, load_manifest(tiny_bundle, verify=False), "auto", machine=GPU)
    assert p.device == "cpu" and p.n_gpu_layers == 0
    assert p.notes == ["NVIDIA GeForce RTX 4090 found but onnxruntime has no CUDA provider; running on the CPU"]


def test_memory_check_says_what_would_fit(small_bundle):
    manifest = load_manifest(small_bundle, verify=False)
    sizes = {d: (small_bundle / manifest.decoders[d].file).stat().st_size / 1e9 for d in manifest.decoders}
    kv_and_overheads = plan_mod._kv_gb(manifest, 8192) + 1.1
    encoder = (small_bundle / manifest.encoders["fp32"].file).stat().st_size / 1e9
    free = encoder + kv_and_overheads + (sizes["q4_k_m"] + sizes["q8_0"]) / 2  # q4_k_m fits, q8_0 not
    tight = Machine("cpu", "Small box", "x86_64", frozenset({"avx2"}), 4.0, round(free, 4))
    with pytest.raises(BundleError, match=r"decoder q8_0 need ~.* GB free on Small box: use decoder='q4_k_m'"):
        plan(small_bundle, manifest, "cpu", decoder="q8_0", machine=tight)
    assert plan(small_bundle, manifest, "cpu", decoder="q4_k_m", machine=tight).decoder == "q4_k_m"


def test_unknown_device_name(tiny_bundle):
    from runtime.errors import OptionsError

    with pytest.raises(OptionsError, match="choose auto, cpu or cuda"):
        plan(tiny_bundle, load_manifest(tiny_bundle, verify=False), "tpu", machine=CPU)
