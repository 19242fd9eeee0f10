"""The summary's arithmetic: audio hours, throughput and real-time factor from the records."""

from __future__ import annotations

import pytest

from runtime.batch.progress import Progress, Summary


def test_the_summary_counts_records_audio_and_speed():
    s = Summary(skipped=3, skipped_failures=1)
    for record in ({"audio_s": 1800.0, "error": None}, {"audio_s": 1800.0, "error": None},
                   {"audio_s": None, "error": "cannot decode x"}):
        s.add(record)
    s.wall_s = 360.0
    assert (s.files, s.failures, s.audio_hours) == (3, 1, 1.0)
    assert s.throughput == pytest.approx(10.0) and s.rtf == pytest.approx(0.1)
    assert s.line() == ("3 files (1 failed), 3 done before (1 failed), 1 audio hours in 360.0 s wall: "
                        "10 audio-hours/hour, RTF 0.1")
    assert s.to_dict()["audio_s_per_wall_s"] == 10.0 and s.to_dict()["skipped_failures"] == 1


def test_no_audio_is_said_plainly():
    assert Summary().line() == "0 files (0 failed), 0 audio hours in 0.0 s wall: no audio answered"


def test_progress_is_quiet_off_a_terminal_and_times_the_run(capsys):
    p = Progress(2)  # pytest's stderr is no terminal
    p.add({"audio_s": 2.0, "error": None})
    summary = p.close()
    assert capsys.readouterr().err == "" and summary.files == 1 and summary.wall_s > 0


def test_progress_shows_files_and_audio_hours_per_hour_when_asked(capsys):
    p = Progress(2, show=True)
    p.add({"audio_s": 2.0, "error": None})
    p.close()
    bar = capsys.readouterr().err
    assert "1/2" in bar and "audio-h/h, 0 failed" in bar
