import json
import subprocess
import sys

import soundfile as sf

from tests.conftest import cli_probe, clip


def run(*args):
    return subprocess.run([sys.executable, "-m", "runtime", *map(str, args)], capture_output=True, text=True)


def test_streams_an_answer(tiny_bundle, tmp_path):
    sf.write(tmp_path / "a.wav", clip(2.0), 16000)
    out = run(tiny_bundle, tmp_path / "a.wav", "-q", "What is said?", "--max-new-tokens", "8", "--decoder", "q8_0")
    assert out.returncode == 0, out.stderr
    assert "prompt tokens" in out.stderr and "decode" in out.stderr and "finish:" in out.stderr
    assert "llama" not in out.stderr.lower()  # llama.cpp stays quiet without --verbose


def test_json_result(tiny_bundle, tmp_path):
    sf.write(tmp_path / "a.wav", clip(2.0), 16000)
    out = run(tiny_bundle, tmp_path / "a.wav", "--json", "--temperature", "0", "--max-new-tokens", "5", "--quiet")
    result = json.loads(out.stdout)
    assert set(result) == {"text", "reasoning", "token_ids", "prompt_token_ids", "finish_reason", "segments",
                           "timings", "windows", "notes"}
    assert result["notes"] == []
    assert len(result["token_ids"]) <= 5 and result["finish_reason"] in ("stop", "length", "loop")


def test_several_clips_and_a_question(tiny_bundle, tmp_path):
    for name in ("a", "b"):
        sf.write(tmp_path / f"{name}.wav", clip(1.0, seed=len(name)), 16000)
    out = run(tiny_bundle, tmp_path / "a.wav", tmp_path / "b.wav", "-q", "Which is louder?", "--json",
              "--max-new-tokens", "3", "--quiet")
    assert out.returncode == 0, out.stderr
    from runtime.manifest import load_manifest

    prompt = json.loads(out.stdout)["prompt_token_ids"]
    assert prompt.count(load_manifest(tiny_bundle).tokens.audio_start) == 2  # both clips in one prompt


def test_user_mistakes_exit_2_with_one_line(tiny_bundle, tmp_path):
    (tmp_path / "noise.wav").write_bytes(b"\x01" * 999)
    sf.write(tmp_path / "a.wav", clip(1.0), 16000)
    for args, message in [((tiny_bundle, tmp_path / "missing.wav"), "audio file not found"),
                          ((tiny_bundle, tmp_path / "noise.wav"), "cannot decode"),
                          ((tmp_path / "nobundle", tmp_path / "noise.wav"), "bundle folder not found"),
                          ((tiny_bundle, tmp_path / "noise.wav", "--top-p", "3"), "top_p must be in"),
                          # a mistyped second file is a missing file, not a question about the first
                          ((tiny_bundle, tmp_path / "a.wav", tmp_path / "typo.wav"), "audio file not found")]:
        out = run(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.strip().startswith("error: ") and message in out.stderr
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_help_and_argument_errors_load_no_engine():
    """--help and a bad flag come back without importing onnxruntime or llama.cpp."""
    for argv, want in ((["--help"], 0), (["b", "a.wav", "--temperature", "nan"], 2)):
        rc, loaded, out = cli_probe(*argv)
        assert (rc, loaded) == (want, []), out.stderr


def test_stdin_audio_as_it_arrives_answers_as_the_file_does(tiny_bundle, tmp_path):
    """arecord ... | python -m runtime BUNDLE - --stream-input: raw PCM, and a WAV header too."""
    import numpy as np

    x = clip(6.3, seed=1)
    pcm = (x * 32767).astype("<i2")
    sf.write(tmp_path / "a.wav", pcm, 16000, subtype="PCM_16")
    flags = ["--json", "--temperature", "0", "--max-new-tokens", "6", "--decoder", "f32", "--quiet"]
    from_file = json.loads(run(tiny_bundle, tmp_path / "a.wav", *flags).stdout)
    for data, extra in ((pcm.tobytes(), ["--stream-input"]), ((tmp_path / "a.wav").read_bytes(), [])):
        out = subprocess.run([sys.executable, "-m", "runtime", str(tiny_bundle), "-", *extra, *flags], input=data,
                             capture_output=True)
        assert out.returncode == 0, out.stderr.decode()[-2000:]
        got = json.loads(out.stdout)
        assert got["prompt_token_ids"] == from_file["prompt_token_ids"] and got["token_ids"] == from_file["token_ids"]
    stereo = np.stack([x, x], 1)
    out = subprocess.run([sys.executable, "-m", "runtime", str(tiny_bundle), "-", "--input-channels", "2",
                          "--input-format", "f32le", *flags], input=stereo.astype("<f4").tobytes(),
                         capture_output=True)
    assert out.returncode == 0 and json.loads(out.stdout)["token_ids"], out.stderr.decode()[-2000:]


def test_pcm_blocks_split_anywhere_in_a_frame():
    import io

    import numpy as np

    from runtime.pcm_stream import FORMATS, PcmFormat, pcm_blocks

    class Trickle(io.RawIOBase):
        """A pipe that hands over 3 bytes at a time."""

        def __init__(self, data):
            self.data = data

        def readable(self):
            return True

        def read(self, n=-1):
            piece, self.data = self.data[:3], self.data[3:]
            return piece

    x = (np.arange(1001) % 200 - 100).astype("<i2")
    stereo = np.stack([x, -x], 1)
    fmt, blocks = pcm_blocks(Trickle(stereo.tobytes()), PcmFormat(16000, 2, FORMATS["s16le"]), block_bytes=7)
    got = np.concatenate(list(blocks))
    assert fmt.channels == 2 and got.shape == (1001,) and np.abs(got).max() == 0.0  # x and -x average to silence
