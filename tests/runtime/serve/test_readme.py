"""The README's server examples, run as written against the live server (its port swapped in)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import soundfile as sf

from tests.conftest import SAMPLE_RATE, clip

README = Path(__file__).resolve().parents[3] / "README.md"
# what each curl example must print; every example needs one (a new example gets its check)
EXPECT = {"/health": '"status":"ok"', "response_format=srt": "00:00:00,000 --> ", "stream=true": "transcript.text.done",
          "> chat.json": "", "chat/completions": "data: [DONE]", "/metrics": "moss_requests_total",
          "/v1/audio/transcriptions": '{"text":'}


def example(kind: str) -> str:
    """The fenced block after `<!-- serve-example: KIND ... -->`."""
    m = re.search(rf"<!-- serve-example: {kind}\b.*?-->\n```\w*\n(.*?)```", README.read_text(), re.S)
    assert m, f"README.md has no serve-example: {kind}"
    return m.group(1)


def on(server, text: str) -> str:
    return text.replace("127.0.0.1:8000", server.url.removeprefix("http://"))


def setup(tmp_path: Path, server) -> dict:
    sf.write(tmp_path / "clip.wav", clip(2.0, seed=6), SAMPLE_RATE)
    return {**os.environ, "MOSS_API_KEY": server.key}


def test_the_curl_examples(server, tmp_path):
    env = setup(tmp_path, server)
    commands = [line for line in example("curl").splitlines() if line.strip()]
    assert len(commands) >= 6
    for command in commands:
        out = subprocess.run(["bash", "-c", "set -euo pipefail; " + on(server, command)], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, (command, out.stderr)
        assert '"error"' not in out.stdout, (command, out.stdout)
        check = next(want for key, want in EXPECT.items() if key in command)
        assert check in out.stdout, (command, out.stdout[-500:])


def test_the_python_client_example(server, tmp_path):
    env = setup(tmp_path, server)
    out = subprocess.run([sys.executable, "-c", on(server, example("python"))], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    transcript, answer = out.stdout.split("\n", 1)
    assert transcript and answer
