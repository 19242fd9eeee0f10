"""A base install (no extras) runs what a device runs: `python -m runtime`, `python -m devices
list` and `python -m devices check`. The export extra's packages are blocked in every process
these commands start (children included), as if they were not installed."""

import json
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import soundfile as sf

from tests.conftest import clip

EXTRA_ONLY = ("torch", "transformers", "safetensors", "tokenizers", "onnx", "onnxscript", "huggingface_hub", "jiwer")
ROOT = Path(__file__).resolve().parents[1]


def blocked_env(tmp_path: Path, blocked: tuple[str, ...] = EXTRA_ONLY) -> dict:
    """A sitecustomize that makes the extra's packages unimportable, inherited by spawned children."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import sys
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {blocked!r}:
                    raise ImportError(f"{{name}} is not installed (blocked: base install)")
        sys.meta_path.insert(0, Blocker())
    """))
    import os

    return {**os.environ, "PYTHONPATH": f"{site}:{ROOT}"}


def run(env, *args):
    return subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, env=env)


def test_the_blocker_blocks(tmp_path):
    out = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True,
                         env=blocked_env(tmp_path))
    assert out.returncode == 1 and "blocked: base install" in out.stderr


def test_device_commands_run_without_the_export_extra(small_bundle, tmp_path):
    env = blocked_env(tmp_path)
    sf.write(tmp_path / "a.wav", clip(2.0), 16000)
    answer = run(env, "runtime", small_bundle, tmp_path / "a.wav", "--max-new-tokens", "4", "--decoder", "q8_0")
    assert answer.returncode == 0, answer.stderr[-2000:]
    listing = run(env, "devices", "list")
    assert listing.returncode == 0 and "cpu-x86-avx2" in listing.stdout, listing.stderr[-2000:]
    check = run(env, "devices", "check", small_bundle, "--junit", tmp_path / "r.xml", "--json", tmp_path / "r.json")
    assert check.returncode == 0, check.stderr[-3000:]
    assert "drift against the expected outputs" in check.stdout and "decode" in check.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["device"]["ran_on"] == "cpu" and report["failed"] == []
    assert all(t["providers"] == ["CPUExecutionProvider"] for t in report["timings"].values())
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert suite.get("failures") == "0"
    assert {c.get("name") for c in suite} == {"encoder:fp32", "encoder:int8", "decoder:f16", "decoder:q8_0",
                                              "decoder:q4_k_m"}
