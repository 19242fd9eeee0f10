"""Encoded audio kept for the next question about the same audio: rows by the audio's hash.

The decoder's cache keeps the KV of whatever prompt came last, so asking again about the same
clip reuses its rows here and its KV prefix there (see Decoder.prefill's keys)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

DEFAULT_BYTES = 64 * 2**20  # 30 s of 4B rows (375 x 10240 float32) is 15 MB


def audio_key(samples: np.ndarray) -> str:
    """Same samples, same key (the encoder is deterministic for a given variant)."""
    data = np.ascontiguousarray(samples, dtype=np.float32)
    return hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest() + f":{data.size}"


class RowCache:
    """Least recently used first out, bounded in bytes."""

    def __init__(self, max_bytes: int = DEFAULT_BYTES):
        self.max_bytes = max_bytes
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, key: str) -> np.ndarray | None:
        rows = self._rows.get(key)
        if rows is not None:
            self._rows.move_to_end(key)
        return rows

    def put(self, key: str, rows: np.ndarray) -> None:
        if rows.nbytes > self.max_bytes:
            return
        self._rows[key] = rows
        self._rows.move_to_end(key)
        while sum(r.nbytes for r in self._rows.values()) > self.max_bytes:
            self._rows.popitem(last=False)

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self._rows.values())
