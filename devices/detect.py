"""What machine this is: Jetson (device tree), NVIDIA dGPU (nvidia-smi), CPU features, memory."""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from devices.profiles import Profile, all_profiles

TEGRA_RELEASE = Path("/etc/nv_tegra_release")
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")


@dataclass(frozen=True)
class Machine:
    kind: str  # jetson, gpu or cpu
    model: str  # Jetson model, GPU name, or CPU description
    arch: str
    cpu_flags: frozenset[str] = field(default_factory=frozenset)
    total_gb: float = 0.0  # RAM, or VRAM for a dGPU
    free_gb: float = 0.0
    compute_capability: str | None = None


def detect(root: Path = Path("/")) -> Machine:
    """`root` lets tests point at a fake filesystem."""
    arch = platform.machine()
    flags = _cpu_flags(root / "proc/cpuinfo")
    total, free = _meminfo(root / "proc/meminfo")
    tegra = root / str(TEGRA_RELEASE).lstrip("/")
    if tegra.exists():
        model = _read(root / str(DEVICE_TREE_MODEL).lstrip("/")).strip("\x00 \n") or "Jetson"
        return Machine("jetson", model, arch, flags, total, free)
    gpu = _nvidia_smi()
    if gpu:
        name, vram_total, vram_free, cc = gpu
        return Machine("gpu", name, arch, flags, vram_total, vram_free, cc)
    return Machine("cpu", _cpu_model(root / "proc/cpuinfo") or arch, arch, flags, total, free)


def best_profile(machine: Machine) -> Profile | None:
    """The most specific profile whose every match rule holds."""
    matching = [p for p in all_profiles() if _matches(p.match, machine)]
    return max(matching, key=lambda p: len(p.match) + len(p.match.get("cpu_flags", [])), default=None)


def _matches(rule: dict, m: Machine) -> bool:
    if rule["kind"] != m.kind:
        return False
    if "model_contains" in rule and not any(s in m.model for s in rule["model_contains"]):
        return False
    if "gpu_name_contains" in rule and not any(s in m.model for s in rule["gpu_name_contains"]):
        return False
    if "arch" in rule and m.arch not in rule["arch"]:
        return False
    if "cpu_flags" in rule and not set(rule["cpu_flags"]) <= m.cpu_flags:
        return False
    if "total_gb_min" in rule and m.total_gb < rule["total_gb_min"]:
        return False
    return not ("total_gb_max" in rule and m.total_gb > rule["total_gb_max"])


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _cpu_flags(path: Path) -> frozenset[str]:
    for line in _read(path).splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def _cpu_model(path: Path) -> str:
    for line in _read(path).splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return ""


def _meminfo(path: Path) -> tuple[float, float]:
    values = {}
    for line in _read(path).splitlines():
        key, _, rest = line.partition(":")
        if rest.strip():
            values[key] = int(rest.split()[0]) * 1024 / 1e9
    return round(values.get("MemTotal", 0.0), 2), round(values.get("MemAvailable", 0.0), 2)


def _nvidia_smi() -> tuple[str, float, float, str] | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,memory.free,compute_cap",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    name, total, free, cc = [x.strip() for x in out.stdout.splitlines()[0].split(",")]
    return name, round(float(total) / 1024, 2), round(float(free) / 1024, 2), cc
