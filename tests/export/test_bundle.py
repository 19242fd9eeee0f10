import re
import subprocess
import sys

import pytest

import export.bundle as bundle_mod
from export.bundle import ExportOptions, export_bundle
from export.demo import DEFAULT_MODEL, demo_clips
from runtime import DEMO_AUDIO, DEMO_TEXT
from runtime.errors import OptionsError
from runtime.manifest import load_manifest


def test_options_are_validated():
    assert ExportOptions.parse("fp32, fp16", "f16,Q4_K_M") == ExportOptions(("fp32", "fp16"), ("f16", "q4_k_m"))
    with pytest.raises(OptionsError, match="fp32, fp16"):
        ExportOptions.parse("int3", "f16")
    with pytest.raises(OptionsError, match="unknown GGUF type 'q9'"):
        ExportOptions.parse("fp32", "q9")


def test_generation_defaults_come_from_the_checkpoint(tiny_ckpt, tmp_path):
    import json
    import shutil

    from export.processor import generation_defaults

    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_ckpt, folder)
    config = json.loads((folder / "generation_config.json").read_text())
    config.update(temperature=0.7, top_k=20, max_new_tokens=77, do_sample=False)
    (folder / "generation_config.json").write_text(json.dumps(config))
    g = generation_defaults(folder)
    assert (g.temperature, g.top_k, g.max_new_tokens, g.do_sample, g.top_p) == (0.7, 20, 77, False, 1.0)


def test_interrupted_export_leaves_nothing_that_loads(tiny_ckpt, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bundle_mod, "write_decoder_gguf", boom)
    with pytest.raises(KeyboardInterrupt):
        export_bundle(tiny_ckpt, tmp_path / "b", ExportOptions())
    assert list(tmp_path.iterdir()) == []


def test_quantized_only_export_drops_the_intermediate(tiny_ckpt, tmp_path):
    m = export_bundle(tiny_ckpt, tmp_path / "b", ExportOptions(encoder=("fp32",), decoder=("q8_0",)))
    assert set(m.decoders) == {"q8_0"} and m.decoders["q8_0"].made_from == "f16"
    names = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert not any("f16" in n for n in names), names
    assert names == sorted(["decoder-q8_0.gguf", "decoder-q8_0.digits.npy", "encoder-fp32.onnx",
                            "encoder-fp32.onnx.data", "expected.npz", "manifest.json"]), names
    load_manifest(tmp_path / "b")


def test_demo_runs_the_main_job(tmp_path):
    """The README's first command: export the shipped model, transcribe, score, match the reference."""
    out = subprocess.run([sys.executable, "-m", "export", "demo", "--work", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    (held_out, text, _), (bundled, *_) = demo_clips(DEFAULT_MODEL)
    assert held_out.parent.parent == DEFAULT_MODEL / "eval" and bundled == DEMO_AUDIO
    assert f"\n{held_out.name} (" in out.stdout and f"reference: {text}\nCER " in out.stdout, out.stdout
    assert f"reference: {DEMO_TEXT}\nCER " in out.stdout, out.stdout
    assert re.search(r"prompt ids identical, (\d+)/\1 tokens match", out.stdout), out.stdout


def test_demo_clips_without_an_evaluation_set_are_the_bundled_clip(tiny_ckpt):
    assert not (tiny_ckpt / "eval").exists()
    assert [clip for clip, *_ in demo_clips(tiny_ckpt)] == [DEMO_AUDIO]


def test_demo_without_a_model_says_what_to_do(tmp_path):
    out = subprocess.run([sys.executable, "-m", "export", "demo", "--work", str(tmp_path), "--model",
                          str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "pass --model" in out.stderr, out.stdout + out.stderr

