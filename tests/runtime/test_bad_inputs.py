"""Every bad input the CLI can meet: one error line, exit code 2, nothing written.
(8 channels, 8 kHz and 192 kHz are not errors: they must just work.)"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from runtime.manifest import SCHEMA_VERSION, file_digest
from tests.conftest import clip


def cli(*args):
    return subprocess.run([sys.executable, "-m", "runtime", *map(str, args), "--max-new-tokens", "4",
                           "--decoder", "f16"], capture_output=True, text=True)


def copy_bundle(src, tmp_path):
    out = tmp_path / "bundle"
    shutil.copytree(src, out)
    return out


def audio_case(tmp_path, name):
    path = tmp_path / "in.wav"
    if name == "missing file":
        return path
    if name == "empty file":
        path.write_bytes(b"")
    elif name == "random bytes named .wav":
        path.write_bytes(np.random.default_rng(1).bytes(5000))
    elif name == "truncated WAV header":
        sf.write(path, clip(1.0), 16000)
        path.write_bytes(path.read_bytes()[:30])
    elif name == "shorter than one mel frame":
        sf.write(path, clip(0.005), 16000)
    elif name == "NaN samples":
        x = clip(1.0)
        x[100] = np.nan
        sf.write(path, x, 16000, subtype="FLOAT")
    elif name == "inf samples":
        x = clip(1.0)
        x[100] = np.inf
        sf.write(path, x, 16000, subtype="FLOAT")
    return path


@pytest.mark.parametrize("name,message", [
    ("missing file", "audio file not found"),
    ("empty file", "audio file is empty"),
    ("random bytes named .wav", "cannot decode"),
    ("truncated WAV header", "cannot decode"),
    ("shorter than one mel frame", "at least 10 ms"),
    ("NaN samples", "NaN or infinite"),
    ("inf samples", "NaN or infinite"),
])
def test_bad_audio(tiny_bundle, tmp_path, name, message):
    out = cli(tiny_bundle, audio_case(tmp_path, name))
    assert out.returncode == 2
    assert out.stderr.strip() == out.stderr.strip().splitlines()[0] and message in out.stderr


@pytest.mark.parametrize("channels,rate", [(8, 16000), (1, 8000), (2, 192000)])
def test_unusual_audio_just_works(tiny_bundle, tmp_path, channels, rate):
    x = np.stack([clip(1.5, seed=c) for c in range(channels)], axis=1)
    t = np.linspace(0, 1.5, int(1.5 * rate), endpoint=False)
    x = np.stack([0.3 * np.sin(2 * np.pi * (300 + 50 * c) * t) for c in range(channels)], axis=1)
    sf.write(tmp_path / "in.wav", x, rate)
    out = cli(tiny_bundle, tmp_path / "in.wav")
    assert out.returncode == 0, out.stderr


def break_bundle(bundle, odd_bundle, name):
    manifest = json.loads((bundle / "manifest.json").read_text())
    if name == "bundle folder missing a file":
        (bundle / "decoder-f16.gguf").unlink()
    elif name == "file whose sha256 does not match":
        data = bytearray((bundle / "decoder-f16.gguf").read_bytes())
        data[-7] ^= 0x55
        (bundle / "decoder-f16.gguf").write_bytes(bytes(data))
    elif name == "manifest of a newer schema":
        manifest["schema_version"] = SCHEMA_VERSION + 1
    elif name in ("GGUF from a different model", "ONNX from a different model"):
        ours, theirs = (("decoder-f16.gguf", "decoder-f32.gguf") if name.startswith("GGUF")
                        else ("encoder-fp32.onnx", "encoder-fp32.onnx"))
        shutil.copy(odd_bundle / theirs, bundle / ours)
        manifest["files"][ours] = file_digest(bundle / ours).__dict__
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name,message", [
    ("bundle folder missing a file", "bundle file missing"),
    ("file whose sha256 does not match", "sha256 of"),
    ("manifest of a newer schema", "newer than this runtime reads"),
    ("GGUF from a different model", "decoder is from a different model"),
    ("ONNX from a different model", "encoder is from a different model"),
])
def test_bad_bundles(tiny_bundle, odd_bundle, tmp_path, name, message):
    bundle = copy_bundle(tiny_bundle, tmp_path)
    break_bundle(bundle, odd_bundle, name)
    sf.write(tmp_path / "in.wav", clip(1.0), 16000)
    out = cli(bundle, tmp_path / "in.wav", "--encoder", "fp32")
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_question_longer_than_the_context(tiny_bundle, tmp_path):
    sf.write(tmp_path / "in.wav", clip(1.0), 16000)
    out = cli(tiny_bundle, tmp_path / "in.wav", "why? " * 9000)
    assert out.returncode == 2 and "shorten the question" in out.stderr


def test_export_of_a_broken_checkpoint_writes_nothing(tiny_ckpt, tmp_path):
    broken = tmp_path / "ckpt"
    shutil.copytree(tiny_ckpt, broken)
    cfg = json.loads((broken / "config.json").read_text())
    cfg["language_config"]["hidden_size"] = 72
    (broken / "config.json").write_text(json.dumps(cfg))
    out = subprocess.run([sys.executable, "-m", "export", str(broken), "--out", str(tmp_path / "bundle")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "misshapen tensor" in out.stderr
    assert not (tmp_path / "bundle").exists() and not list(tmp_path.glob(".tmp-*"))
