import dataclasses

import pytest

import runtime.placement.plan as plan_mod
from runtime.errors import BundleError, OptionsError, PromptError
from runtime.manifest import load_manifest
from runtime.placement.budget import overheads_gb
from runtime.placement.detect import Machine
from runtime.placement.plan import affordable_context, grown_context, kv_gb, make_plan

CPU = Machine("cpu", "Test CPU", "x86_64", frozenset({"avx2"}), 24.0, 20.0)
GPU = Machine("gpu", "NVIDIA GeForce RTX 4090", "x86_64", frozenset(), 24.0, 23.0, "8.9", ram_free_gb=30.0)


def test_gpu_without_gpu_libraries_falls_back_with_one_line(tiny_bundle, monkeypatch):
    monkeypatch.setattr(plan_mod, "_missing_gpu_libraries", lambda: "onnxruntime has no CUDA provider")
    p = make_plan(tiny_bundle, load_manifest(tiny_bundle, verify=False), "auto", machine=GPU)
    assert p.device == "cpu" and p.n_gpu_layers == 0
    assert p.notes == ("NVIDIA GeForce RTX 4090 found but onnxruntime has no CUDA provider; running on the CPU",)
    with pytest.raises(BundleError, match="device='cuda' but onnxruntime has no CUDA provider"):
        make_plan(tiny_bundle, load_manifest(tiny_bundle, verify=False), "cuda", machine=GPU)


def test_the_plan_takes_the_profile_context_and_offload(tiny_bundle, monkeypatch):
    monkeypatch.setattr(plan_mod, "_missing_gpu_libraries", lambda: "")
    manifest = load_manifest(tiny_bundle, verify=False)
    gpu = make_plan(tiny_bundle, manifest, "auto", machine=GPU)
    assert (gpu.device, gpu.n_gpu_layers, gpu.profile, gpu.context) == ("cuda", -1, "rtx-4090-24gb", 8192)
    cpu = make_plan(tiny_bundle, manifest, "cpu", machine=CPU, context=1000)
    assert (cpu.device, cpu.n_gpu_layers, cpu.context, cpu.encoder, cpu.decoder) == ("cpu", 0, 1000, "fp32", "q8_0")
    assert make_plan(tiny_bundle, manifest, "cpu", machine=CPU, context=10**6).context == 8192  # the model's own


def _with_context(manifest, positions: int):
    return dataclasses.replace(manifest, model=dataclasses.replace(manifest.model, context_length=positions))


def test_a_one_pass_family_gets_the_models_context_and_the_load_check_the_profiles(diarize_bundle, tiny_bundle):
    """Transcribe-Diarize answers a whole recording in one prompt (Qwen3-0.6B: 40960 positions);
    MOSS-Audio windows long audio, so the profile's 8192 stay its cap."""
    diarize = _with_context(load_manifest(diarize_bundle, verify=False), 40960)
    p = make_plan(diarize_bundle, diarize, "cpu", machine=CPU)
    assert (p.context, p.load_context) == (40960, 8192)
    assert make_plan(diarize_bundle, diarize, "cpu", machine=CPU, context=20000).context == 20000
    audio = _with_context(load_manifest(tiny_bundle, verify=False), 40960)
    assert make_plan(tiny_bundle, audio, "cpu", machine=CPU).context == 8192


def test_growing_past_the_checked_context_needs_memory_free_then(diarize_bundle):
    diarize = _with_context(load_manifest(diarize_bundle, verify=False), 40960)
    p = make_plan(diarize_bundle, diarize, "cpu", machine=CPU)
    more = kv_gb(diarize, 30000, "f16") - kv_gb(diarize, 8192, "f16")
    short = dataclasses.replace(CPU, free_gb=more * 0.9)
    room = 8192 + int((30000 - 8192) * 0.9)
    assert affordable_context(diarize, p, 8192, machine=short) == room
    assert affordable_context(diarize, p, 8192, machine=CPU) == 40960  # 20 GB free: the model's context
    assert grown_context(diarize, p, 8000, 8192, 0, machine=short) == 8192  # what the load-time check counted
    assert grown_context(diarize, p, 20000, 20224, 8192, machine=short) == 20224
    assert grown_context(diarize, p, room, room + 200, 8192, machine=short) == room  # the rounding gives way
    with pytest.raises(PromptError, match=r"context of 30000 positions, .* GB more KV cache \(f16\).*kv_type='q8_0'"):
        grown_context(diarize, p, 30000, 30208, 8192, machine=short)


def test_memory_check_says_what_would_fit(small_bundle):
    manifest = load_manifest(small_bundle, verify=False)
    sizes = {d: manifest.part_bytes("decoder", d) / 1e9 for d in manifest.decoders}
    fixed = manifest.part_bytes("encoder", "fp32") / 1e9 + kv_gb(manifest, 8192, "f16") + overheads_gb()
    free = fixed + (sizes["q4_k_m"] + sizes["q8_0"]) / 2  # q4_k_m fits, q8_0 not
    tight = Machine("cpu", "Small box", "x86_64", frozenset({"avx2"}), 4.0, round(free, 4))
    with pytest.raises(BundleError, match=r"decoder q8_0 need ~.* GB of RAM .* free on Small box: use decoder='q4_k_m'"):
        make_plan(small_bundle, manifest, "cpu", decoder="q8_0", machine=tight)
    assert make_plan(small_bundle, manifest, "cpu", decoder="q4_k_m", machine=tight).decoder == "q4_k_m"


def test_the_cpu_path_is_checked_against_ram_not_the_gpus_memory(small_bundle, monkeypatch):
    """A box whose GPU is full but whose RAM is free runs device='cpu'."""
    monkeypatch.setattr(plan_mod, "_missing_gpu_libraries", lambda: "")
    manifest = load_manifest(small_bundle, verify=False)
    full_gpu = dataclasses.replace(GPU, free_gb=0.001)
    assert make_plan(small_bundle, manifest, "cpu", machine=full_gpu).device == "cpu"
    with pytest.raises(BundleError, match="GPU memory"):
        make_plan(small_bundle, manifest, "cuda", machine=full_gpu)


def test_unknown_device_name_and_bad_context(tiny_bundle):
    manifest = load_manifest(tiny_bundle, verify=False)
    with pytest.raises(OptionsError, match="choose auto, cpu or cuda"):
        make_plan(tiny_bundle, manifest, "tpu", machine=CPU)
    with pytest.raises(OptionsError, match="context must be at least 1"):
        make_plan(tiny_bundle, manifest, "cpu", machine=CPU, context=0)


def test_memory_knobs_come_from_the_profile_unless_given(tiny_bundle):
    """The AVX-512 CPU profile chooses shared, quickly loaded weights and no encoder arena (bench/README.md,
    start-up knobs); each argument overrides its own knob only."""
    manifest = load_manifest(tiny_bundle, verify=False)
    avx512 = Machine("cpu", "Test CPU", "x86_64", frozenset({"avx2", "avx512f"}), 24.0, 20.0)
    chosen = make_plan(tiny_bundle, manifest, "cpu", machine=avx512)
    assert (chosen.profile, chosen.prepack, chosen.repack, chosen.arena) == ("cpu-x86-avx512", False, False, False)
    flipped = make_plan(tiny_bundle, manifest, "cpu", machine=avx512, arena=True)
    assert (flipped.prepack, flipped.repack, flipped.arena) == (False, False, True)
    flipped = make_plan(tiny_bundle, manifest, "cpu", machine=avx512, repack=True, prepack=True)
    assert (flipped.prepack, flipped.repack, flipped.arena) == (True, True, False)
    avx2 = make_plan(tiny_bundle, manifest, "cpu", machine=CPU)  # repacking not measured there: kept on
    assert (avx2.profile, avx2.prepack, avx2.repack, avx2.arena) == ("cpu-x86-avx2", False, True, False)


def test_an_int8_encoder_with_8_bit_weights_gets_a_note_on_x86_without_vnni(tiny_bundle):
    """Bundles exported before 2026-12-03 carry 8-bit INT8 weights (no weight_bits in the manifest),
    which onnxruntime's u8 x s8 kernels saturate on x86 CPUs without VNNI."""
    manifest = load_manifest(tiny_bundle, verify=False)
    assert manifest.encoders["int8"].weight_bits == 7 and manifest.encoders["fp32"].weight_bits is None
    assert make_plan(tiny_bundle, manifest, "cpu", encoder="int8", machine=CPU).notes == ()
    old = dataclasses.replace(manifest, encoders={**manifest.encoders, "int8": dataclasses.replace(
        manifest.encoders["int8"], weight_bits=None)})
    (note,) = make_plan(tiny_bundle, old, "cpu", encoder="int8", machine=CPU).notes
    assert "encoder-int8.onnx has 8-bit weights" in note and "re-export the bundle" in note
    assert make_plan(tiny_bundle, old, "cpu", machine=CPU).notes == ()  # the FP32 encoder is chosen
    vnni = dataclasses.replace(CPU, cpu_flags=frozenset({"avx2", "avx512f", "avx512_vnni"}))
    arm = dataclasses.replace(CPU, arch="aarch64", cpu_flags=frozenset({"asimd"}))
    for machine in (vnni, arm):
        assert make_plan(tiny_bundle, old, "cpu", encoder="int8", machine=machine).notes == ()
