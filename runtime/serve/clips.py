"""Uploaded audio to the model's rate, decoded in memory and kept by content hash.

A follow-up question about the same audio sends the same bytes again: it is not decoded twice,
and its key (sha256 of the bytes) is what a later prefix reuse (encoded rows, KV cache) can be
keyed by. The cache is bounded by bytes of samples, least recently used first out.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from runtime.audio import read_bytes, require_frames, to_model_rate
from runtime.manifest import AudioInfo


@dataclass(frozen=True)
class Clip:
    key: str  # sha256 of the uploaded bytes
    samples: np.ndarray  # at the model's rate, mono float32, read-only (shared between requests)
    rate: int

    @property
    def seconds(self) -> float:
        return self.samples.size / self.rate


class ClipDecoder:
    def __init__(self, audio: AudioInfo, budget_bytes: int):
        self.audio, self.budget = audio, budget_bytes
        self._cache: OrderedDict[str, Clip] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def decode(self, data: bytes, name: str) -> Clip:
        """Samples at the model's rate, at least one mel frame long; AudioError naming `name` else."""
        key = hashlib.sha256(data).hexdigest()
        with self._lock:
            clip = self._cache.get(key)
            if clip is not None:
                self._cache.move_to_end(key)
                return clip
        raw, rate = read_bytes(data, name)
        a = self.audio
        samples = require_frames(to_model_rate(raw, rate, a.sample_rate, name), a.hop_length, a.sample_rate, name)
        samples.flags.writeable = False
        clip = Clip(key, samples, a.sample_rate)
        self._keep(clip)
        return clip

    def _keep(self, clip: Clip) -> None:
        if clip.samples.nbytes > self.budget:
            return
        with self._lock:
            if clip.key in self._cache:
                return
            self._cache[clip.key] = clip
            self._held += clip.samples.nbytes
            while self._held > self.budget:
                _, old = self._cache.popitem(last=False)
                self._held -= old.samples.nbytes
