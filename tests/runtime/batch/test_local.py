"""Local mode end to end: worker counts agree, bad files are recorded, a killed or interrupted run
resumes to the same records without duplicates, and no worker outlives its parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.runtime.batch.conftest import BAD, N_CLIPS, SETTINGS, batch, records


def test_every_input_has_one_record_and_bad_files_say_why(reference_run, audio_dir):
    assert len(reference_run) == N_CLIPS + len(BAD)
    for name, words in BAD.items():
        record = reference_run[name]
        assert words in record["error"] and "\n" not in record["error"] and record["text"] is None
    good = [r for r in reference_run.values() if not r["error"]]
    assert len(good) == N_CLIPS
    for r in good:
        assert Path(r["path"]) == (audio_dir / r["id"]).resolve()
        assert r["question"] == "Transcribe the audio." and r["finish_reason"] in ("stop", "length", "loop")
        assert r["variant"] == {"encoder": "fp32", "decoder": "q8_0"} and 0.4 < r["audio_s"] < 2.2
    assert len({r["text"] for r in good}) > N_CLIPS // 2  # answers belong to their own clip


def test_two_workers_write_the_same_records(tiny_bundle, audio_dir, reference_run, tmp_path):
    out = tmp_path / "results.jsonl"
    run = batch(tiny_bundle, audio_dir, "--out", out, "--workers", "2", "--json-summary", tmp_path / "s.json",
                *SETTINGS)
    assert run.returncode == 1, run.stderr
    assert records(out) == reference_run
    assert f"{N_CLIPS + 2} files (2 failed)" in run.stderr and "audio-hours/hour" in run.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["files"] == N_CLIPS + 2 and summary["failures"] == 2 and summary["audio_s_per_wall_s"] > 0


def start_and_stop_halfway(bundle: Path, audio_dir: Path, out: Path, sig: int) -> tuple[int, str]:
    """Start a 2-worker run, send `sig` to the parent once 6 records are written, return (status,
    stderr) after checking that every worker process went with it."""
    cmd = [sys.executable, "-m", "runtime", "batch", str(bundle), str(audio_dir), "--out", str(out),
           "--workers", "2", *SETTINGS]
    # SIGINT at its default: a suite started in the background (nohup ... &) passes it on ignored,
    # and Python then installs no KeyboardInterrupt handler
    parent = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and parent.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 6:
            break
        time.sleep(0.01)
    workers = psutil.Process(parent.pid).children(recursive=True)
    assert parent.poll() is None, "the run finished before it could be stopped halfway"
    os.kill(parent.pid, sig)
    _, stderr = parent.communicate(timeout=60)
    _, alive = psutil.wait_procs(workers, timeout=10)
    for p in alive:
        p.kill()
    assert workers and alive == [], "worker processes outlived their parent"
    done = out.read_bytes().count(b"\n")
    assert 6 <= done < N_CLIPS + 2, f"stopped after {done} records: not halfway"
    return parent.returncode, stderr


def test_kill_9_halfway_then_resume_completes_without_duplicates(tiny_bundle, audio_dir, reference_run, tmp_path):
    out = tmp_path / "results.jsonl"
    status, _ = start_and_stop_halfway(tiny_bundle, audio_dir, out, signal.SIGKILL)
    assert status == -signal.SIGKILL
    before = records(out)
    with open(out, "ab") as f:  # what a kill in the middle of a write leaves
        f.write(b'{"id": "clip0')
    run = batch(tiny_bundle, audio_dir, "--out", out, "--workers", "2", *SETTINGS)
    assert run.returncode == 1, run.stderr
    assert "dropped a partial last line" in run.stderr
    assert f"{len(before)} done before" in run.stderr
    assert records(out) == reference_run


def test_ctrl_c_halfway_keeps_whole_lines_exits_130_and_resumes(tiny_bundle, audio_dir, reference_run, tmp_path):
    out = tmp_path / "results.jsonl"
    status, stderr = start_and_stop_halfway(tiny_bundle, audio_dir, out, signal.SIGINT)
    assert status == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert out.read_bytes().endswith(b"\n")
    assert set(records(out)) < set(reference_run)
    run = batch(tiny_bundle, audio_dir, "--out", out, *SETTINGS)
    assert run.returncode == 1, run.stderr
    assert records(out) == reference_run


def test_a_finished_run_is_skipped_and_failures_retried_on_request(tiny_bundle, audio_dir, reference_run, tmp_path):
    out = tmp_path / "results.jsonl"
    out.write_text("".join(json.dumps({**r, "timings": {}}) + "\n" for r in reference_run.values()))
    again = batch(tiny_bundle, audio_dir, "--out", out, *SETTINGS)
    assert again.returncode == 1  # nothing ran, but two inputs stand failed
    assert f"0 files (0 failed), {N_CLIPS + 2} done before (2 failed)" in again.stderr
    retried = batch(tiny_bundle, audio_dir, "--out", out, "--retry-failed", *SETTINGS)
    assert "2 failed input(s) run again" in retried.stderr and "2 files (2 failed)" in retried.stderr
    assert records(out) == reference_run


def test_a_bundle_that_does_not_load_stops_the_batch_with_one_line(tampered_bundle, audio_dir, tmp_path):
    run = batch(tampered_bundle, audio_dir, "--out", tmp_path / "r.jsonl", "--workers", "2", *SETTINGS)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("error: sha256 of")
    assert not (tmp_path / "r.jsonl").exists() or (tmp_path / "r.jsonl").read_text() == ""
