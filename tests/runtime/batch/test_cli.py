"""`python -m runtime batch` routes from the runtime CLI, parses without loading an engine, and
refuses a bad command in one line before anything runs; the ask form is untouched."""

from __future__ import annotations

import subprocess
import sys

import soundfile as sf

from tests.conftest import cli_probe, clip
from tests.runtime.batch.conftest import batch

def test_batch_help_and_argument_errors_load_no_engine():
    for argv, want in ((["batch", "--help"], 0), (["--help"], 0),
                       (["batch", "b", "a.wav", "--out", "r.jsonl", "--workers", "x"], 2)):
        rc, loaded, out = cli_probe(*argv)
        assert (rc, loaded) == (want, []), out.stderr
    help_text = subprocess.run([sys.executable, "-m", "runtime", "batch", "--help"], capture_output=True, text=True)
    assert "--out" in help_text.stdout and "--ray" in help_text.stdout and "resume" in help_text.stdout


def test_the_ask_form_still_answers(tiny_bundle, tmp_path):
    sf.write(tmp_path / "a.wav", clip(1.0), 16000)
    out = subprocess.run([sys.executable, "-m", "runtime", str(tiny_bundle), str(tmp_path / "a.wav"), "--json",
                          "--max-new-tokens", "3", "--quiet"], capture_output=True, text=True)
    assert out.returncode == 0 and '"token_ids"' in out.stdout, out.stderr


def test_mistakes_exit_2_with_one_line_before_anything_runs(tiny_bundle, tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        sf.write(tmp_path / folder / "same.wav", clip(1.0), 16000)
    out = tmp_path / "r.jsonl"
    for args, message in [((tmp_path / "x", tmp_path / "y"), "duplicate id(s): 'same.wav'"),
                          ((tmp_path / "x", "--top-p", "3"), "top_p must be in"),
                          ((tmp_path / "x", "--workers", "0"), "workers must be at least 1"),
                          ((tmp_path / "x", tmp_path / "missing.csv"), "input not found"),
                          (("--ray", tmp_path / "y", tmp_path / "x"), "give auto or the cluster's HOST:PORT"),
                          ((tmp_path / "x", "--ray", "ray://head:10001"), "ray job submit --address"),
                          ((tmp_path / "x",), "the following arguments are required: --out")]:
        run = batch(tiny_bundle, *args, *(() if "--out" in message else ("--out", out)))
        assert run.returncode == 2, (args, run.stderr)
        assert run.stderr.strip().startswith("error: ") and message in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and not out.exists()
