"""The one decision of how a bundle runs here: device, variants, engine, offload, context.

Made once, from the machine, its profile and the manifest; Pipeline.load only carries it
out. A caller's explicit choice always wins over the profile; an explicit `cuda` without
the GPU libraries is an error, `auto` falls back to the CPU with a one-line note.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runtime.errors import BundleError, OptionsError, PromptError
from runtime.manifest import EncoderPart, EngineInfo, Manifest
from runtime.placement.budget import kv_cache_gb, model_data
from runtime.placement.detect import GB, Machine, best_profile, detect
from runtime.placement.profiles import Profile
from runtime.variants import DECODER_PREFERENCE, ENCODER_PREFERENCE, pick_variant

DEVICES = ("auto", "cpu", "cuda")
SIZE_BY_HIDDEN = {2560: "4b", 4096: "8b"}  # released shapes the profiles carry decoder choices for
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})  # x86 CPUs with these multiply u8 x s8 without saturating


@dataclass(frozen=True)
class Plan:
    device: str  # "cpu" or "cuda"
    encoder: str  # encoder variant in the bundle
    engine: EngineInfo | None  # a TensorRT engine built on this GPU, used for the encoder
    decoder: str  # decoder variant in the bundle
    n_gpu_layers: int
    context: int  # decoder positions allowed: the model's, capped by the profile's unless the model is one-pass
    kv_type: str
    profile: str | None
    machine: Machine
    notes: tuple[str, ...] = ()
    prepack: bool = True  # encoder weights packed by onnxruntime (private) or used in place (shared)
    repack: bool = True  # decoder weights repacked by llama.cpp for the CPU (private) or mapped (shared)
    arena: bool = True  # onnxruntime's CPU memory arena for the encoder's activations (faster, larger peak)
    checked_context: int = 0  # positions whose KV cache the load-time memory check counts (0: all of context)

    @property
    def load_context(self) -> int:
        return self.checked_context or self.context


def make_plan(bundle: Path, manifest: Manifest, device: str = "auto", *, encoder: str | None = None,
              decoder: str | None = None, n_gpu_layers: int | None = None, context: int | None = None,
              kv_type: str = "f16", prepack: bool | None = None, repack: bool | None = None, arena: bool | None = None,
              machine: Machine | None = None, check_memory: bool = True) -> Plan:
    if device not in DEVICES:
        raise OptionsError(f"device {device!r}: choose auto, cpu or cuda")
    machine = machine or detect()
    profile = best_profile(machine)
    notes: list[str] = []
    resolved = _device(device, machine, profile, notes)
    size = SIZE_BY_HIDDEN.get(manifest.model.hidden_size)
    choice = profile.decoder.get(size) if profile and size else None
    if decoder is None and choice and choice.quant in manifest.decoders:
        decoder = choice.quant
    if encoder is None and profile and resolved == "cuda" and profile.encoder.precision in manifest.encoders:
        encoder = profile.encoder.precision
    enc = pick_variant(manifest.encoders, encoder, ENCODER_PREFERENCE[resolved], "encoder")
    if resolved == "cpu" and _saturates(manifest.encoders[enc], machine):
        notes.append(f"{manifest.encoders[enc].file} has 8-bit weights, which this CPU (x86 without VNNI) "
                     "saturates: its rows drift (cosine 0.998 against FP32, measured on an AVX2 EPYC); "
                     "re-export the bundle (7-bit weights since 2026-12-03) or use encoder='fp32'")
    dec = pick_variant(manifest.decoders, decoder, DECODER_PREFERENCE, "decoder")
    if n_gpu_layers is None:
        n_gpu_layers = 0 if resolved == "cpu" else (choice.n_gpu_layers if choice and choice.quant else -1)
    if context is not None and context < 1:
        raise OptionsError(f"context must be at least 1 position, got {context}")
    own = manifest.model.context_length
    cap = min(own, profile.context_tokens) if profile else own
    context = min(own, context or (own if manifest.model.one_pass else cap))
    engine = matching_engine(bundle, manifest, machine) if resolved == "cuda" else None
    prepack = (profile.encoder.prepack if profile else True) if prepack is None else prepack
    repack = (profile.decoder_repack if profile else True) if repack is None else repack
    arena = (profile.encoder.arena if profile else True) if arena is None else arena
    plan = Plan(resolved, enc, engine, dec, n_gpu_layers, context, kv_type, profile.name if profile else None,
                machine, tuple(notes), prepack, repack, arena, checked_context=min(context, cap))
    if check_memory:
        _check_memory(manifest, plan)
    return plan


def _saturates(part: EncoderPart, machine: Machine) -> bool:
    """An INT8 encoder with full 8-bit weights on an x86 CPU whose u8 x s8 kernels sum pairs in
    int16 (no VNNI): export/encoder_precisions.py measures what that costs."""
    eight_bits = part.precision == "int8" and (part.weight_bits or 8) > 7
    return eight_bits and machine.arch in ("x86_64", "AMD64") and not VNNI_FLAGS & machine.cpu_flags


def _device(device: str, machine: Machine, profile: Profile | None, notes: list[str]) -> str:
    if device == "cpu":
        return "cpu"
    missing = _missing_gpu_libraries() if device == "cuda" or machine.kind != "cpu" else ""
    if device == "cuda":
        if missing:
            raise BundleError(f"device='cuda' but {missing}; or use device='cpu'")
        return "cuda"
    if machine.kind == "cpu" or profile is None or profile.kind == "cpu":
        return "cpu"
    if missing:
        notes.append(f"{machine.model} found but {missing}; running on the CPU")
        return "cpu"
    return "cuda"


def matching_engine(bundle: Path, manifest: Manifest, machine: Machine) -> EngineInfo | None:
    """The TensorRT engine built on this GPU model with the installed TensorRT, if the bundle has one."""
    try:
        import tensorrt as trt
    except ImportError:
        return None
    for engine in manifest.engines.values():
        if engine.gpu == machine.model and engine.tensorrt == trt.__version__ and (Path(bundle) / engine.file).is_file():
            return engine
    return None


def kv_gb(manifest: Manifest, context: int, kv_type: str) -> float:
    m = manifest.model
    return kv_cache_gb(m.n_layers, m.n_kv_heads, m.head_dim, context, kv_type)


def _gpu_share(manifest: Manifest, p: Plan) -> float:
    """The fraction of the decoder's layers (and so of its KV cache) on the GPU."""
    if p.device == "cpu":
        return 0.0
    return 1.0 if p.n_gpu_layers < 0 else min(1.0, p.n_gpu_layers / manifest.model.n_layers)


def _pools(p: Plan, gpu: float, host: float) -> dict[str, float]:
    """A Jetson's pools are one (unified memory), as is a CPU run's."""
    if p.device == "cpu" or p.machine.kind == "jetson":
        return {"RAM": gpu + host}
    return {"GPU memory": gpu, "RAM": host}


def memory_need(manifest: Manifest, p: Plan, decoder: str) -> dict[str, float]:
    """GB each memory pool must hold: the GPU's for offloaded layers (with their KV) and a GPU
    encoder, host RAM for the rest."""
    overheads = model_data()["overheads_gb"]
    frac = _gpu_share(manifest, p)
    layers = manifest.part_bytes("decoder", decoder) / GB + kv_gb(manifest, p.load_context, p.kv_type)
    encoder = manifest.part_bytes("encoder", p.encoder) / GB
    gpu = frac * layers + (encoder if p.device == "cuda" else 0.0)
    host = (1 - frac) * layers + (0.0 if p.device == "cuda" else encoder) + overheads["runtime"]
    extra = overheads["llama_compute"] + overheads["encoder_activations"]
    return _pools(p, gpu + extra, host)


def affordable_context(manifest: Manifest, p: Plan, current: int, machine: Machine | None = None) -> int:
    """The most positions the context may grow to from `current` with the memory free now; at
    least what the load-time check counted, at most the plan's context."""
    if p.context <= p.load_context:
        return p.context
    now = machine or detect()
    free = {"RAM": now.host_free_gb, "GPU memory": now.free_gb}
    frac, per = _gpu_share(manifest, p), kv_gb(manifest, 1, p.kv_type)
    room = [free[pool] / gb for pool, gb in _pools(p, frac * per, (1 - frac) * per).items() if gb > 0 and free[pool]]
    return min(p.context, max(p.load_context, current + int(min(room, default=p.context))))


def grown_context(manifest: Manifest, p: Plan, need: int, wanted: int, old: int,
                  machine: Machine | None = None) -> int:
    """The size to grow the decoder's context to from `old` positions: `wanted` (need, rounded
    up) as far as the memory free now allows past the load-time check; an error if not even
    `need` fits."""
    if wanted <= p.load_context:
        return wanted
    room = affordable_context(manifest, p, old, machine)
    if need <= room:
        return max(need, min(wanted, room))
    more = kv_gb(manifest, need, p.kv_type) - kv_gb(manifest, old, p.kv_type)
    smaller = "kv_type='q8_0' (halves it), " if p.kv_type == "f16" else ""
    raise PromptError(f"this prompt needs a context of {need} positions, {more:.2f} GB more KV cache ({p.kv_type}) "
                      f"than memory free now allows: use {smaller}shorter audio or window='auto', or free memory")


def _check_memory(manifest: Manifest, p: Plan) -> None:
    """Weights as stored + KV cache for the planned context + overheads, against what is free."""
    free = {"RAM": p.machine.host_free_gb, "GPU memory": p.machine.free_gb}

    def short(decoder: str) -> tuple[str, float] | None:
        for pool, gb in memory_need(manifest, p, decoder).items():
            if free[pool] and gb > free[pool]:
                return pool, gb
        return None

    over = short(p.decoder)
    if over is None:
        return
    fits = [d for d in DECODER_PREFERENCE if d in manifest.decoders and short(d) is None]
    advice = (f"use decoder={fits[0]!r}" if fits else
              "export a smaller quant (python -m export ... --decoder q4_k_m), plan a shorter context, or free memory")
    pool, gb = over
    raise BundleError(f"encoder {p.encoder} + decoder {p.decoder} need ~{gb:.1f} GB of {pool} (KV for {p.load_context} "
                      f"tokens included), {free[pool]:.1f} GB free on {p.machine.model}: {advice}")


def _missing_gpu_libraries() -> str:
    import llama_cpp
    import onnxruntime

    gaps = []
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        gaps.append("onnxruntime has no CUDA provider (pip install '.[gpu]')")
    if not llama_cpp.llama_supports_gpu_offload():
        gaps.append('llama-cpp-python was built without CUDA (CMAKE_ARGS="-DGGML_CUDA=on" pip install ...)')
    return " and ".join(gaps)
