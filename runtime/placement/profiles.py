"""Device profiles: one validated JSON file per target; no branches on device names in code."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from runtime.errors import MossError
from runtime.typed import SchemaError, from_json

PROFILE_DIR = Path(__file__).with_name("profiles")
KINDS = ("jetson", "gpu", "cpu")
ENCODER_BACKENDS = ("tensorrt", "onnxruntime-tensorrt", "onnxruntime-cuda", "onnxruntime-cpu")


class ProfileError(MossError):
    """A profile file that is malformed or inconsistent."""


@dataclass(frozen=True)
class Match:
    """Every rule given must hold for the profile to apply."""

    kind: str
    model_contains: tuple[str, ...] | None = None
    gpu_name_contains: tuple[str, ...] | None = None
    arch: tuple[str, ...] | None = None
    cpu_flags: tuple[str, ...] | None = None
    total_gb_min: float | None = None
    total_gb_max: float | None = None

    @property
    def specificity(self) -> int:
        rules = [v for k, v in self.__dict__.items() if k != "kind" and v is not None]
        return len(rules) + len(self.cpu_flags or ())


@dataclass(frozen=True)
class Memory:
    total_gb: float | None
    usable_gb: float | None  # None: as detected
    unified: bool  # CPU and GPU share it (Jetson)
    note: str


@dataclass(frozen=True)
class EncoderChoice:
    backend: str
    precision: str
    fallback: tuple[str, ...] = ()
    # onnxruntime's packed weight copies: faster GEMM, private memory, slower load. The CPU profiles turn
    # it off: on the 4B shape (30 s clip, 2 cores, AVX-512) it made encoding 24 % faster for 8.2 s more
    # load, and two processes held 1.48x one's memory instead of 1.06x (bench/README.md, start-up knobs).
    prepack: bool = True
    # onnxruntime's CPU memory arena keeps freed activations for reuse, in regions that grow by doubling.
    # The CPU profiles turn it off: on the 4B shape (30 s clip, 2 cores) it held 577 MB more at peak
    # (1.18x the bundle files instead of 1.08x) for 3 % faster encoding (bench/README.md, start-up knobs).
    # An allocator's trade, not an instruction set's: one measurement serves every CPU profile.
    arena: bool = True


@dataclass(frozen=True)
class DecoderChoice:
    quant: str | None  # None: this model size does not fit the device
    n_gpu_layers: int = 0
    budget_gb: float | None = None
    arithmetic: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    kind: str
    match: Match
    compute_capability: str | None
    memory: Memory
    encoder: EncoderChoice
    context_tokens: int
    decoder: dict[str, DecoderChoice] = field(default_factory=dict)
    # llama.cpp's CPU repacking of some quant types: faster decoding, slower prefill, seconds of load and a
    # private copy of the weights. The AVX-512 profile turns it off: on the 4B shape a 30 s clip with 64
    # new tokens was answered sooner without it, with the weights shared (bench/README.md, start-up knobs).
    decoder_repack: bool = True

    @property
    def usable_gb(self) -> float | None:
        return self.memory.usable_gb


def load_profile(path: Path) -> Profile:
    try:
        profile = from_json(Profile, json.loads(path.read_text()), path.name)
    except (json.JSONDecodeError, SchemaError) as e:
        raise ProfileError(f"device profile {path.name} is malformed: {e}") from None
    problems = []
    if profile.name != path.stem:
        problems.append(f"name {profile.name!r} differs from the file name")
    if profile.kind not in KINDS or profile.match.kind != profile.kind:
        problems.append(f"kind must be one of {KINDS} and match.kind the same")
    if profile.encoder.backend not in ENCODER_BACKENDS:
        problems.append(f"encoder backend must be one of {ENCODER_BACKENDS}")
    for size, choice in profile.decoder.items():
        if choice.quant is None and not choice.reason:
            problems.append(f"{size}: no quant and no reason")
        if choice.quant and profile.usable_gb is not None and (choice.budget_gb or 0) > profile.usable_gb:
            problems.append(f"{size} {choice.quant} needs {choice.budget_gb} GB, over {profile.usable_gb} GB usable")
    if problems:
        raise ProfileError(f"device profile {path.name}: " + "; ".join(problems))
    return profile


@lru_cache(maxsize=1)
def all_profiles() -> tuple[Profile, ...]:
    return tuple(load_profile(p) for p in sorted(PROFILE_DIR.glob("*.json")))


def get_profile(name: str) -> Profile:
    for p in all_profiles():
        if p.name == name:
            return p
    raise ProfileError(f"no device profile {name!r}; see python -m devices list")
