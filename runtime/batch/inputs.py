"""What a batch answers: audio files, folders of them, or a JSONL/CSV manifest, as items with ids.

An id is what resume matches on, so it must not depend on where or how often the batch runs:
the path relative to the folder it was found in (a file given by itself: its name), or a
manifest's `id` column. Duplicates are refused before anything runs.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from runtime.errors import MossError

# What libsndfile (and so runtime.audio) decodes; a folder walk picks these, case aside.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au",
                              ".caf", ".w64", ".rf64"})
MANIFEST_EXTENSIONS = (".jsonl", ".csv")


class InputError(MossError, ValueError):
    """An input list that cannot be read, or whose ids collide."""


@dataclass(frozen=True)
class Item:
    id: str
    path: str  # absolute: every worker (and every Ray node) opens the same file
    question: str | None = None  # None: the batch's question, else the bundle's

    def to_dict(self) -> dict:
        return {"id": self.id, "path": self.path, "question": self.question}


def collect(inputs: Sequence[str | Path]) -> list[Item]:
    """Every input's items in a stable order; an error naming duplicate ids or an unreadable list."""
    items = [item for source in inputs for item in _items_of(Path(source))]
    duplicates = [i for i, n in Counter(item.id for item in items).items() if n > 1]
    if duplicates:
        shown = ", ".join(repr(i) for i in sorted(duplicates)[:5]) + (" ..." if len(duplicates) > 5 else "")
        raise InputError(f"{len(duplicates)} duplicate id(s): {shown}; give each input a unique id (a manifest's "
                         "`id` column, or inputs in separate folders whose relative paths differ)")
    return items


def _items_of(source: Path) -> Iterator[Item]:
    if source.is_dir():
        for path in _audio_files(source):
            yield Item(path.relative_to(source).as_posix(), str(path.resolve()))
    elif not source.exists():
        raise InputError(f"input not found: {source}; give audio files, folders or a .jsonl/.csv manifest")
    elif source.suffix.lower() in MANIFEST_EXTENSIONS:
        yield from read_manifest(source)
    else:
        yield Item(source.name, str(source.resolve()))  # decoded (or refused) by the worker, like any file


def _audio_files(folder: Path) -> list[Path]:
    """Audio files under `folder`, recursively, sorted; hidden files and folders are skipped."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in files
                  if not f.startswith(".") and Path(f).suffix.lower() in AUDIO_EXTENSIONS]
    return sorted(found)


def read_manifest(path: Path) -> list[Item]:
    """Rows with `path` (relative to the manifest's folder unless absolute) and optional `id`, `question`."""
    try:
        rows = list(_jsonl_rows(path) if path.suffix.lower() == ".jsonl" else _csv_rows(path))
    except OSError as e:
        raise InputError(f"cannot read the manifest {path}: {e.strerror or e}") from None
    items = []
    for line, row in rows:
        where = f"{path}:{line}"
        if not isinstance(row, dict) or not isinstance(row.get("path"), str) or not row["path"].strip():
            raise InputError(f"{where} has no `path`: every row needs the audio file's path")
        for key in ("id", "question"):
            if row.get(key) is not None and not isinstance(row[key], str):
                raise InputError(f"{where}: `{key}` must be text, got {type(row[key]).__name__}")
        written = row["path"].strip()
        audio = (path.parent / written).resolve()
        items.append(Item(row.get("id") or written, str(audio), row.get("question") or None))
    return items


def _jsonl_rows(path: Path) -> Iterator[tuple[int, object]]:
    with open(path, encoding="utf-8") as f:
        for line, text in enumerate(f, 1):
            if text.strip():
                try:
                    yield line, json.loads(text)
                except json.JSONDecodeError as e:
                    raise InputError(f"{path}:{line} is not JSON ({e.msg}); one object per line, "
                                     'e.g. {"path": "a.wav"}') from None


def _csv_rows(path: Path) -> Iterator[tuple[int, object]]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if "path" not in (reader.fieldnames or []):
            raise InputError(f"{path} has no `path` column; its header row must name path (and optionally id, "
                             "question)")
        for row in reader:
            yield reader.line_num, {k: (v if v != "" else None) for k, v in row.items() if k is not None}
