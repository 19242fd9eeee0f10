"""The results file: whole lines appended, a partial last line cut on resume, failures kept or retried."""

from __future__ import annotations

import json

import pytest

from runtime.batch.output import ResultsError, ResultsFile, resume


def rec(i, error=None):
    return {"id": f"c{i}", "text": None if error else f"text {i}\nwith a newline", "error": error}


def test_records_are_appended_one_line_each_and_read_back(tmp_path):
    path = tmp_path / "out" / "r.jsonl"
    for chunk in ([rec(0), rec(1)], [rec(2, "cannot decode")]):
        with ResultsFile(path) as f:
            for r in chunk:
                f.write(r)
    assert path.read_text().count("\n") == 3
    existing = resume(path)
    assert existing.records == {r["id"]: r for r in (rec(0), rec(1), rec(2, "cannot decode"))}
    assert existing.failed == {"c2"} and existing.notes == []


def test_a_partial_last_line_is_cut_away_with_a_note(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(json.dumps(rec(0)).encode() + b'\n{"id": "c1", "te')
    existing = resume(path)
    assert set(existing.records) == {"c0"} and "dropped a partial last line (16 bytes)" in existing.notes[0]
    assert path.read_bytes().endswith(b"}\n")
    with ResultsFile(path) as f:
        f.write(rec(1))
    assert set(resume(path).records) == {"c0", "c1"}


def test_retry_failed_removes_the_failed_records_so_each_id_keeps_one_line(tmp_path):
    path = tmp_path / "r.jsonl"
    with ResultsFile(path) as f:
        for r in (rec(0), rec(1, "too short"), rec(2)):
            f.write(r)
    assert set(resume(path).records) == {"c0", "c1", "c2"}  # failures are skipped by default
    existing = resume(path, retry_failed=True)
    assert set(existing.records) == {"c0", "c2"} and "1 failed input(s) run again" in existing.notes[0]
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["c0", "c2"]


def test_a_damaged_line_inside_the_file_is_refused_with_its_number(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(rec(0)) + "\nnot json\n" + json.dumps(rec(1)) + "\n")
    with pytest.raises(ResultsError, match=r"r.jsonl:2 is not a batch record"):
        resume(path)


def test_no_file_is_nothing_done(tmp_path):
    assert resume(tmp_path / "absent.jsonl").records == {}
