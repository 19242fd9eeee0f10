"""Which backends and bundle variants to use here, and whether they fit the memory there is."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from devices.budget import model_data
from devices.detect import Machine, best_profile, detect
from devices.profiles import Profile
from runtime.errors import BundleError, OptionsError
from runtime.manifest import Manifest

SIZE_BY_HIDDEN = {2560: "4b", 4096: "8b"}
GB = 1e9


@dataclass
class Plan:
    device: str  # "cpu" or "cuda"
    encoder: str | None  # variant names in the bundle; None: the runtime's preference
    decoder: str | None
    n_gpu_layers: int
    profile: Profile | None
    machine: Machine
    notes: list[str] = field(default_factory=list)


def plan(bundle: Path, manifest: Manifest, device: str = "auto", *, encoder: str | None = None,
         decoder: str | None = None, machine: Machine | None = None) -> Plan:
    if device not in ("auto", "cpu", "cuda"):
        raise OptionsError(f"device {device!r}: choose auto, cpu or cuda")
    machine = machine or detect()
    profile = best_profile(machine)
    notes = []
    if device == "auto":
        device = "cpu"
        if profile and profile.kind != "cpu":
            missing = _missing_gpu_libraries()
            if missing:
                notes.append(f"{machine.model} found but {missing}; running on the CPU")
            else:
                device = "cuda"
    size = SIZE_BY_HIDDEN.get(manifest.model.hidden_size)
    if profile and size and decoder is None:
        choice = profile.decoder.get(size)
        if choice and choice.quant in manifest.decoders:
            decoder = choice.quant
    if profile and encoder is None and profile.encoder["precision"] in manifest.encoders and device == "cuda":
        encoder = profile.encoder["precision"]
    layers = -1 if device == "cuda" else 0
    result = Plan(device, encoder, decoder, layers, profile, machine, notes)
    check_memory(bundle, manifest, result)
    return result


def check_memory(bundle: Path, manifest: Manifest, p: Plan) -> None:
    """Weights as stored + KV cache for the profile's context + overheads, against free memory."""
    free = p.machine.free_gb
    if not free:
        return
    from runtime.pipeline import DECODER_PREFERENCE, ENCODER_PREFERENCE, pick_variant

    enc = pick_variant(manifest.encoders, p.encoder, ENCODER_PREFERENCE[p.device], "encoder")
    dec = pick_variant(manifest.decoders, p.decoder, DECODER_PREFERENCE, "decoder")
    context = p.profile.context_tokens if p.profile else model_data()["context_tokens"]
    fixed = _kv_gb(manifest, context) + sum(model_data()["overheads_gb"].values())
    need = _part_gb(bundle, manifest.encoders[enc]) + _part_gb(bundle, manifest.decoders[dec]) + fixed
    if need <= free:
        return
    fits = [d for d in manifest.decoders
            if _part_gb(bundle, manifest.encoders[enc]) + _part_gb(bundle, manifest.decoders[d]) + fixed <= free]
    advice = (f"use decoder={fits[0]!r}" if fits else
              "export a smaller quant (python -m export ... --decoder q4_k_m) or free memory")
    raise BundleError(f"encoder {enc} + decoder {dec} need ~{need:.1f} GB (KV for {context} tokens included), "
                      f"{free:.1f} GB free on {p.machine.model}: {advice}")


def _part_gb(bundle: Path, part) -> float:
    files = [part.file] + ([part.external_data] if part.external_data else [])
    return sum((bundle / f).stat().st_size for f in files) / GB


def _kv_gb(manifest: Manifest, context: int) -> float:
    size = SIZE_BY_HIDDEN.get(manifest.model.hidden_size)
    if size is None:  # not a released shape: scale by hidden size, 36 layers as released
        return 2 * 36 * manifest.model.hidden_size // 4 * 2 * context / GB
    m = model_data()["models"][size]
    return 2 * m["layers"] * m["kv_heads"] * m["head_dim"] * 2 * context / GB


def _missing_gpu_libraries() -> str:
    import onnxruntime
    import llama_cpp

    gaps = []
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        gaps.append("onnxruntime has no CUDA provider (pip install '.[gpu]')")
    if not llama_cpp.llama_supports_gpu_offload():
        gaps.append('llama-cpp-python was built without CUDA (CMAKE_ARGS="-DGGML_CUDA=on" pip install ...)')
    return " and ".join(gaps)
