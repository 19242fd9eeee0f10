"""sha256 of bundle files, recomputed only when a file changed since it was last verified.

Hashing a multi-GB GGUF on every load costs seconds; a file whose size, inode, mtime and
ctime are unchanged is the file that was hashed (ctime cannot be set back by a user), so
its digest is taken from a small per-user record instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "moss-audio-edge" / "verified-sha256.json"


def verified_sha256(path: Path) -> str:
    """The file's sha256, from the record when the file is unchanged since it was hashed."""
    path = Path(path).resolve()
    st = path.stat()
    stamp = [st.st_size, st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns]
    record = _read_record()
    entry = record.get(str(path))
    if entry and entry.get("stamp") == stamp:
        return entry["sha256"]
    digest = sha256_of(path)
    record[str(path)] = {"stamp": stamp, "sha256": digest}
    _write_record(record)
    return digest


def _read_record() -> dict:
    try:
        data = json.loads(cache_file().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_record(record: dict) -> None:
    """Best effort: a cache that cannot be written only costs a re-hash next time."""
    from runtime.atomic import write_text_atomic

    live = {k: v for k, v in record.items() if os.path.exists(k)}
    try:
        write_text_atomic(cache_file(), json.dumps(live), fsync=False)
    except OSError:
        pass
