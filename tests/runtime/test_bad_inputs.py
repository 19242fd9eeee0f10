"""Every bad input the CLI can meet: one error line, exit code 2, nothing written.
(8 channels, 8 kHz and 192 kHz are not errors: they must just work.)"""

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from runtime.manifest import SCHEMA_VERSION, file_digest
from tests.conftest import clip


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "runtime", *args, "--max-new-tokens", "4", "--decoder", "f16"],
                          capture_output=True, env=env)


def one_line(out) -> str:
    err = out.stderr.decode("utf-8", "replace").strip()
    assert out.returncode == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


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
    elif name == "WAV cut short":
        sf.write(path, clip(2.0), 16000)
        path.write_bytes(path.read_bytes()[:20000])
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
    ("WAV cut short", "is truncated"),
    ("shorter than one mel frame", "at least 10 ms"),
    ("NaN samples", "NaN or infinite"),
    ("inf samples", "NaN or infinite"),
])
def test_bad_audio(tiny_bundle, tmp_path, name, message):
    assert message in one_line(cli(str(tiny_bundle), str(audio_case(tmp_path, name))))


def test_too_short_in_window_mode_too(tiny_bundle, tmp_path):
    path = audio_case(tmp_path, "shorter than one mel frame")
    assert "at least 10 ms" in one_line(cli(str(tiny_bundle), str(path), "--window", "auto"))


@pytest.mark.parametrize("flags,message", [
    (["--temperature", "nan"], "not a finite number"),
    (["--repetition-penalty", "nan"], "not a finite number"),
    (["--top-p", "inf"], "not a finite number"),
    (["--seed", "-1"], "is negative"),
    (["--window", "nan"], "give 'auto' or a number of seconds"),
    (["--window", "1"], "at least 4"),
])
def test_bad_option_values(tiny_bundle, tmp_path, flags, message):
    sf.write(tmp_path / "in.wav", clip(1.0), 16000)
    assert message in one_line(cli(str(tiny_bundle), str(tmp_path / "in.wav"), *flags))


def test_a_bad_window_is_refused_before_any_decoding(tiny_bundle, tmp_path):
    """--window nan on a 20-minute file must not decode 310 MB first."""
    path = tmp_path / "long.flac"
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as f:
        for _ in range(20):
            f.write(clip(60.0))
    code = ("import runpy, sys\nfrom quant.probe import peak_rss_mb\nsys.argv = ['runtime'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('runtime', run_name='__main__')\nexcept SystemExit as e:\n"
            "    sys.stderr.write(f'|rc={e.code}|peak={int(peak_rss_mb())}')\n")
    out = subprocess.run([sys.executable, "-c", code, str(tiny_bundle), str(path), "--window", "nan"],
                         capture_output=True, text=True)
    rc, peak = out.stderr.rsplit("|rc=", 1)[1].split("|peak=")
    assert rc == "2" and int(peak) < 150  # MB; the decoded file alone would be 300 MB


def test_invalid_utf8_in_question_and_file_name(tiny_bundle, tmp_path):
    sf.write(tmp_path / "in.wav", clip(1.0), 16000)
    bad = b"caf\xe9?"  # Latin-1 bytes, not UTF-8
    out = subprocess.run([sys.executable.encode(), b"-m", b"runtime", bytes(tiny_bundle), bytes(tmp_path / "in.wav"),
                          b"-q", bad], capture_output=True)
    assert "not valid UTF-8" in one_line(out)
    out = subprocess.run([sys.executable.encode(), b"-m", b"runtime", bytes(tiny_bundle),
                          bytes(tmp_path) + b"/\xff\xfe.wav"], capture_output=True)
    assert "audio file not found" in one_line(out)


@pytest.mark.parametrize("channels,rate", [(8, 16000), (1, 8000), (2, 192000)])
def test_unusual_audio_just_works(tiny_bundle, tmp_path, channels, rate):
    t = np.linspace(0, 1.5, int(1.5 * rate), endpoint=False)
    x = np.stack([0.3 * np.sin(2 * np.pi * (300 + 50 * c) * t) for c in range(channels)], axis=1)
    sf.write(tmp_path / "in.wav", x, rate)
    out = cli(str(tiny_bundle), str(tmp_path / "in.wav"))
    assert out.returncode == 0, out.stderr


def break_bundle(bundle, odd_bundle, name, tmp_path):
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    if name == "bundle folder missing a file":
        (bundle / "decoder-f16.gguf").unlink()
    elif name == "file whose sha256 does not match":
        data = bytearray((bundle / "decoder-f16.gguf").read_bytes())
        data[-7] ^= 0x55
        (bundle / "decoder-f16.gguf").write_bytes(bytes(data))
    elif name == "manifest of a newer schema":
        manifest["schema_version"] = SCHEMA_VERSION + 1
    elif name == "manifest of an older schema":
        manifest["schema_version"] = SCHEMA_VERSION - 1
    elif name in ("GGUF from a different model", "ONNX from a different model"):
        ours, theirs = (("decoder-f16.gguf", "decoder-f32.gguf") if name.startswith("GGUF")
                        else ("encoder-fp32.onnx", "encoder-fp32.onnx"))
        shutil.copy(odd_bundle / theirs, bundle / ours)
        manifest["files"][ours] = file_digest(bundle / ours).__dict__
    elif name == "a file outside the bundle":
        (tmp_path / "outside").mkdir()
        shutil.copy(bundle / "decoder-f16.gguf", tmp_path / "outside" / "x.gguf")
        manifest["decoders"]["f16"]["file"] = "../outside/x.gguf"
    elif name == "an absolute path":
        manifest["decoders"]["f16"]["file"] = str(bundle / "decoder-f16.gguf")
    elif name == "a file without a sha256":
        shutil.copy(bundle / "decoder-f16.gguf", bundle / "other.gguf")
        manifest["decoders"]["f16"]["file"] = "other.gguf"
    elif name == "a list, not a manifest":
        manifest = []
    elif name == "a wrongly typed field":
        manifest["model"]["row_width"] = "wide"
    if name == "bytes that are not UTF-8":
        path.write_bytes(b'{"schema_version": 2, "x": "\xff\xfe"}')
    else:
        path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("name,message", [
    ("bundle folder missing a file", "bundle file missing"),
    ("file whose sha256 does not match", "sha256 of"),
    ("manifest of a newer schema", "newer than this runtime reads"),
    ("manifest of an older schema", "re-export it with"),
    ("GGUF from a different model", "decoder is from a different model"),
    ("ONNX from a different model", "encoder is from a different model"),
    ("a file outside the bundle", "not inside the bundle folder"),
    ("an absolute path", "not inside the bundle folder"),
    ("a file without a sha256", "lists no sha256"),
    ("a list, not a manifest", "not a manifest object"),
    ("a wrongly typed field", "manifest.model.row_width must be an integer"),
    ("bytes that are not UTF-8", "not valid JSON"),
])
def test_bad_bundles(tiny_bundle, odd_bundle, tmp_path, name, message):
    bundle = copy_bundle(tiny_bundle, tmp_path)
    break_bundle(bundle, odd_bundle, name, tmp_path)
    sf.write(tmp_path / "in.wav", clip(1.0), 16000)
    err = one_line(cli(str(bundle), str(tmp_path / "in.wav"), "--encoder", "fp32"))
    assert message in err
    assert "outside" not in err or "bytes" not in err  # nothing is said about the outside file


def test_question_longer_than_the_context(tiny_bundle, tmp_path):
    sf.write(tmp_path / "in.wav", clip(1.0), 16000)
    assert "shorten the question" in one_line(cli(str(tiny_bundle), str(tmp_path / "in.wav"), "-q", "why? " * 9000))


def test_export_of_a_broken_checkpoint_writes_nothing(tiny_ckpt, tmp_path):
    broken = tmp_path / "ckpt"
    shutil.copytree(tiny_ckpt, broken)
    cfg = json.loads((broken / "config.json").read_text())
    cfg["language_config"]["hidden_size"] = 72
    (broken / "config.json").write_text(json.dumps(cfg))
    out = subprocess.run([sys.executable, "-m", "export", str(broken), "--out", str(tmp_path / "bundle")],
                         capture_output=True)
    assert "misshapen tensor" in one_line(out)
    assert not (tmp_path / "bundle").exists() and not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize("kind", ["a file where a folder should be", "a folder without write permission"])
def test_export_into_an_unwritable_place(tiny_ckpt, tmp_path, kind):
    if kind == "a file where a folder should be":
        (tmp_path / "file").write_text("x")
        out_dir = tmp_path / "file" / "bundle"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders: this case runs for ordinary users")
        (tmp_path / "locked").mkdir(mode=0o555)
        out_dir = tmp_path / "locked" / "bundle"
    out = subprocess.run([sys.executable, "-m", "export", str(tiny_ckpt), "--out", str(out_dir)], capture_output=True)
    assert "cannot write to" in one_line(out)


def test_two_exports_to_one_output(tiny_ckpt, tmp_path):
    """The second is refused at once while the first holds its output; the first finishes."""
    first = subprocess.Popen([sys.executable, "-m", "export", str(tiny_ckpt), "--out", str(tmp_path / "b"),
                              "--decoder", "f32,q8_0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(600):  # wait until the first run has its temporary folder
            if list(tmp_path.glob(".tmp-b-*")):
                break
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-m", "export", str(tiny_ckpt), "--out", str(tmp_path / "b")],
                                capture_output=True)
        assert "another export to" in one_line(second)
    finally:
        _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err.decode()[-2000:]
    assert (tmp_path / "b" / "manifest.json").is_file() and not list(tmp_path.glob(".tmp-*"))
