"""The results file: one JSON line per input, appended and flushed as each finishes.

A re-run with the same file resumes: it reads what is there, skips the ids that have a
record, and appends the rest. A run killed mid-write can leave a partial last line; resume
cuts it away (with a note) so every line in the file is a whole record.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from runtime.atomic import write_bytes_atomic
from runtime.errors import MossError


class ResultsError(MossError):
    """A results file that cannot be resumed."""


@dataclass
class Existing:
    """What an earlier run left: its records by id, and notes on what was repaired."""

    records: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> set[str]:
        return {i for i, r in self.records.items() if r.get("error")}


def resume(path: Path, *, retry_failed: bool = False) -> Existing:
    """Read `path` (absent: nothing done yet), cut a partial last line, and with `retry_failed`
    drop the failed records so those inputs run again (the file keeps one record per id)."""
    path = Path(path)
    if not path.exists():
        return Existing()
    data = path.read_bytes()
    existing = Existing()
    whole = data[:data.rfind(b"\n") + 1]
    if len(whole) < len(data):
        with open(path, "r+b") as f:
            f.truncate(len(whole))
        existing.notes.append(f"{path}: dropped a partial last line ({len(data) - len(whole)} bytes) that a stopped "
                              "run left; that input runs again")
    for number, line in enumerate(whole.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise ResultsError(f"{path}:{number} is not a batch record; give --out a new file, or remove that line "
                               "to resume")
        existing.records[record["id"]] = record
    if retry_failed and existing.failed:
        kept = [r for r in existing.records.values() if not r.get("error")]
        write_bytes_atomic(path, b"".join(encode(r) for r in kept))
        existing.notes.append(f"{path}: {len(existing.records) - len(kept)} failed input(s) run again")
        existing.records = {r["id"]: r for r in kept}
    return existing


def encode(record: dict) -> bytes:
    """One line: JSON without raw newlines (json escapes them), then one newline."""
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


class ResultsFile:
    """Appends whole lines: each record goes to the OS in one write, so a killed process leaves at
    most one partial last line (which resume removes), never an interleaved one."""

    def __init__(self, path: Path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, record: dict) -> None:
        line = memoryview(encode(record))
        while line:
            line = line[os.write(self._fd, line):]

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "ResultsFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
