"""24 tiny-model clips and 2 bad files, made once; one reference run of them, shared by the modes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from tests.conftest import SAMPLE_RATE, clip

N_CLIPS = 24
BAD = {"broken.wav": "cannot decode", "sub/short.wav": "at least 10 ms"}
# Greedy and one thread per worker in every run: the same input gives the same tokens in any mode.
SETTINGS = ("--temperature", "0", "--max-new-tokens", "128", "--threads", "1")


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory) -> Path:
    """24 clips of 0.5-2.1 s (a third of them in a subfolder), an undecodable file and a 2 ms one."""
    root = tmp_path_factory.mktemp("batch") / "audio"
    (root / "sub").mkdir(parents=True)
    for i in range(N_CLIPS):
        folder = root / "sub" if i % 3 == 0 else root
        sf.write(folder / f"clip{i:02d}.wav", clip(0.5 + (i % 5) * 0.4, seed=i), SAMPLE_RATE)
    (root / "broken.wav").write_bytes(b"\x01" * 999)
    sf.write(root / "sub" / "short.wav", clip(0.002), SAMPLE_RATE)
    (root / "notes.txt").write_text("not audio: a folder walk skips it")
    return root


def batch(bundle: Path, *args, **popen) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runtime", "batch", str(bundle), *map(str, args)],
                          capture_output=True, text=True, timeout=300, **popen)


def records(path: Path) -> dict[str, dict]:
    """The file's records by id, without their timings (the one part that differs between runs);
    fails on a duplicate id or a line that is not a whole record."""
    found: dict[str, dict] = {}
    for line in Path(path).read_text().splitlines():
        record = json.loads(line)
        assert record["id"] not in found, f"duplicate record for {record['id']}"
        assert isinstance(record.pop("timings"), dict)
        found[record["id"]] = record
    return found


@pytest.fixture(scope="session")
def reference_run(tiny_bundle, audio_dir, tmp_path_factory) -> dict[str, dict]:
    """One local worker over every input: the records the other modes must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "results.jsonl"
    run = batch(tiny_bundle, audio_dir, "--out", out, "--workers", "1", *SETTINGS)
    assert run.returncode == 1, run.stderr  # 1: some inputs failed (the two bad files)
    return records(out)
