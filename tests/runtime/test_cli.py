import json
import subprocess
import sys

import soundfile as sf

from tests.conftest import clip


def run(*args):
    return subprocess.run([sys.executable, "-m", "runtime", *map(str, args)], capture_output=True, text=True)


def test_streams_an_answer(tiny_bundle, tmp_path):
    sf.write(tmp_path / "a.wav", clip(2.0), 16000)
    out = run(tiny_bundle, tmp_path / "a.wav", "What is said?", "--max-new-tokens", "8", "--decoder", "q8_0")
    assert out.returncode == 0, out.stderr
    assert "prompt tokens" in out.stderr and "decode" in out.stderr
    assert "llama" not in out.stderr.lower()  # llama.cpp stays quiet without --verbose


def test_json_result(tiny_bundle, tmp_path):
    sf.write(tmp_path / "a.wav", clip(2.0), 16000)
    out = run(tiny_bundle, tmp_path / "a.wav", "--json", "--temperature", "0", "--max-new-tokens", "5", "--quiet")
    result = json.loads(out.stdout)
    assert set(result) == {"text", "reasoning", "token_ids", "prompt_token_ids", "stop_reason", "timings", "windows"}
    assert len(result["token_ids"]) <= 5


def test_user_mistakes_exit_2_with_one_line(tiny_bundle, tmp_path):
    (tmp_path / "noise.wav").write_bytes(b"\x01" * 999)
    for args, message in [((tiny_bundle, tmp_path / "missing.wav"), "audio file not found"),
                          ((tiny_bundle, tmp_path / "noise.wav"), "cannot decode"),
                          ((tmp_path / "nobundle", tmp_path / "noise.wav"), "bundle folder not found"),
                          ((tiny_bundle, tmp_path / "noise.wav", "--top-p", "3"), "top_p must be in")]:
        out = run(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.strip().startswith("error: ") and message in out.stderr
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
