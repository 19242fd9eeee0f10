import pytest

import runtime.placement.detect as detect_mod
from runtime.placement.detect import Machine, best_profile, cpu_summary, detect


def fake_root(tmp_path, *, model=None, mem_gb=8, flags="fpu sse avx2"):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/meminfo").write_text(f"MemTotal: {int(mem_gb * 1e6 / 1.024)} kB\nMemAvailable: 1000000 kB\n")
    (tmp_path / "proc/cpuinfo").write_text(f"model name\t: Test CPU\nflags\t\t: {flags}\n")
    if model:
        (tmp_path / "etc").mkdir()
        (tmp_path / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.0\n")
        (tmp_path / "proc/device-tree").mkdir()
        (tmp_path / "proc/device-tree/model").write_text(model + "\x00")
    return tmp_path


@pytest.mark.parametrize("model,mem,expected", [
    ("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super", 7.6, "orin-nano-8gb"),
    ("NVIDIA Jetson Orin NX Engineering Reference Developer Kit", 15.6, "orin-nx-16gb"),
    ("Jetson AGX Orin Developer Kit", 30.6, "agx-orin-32gb"),
    ("Jetson AGX Orin Developer Kit", 61.4, "agx-orin-64gb"),
    ("NVIDIA Jetson AGX Thor Developer Kit", 122.8, "agx-thor"),
])
def test_jetsons(tmp_path, monkeypatch, model, mem, expected):
    monkeypatch.setattr(detect_mod.platform, "machine", lambda: "aarch64")
    m = detect(fake_root(tmp_path, model=model, mem_gb=mem))
    assert m.kind == "jetson" and best_profile(m).name == expected


@pytest.mark.parametrize("gpu,vram,expected", [("NVIDIA GeForce RTX 4090", 23.99, "rtx-4090-24gb"),
                                               ("NVIDIA GeForce RTX 3060", 12.0, "rtx-3060-12gb"),
                                               ("NVIDIA GeForce RTX 4060 Ti", 16.0, "rtx-4060ti-16gb"),
                                               ("NVIDIA GeForce RTX 5090", 31.8, "rtx-5090-32gb")])
def test_rtx_cards(tmp_path, monkeypatch, gpu, vram, expected):
    monkeypatch.setattr(detect_mod, "_nvidia_gpu", lambda: (gpu, vram, vram - 1, "8.9"))
    assert best_profile(detect(fake_root(tmp_path))).name == expected


@pytest.mark.parametrize("arch,flags,expected", [("x86_64", "sse avx2 avx512f", "cpu-x86-avx512"),
                                                 ("x86_64", "sse avx2", "cpu-x86-avx2"),
                                                 ("aarch64", "fp asimd", "cpu-aarch64-neon")])
def test_cpus(tmp_path, monkeypatch, arch, flags, expected):
    monkeypatch.setattr(detect_mod, "_nvidia_gpu", lambda: None)
    monkeypatch.setattr(detect_mod.platform, "machine", lambda: arch)
    assert best_profile(detect(fake_root(tmp_path, flags=flags))).name == expected


def test_unknown_gpu_has_no_profile():
    assert best_profile(Machine("gpu", "Tesla T4", "x86_64", frozenset(), 16, 15, "7.5")) is None


def test_cpu_summary_names_the_model_and_only_the_isa_flags_that_decide_speed(tmp_path):
    root = fake_root(tmp_path, flags="fpu sse avx2 fma avx512f avx512_vnni ht")
    assert cpu_summary(root) == ("Test CPU", ("avx2", "avx512_vnni", "avx512f", "fma"))
