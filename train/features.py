"""Log-mel features exactly as the runtime computes them, rounded to bfloat16 as upstream's
processor does, and a cache holding many clips' features in one array."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from export.processor import LOG_RANGE
from runtime.chunks import stem_out_len
from runtime.manifest import AudioInfo
from runtime.mel import log_mel
from train.speech import SAMPLE_RATE

# The tiny model's front end (upstream's): train/tokenizer.py writes it into processor_config.json,
# so the export reads back what training used.
FRONT_END = AudioInfo(sample_rate=SAMPLE_RATE, n_fft=400, hop_length=160, n_mels=128, log_range=LOG_RANGE,
                      mel_dtype="bfloat16", chunk_frames=400, chunk_tokens=stem_out_len(400))


def mel_bf16(samples: np.ndarray) -> np.ndarray:
    """[128, N//160] log-mel as bfloat16 bit patterns (uint16): what the encoder is fed."""
    mel = torch.from_numpy(log_mel(samples, FRONT_END)).to(torch.bfloat16)
    return mel.view(torch.uint16).numpy()


def as_float(bits: np.ndarray) -> torch.Tensor:
    """bfloat16 bit patterns back to a float32 tensor (exact)."""
    return torch.from_numpy(np.ascontiguousarray(bits)).view(torch.bfloat16).float()


@dataclass
class FeatureStore:
    """All clips' mels side by side along time: [n_mels, total_frames] plus offsets, and each
    clip's metadata (texts, language, segments, voice)."""

    bits: np.ndarray
    offsets: np.ndarray  # [n_clips + 1]
    meta: list[dict]

    def __len__(self) -> int:
        return len(self.meta)

    def frames(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])

    def mel(self, i: int) -> torch.Tensor:
        return as_float(self.bits[:, self.offsets[i] : self.offsets[i + 1]])

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "mel_bf16.npy", self.bits)
        np.save(folder / "offsets.npy", self.offsets)
        (folder / "meta.json").write_text(json.dumps(self.meta))

    @classmethod
    def load(cls, folder: Path) -> "FeatureStore":
        return cls(np.load(folder / "mel_bf16.npy", mmap_mode="r"), np.load(folder / "offsets.npy"),
                   json.loads((folder / "meta.json").read_text()))

    @classmethod
    def from_parts(cls, parts: list[tuple[np.ndarray, dict]]) -> "FeatureStore":
        lengths = [p[0].shape[1] for p in parts]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return cls(np.concatenate([p[0] for p in parts], axis=1), offsets, [p[1] for p in parts])
