import subprocess
import sys

import pytest

import export.bundle as bundle_mod
from export.bundle import ExportOptions, export_bundle
from runtime.errors import OptionsError
from runtime.manifest import load_manifest


def test_options_are_validated():
    assert ExportOptions.parse("fp32, fp16", "f16,Q4_K_M") == ExportOptions(("fp32", "fp16"), ("f16", "q4_k_m"))
    with pytest.raises(OptionsError, match="fp32, fp16"):
        ExportOptions.parse("int3", "f16")
    with pytest.raises(OptionsError, match="unknown GGUF type 'q9'"):
        ExportOptions.parse("fp32", "q9")


def test_interrupted_export_leaves_nothing_that_loads(tiny_ckpt, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bundle_mod, "write_decoder_gguf", boom)
    with pytest.raises(KeyboardInterrupt):
        export_bundle(tiny_ckpt, tmp_path / "b", ExportOptions())
    assert list(tmp_path.iterdir()) == []


def test_quantized_only_export_drops_the_intermediate(tiny_ckpt, tmp_path):
    m = export_bundle(tiny_ckpt, tmp_path / "b", ExportOptions(encoder=("fp32",), decoder=("q8_0",)))
    assert set(m.decoders) == {"q8_0"} and m.decoders["q8_0"].details["made_from"] == "f16"
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["decoder-q8_0.gguf", "encoder-fp32.onnx",
                                                                 "expected.npz", "manifest.json"]
    load_manifest(tmp_path / "b")


def test_demo_runs_the_main_job(tmp_path):
    """The README's first command: synth, export, ask, and match the reference."""
    out = subprocess.run([sys.executable, "-m", "export", "demo", "--work", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "prompt ids identical, 24/24 tokens match" in out.stdout
