"""What machine this is: Jetson (device tree), NVIDIA dGPU (NVML, else nvidia-smi), CPU features, memory."""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from runtime.placement.profiles import Match, Profile, all_profiles

TEGRA_RELEASE = Path("etc/nv_tegra_release")
DEVICE_TREE_MODEL = Path("proc/device-tree/model")
GB = 1e9


# The CPU flags that decide speed here (BF16/VNNI change PyTorch's and onnxruntime's kernels): every
# measured figure names them.
ISA_FLAGS = frozenset({"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx_vnni",
                       "amx_bf16", "amx_int8", "asimd", "asimddp", "sve", "i8mm", "bf16"})


@dataclass(frozen=True)
class Machine:
    kind: str  # jetson, gpu or cpu
    model: str  # Jetson model, GPU name, or CPU description
    arch: str
    cpu_flags: frozenset[str] = field(default_factory=frozenset)
    total_gb: float = 0.0  # what the profile matches on: RAM, or VRAM for a dGPU
    free_gb: float = 0.0  # free memory of the device the decoder runs on when on the GPU
    compute_capability: str | None = None
    ram_free_gb: float | None = None  # host RAM free (the CPU path's limit); None: as free_gb

    @property
    def host_free_gb(self) -> float:
        return self.free_gb if self.ram_free_gb is None else self.ram_free_gb


def detect(root: Path = Path("/")) -> Machine:
    """`root` lets tests point at a fake filesystem."""
    arch = platform.machine()
    flags = _cpu_flags(root / "proc/cpuinfo")
    total, free = _memory(root)
    if (root / TEGRA_RELEASE).exists():
        model = _read(root / DEVICE_TREE_MODEL).strip("\x00 \n") or "Jetson"
        return Machine("jetson", model, arch, flags, total, free)
    gpu = _nvidia_gpu()
    if gpu:
        name, vram_total, vram_free, cc = gpu
        return Machine("gpu", name, arch, flags, vram_total, vram_free, cc, ram_free_gb=free)
    return Machine("cpu", _cpu_model(root / "proc/cpuinfo") or arch, arch, flags, total, free)


def cpu_summary(root: Path = Path("/")) -> tuple[str, tuple[str, ...]]:
    """The CPU's model name and ISA flags, on any kind of machine: what a measured figure names."""
    info = root / "proc/cpuinfo"
    return _cpu_model(info) or platform.machine(), tuple(sorted(_cpu_flags(info) & ISA_FLAGS))


def best_profile(machine: Machine) -> Profile | None:
    """The most specific profile whose every match rule holds."""
    matching = [p for p in all_profiles() if matches(p.match, machine)]
    return max(matching, key=lambda p: p.match.specificity, default=None)


def matches(rule: Match, m: Machine) -> bool:
    if rule.kind != m.kind:
        return False
    for names in (rule.model_contains, rule.gpu_name_contains):
        if names is not None and not any(s in m.model for s in names):
            return False
    if rule.arch is not None and m.arch not in rule.arch:
        return False
    if rule.cpu_flags is not None and not set(rule.cpu_flags) <= m.cpu_flags:
        return False
    if rule.total_gb_min is not None and m.total_gb < rule.total_gb_min:
        return False
    return not (rule.total_gb_max is not None and m.total_gb > rule.total_gb_max)


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


def _memory(root: Path) -> tuple[float, float]:
    """(total, available) RAM in GB: psutil on this machine, the fake /proc/meminfo under a test root."""
    if root == Path("/"):
        import psutil

        vm = psutil.virtual_memory()
        return round(vm.total / GB, 2), round(vm.available / GB, 2)
    values = {}
    for line in _read(root / "proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        if rest.strip():
            values[key] = int(rest.split()[0]) * 1024 / GB
    return round(values.get("MemTotal", 0.0), 2), round(values.get("MemAvailable", 0.0), 2)


def _nvidia_gpu() -> tuple[str, float, float, str] | None:
    """(name, VRAM total GB, VRAM free GB, compute capability) of GPU 0, through NVML where
    nvidia-ml-py is installed, else nvidia-smi; None without an NVIDIA GPU."""
    try:
        import pynvml
    except ImportError:
        return _nvidia_smi()
    try:
        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            name = pynvml.nvmlDeviceGetName(handle)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        return None
    name = name.decode() if isinstance(name, bytes) else name
    return name, round(mem.total / 2**30, 2), round(mem.free / 2**30, 2), f"{major}.{minor}"


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
