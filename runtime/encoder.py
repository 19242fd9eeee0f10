"""The encoder stage: onnxruntime over fixed-width chunks, rows assembled for the whole clip."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from runtime.chunks import CHUNK_FRAMES, chunk_lengths, stem_out_len
from runtime.errors import BundleError
from runtime.manifest import ENCODER_INPUTS, ENCODER_OUTPUT

# Execution providers in order of preference for each device choice.
PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "auto": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def pick_providers(device: str) -> list[str]:
    """The providers this onnxruntime build has, for `device`; cuda without CUDA is an error."""
    import onnxruntime as ort

    if device not in PROVIDERS:
        raise ValueError(f"device {device!r}: choose one of {', '.join(PROVIDERS)}")
    available = set(ort.get_available_providers())
    chosen = [p for p in PROVIDERS[device] if p in available]
    if device == "cuda" and "CUDAExecutionProvider" not in chosen:
        raise BundleError("device='cuda' but this onnxruntime has no CUDA provider: pip install '.[gpu]' "
                          "(onnxruntime-gpu) or use device='cpu'")
    return chosen


class OrtBackend:
    """onnxruntime with the providers `device` allows."""

    def __init__(self, path: Path, device: str, threads: int | None, verbose: bool):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 0 if verbose else 3
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=pick_providers(device))
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BundleError(f"cannot load encoder {path.name}: {e}") from None
        names = tuple(i.name for i in self.session.get_inputs())
        if names != ENCODER_INPUTS or self.session.get_outputs()[0].name != ENCODER_OUTPUT:
            raise BundleError(f"{path.name} is not a MOSS-Audio encoder graph (inputs {names}); re-export the bundle")
        self.n_mels = self.session.get_inputs()[0].shape[1]
        self.width = self.session.get_outputs()[0].shape[2]
        self.providers = self.session.get_providers()

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run([ENCODER_OUTPUT], feeds)[0]


class Encoder:
    """mel [n_mels, T] -> packed rows [ceil(T/8), hidden * (1 + k)] float32.

    The backend (onnxruntime, or a TensorRT engine via runtime.trt) only runs batches of
    fixed-width chunks; cutting and reassembling the clip happens here, once.
    """

    def __init__(self, path: Path, device: str = "cpu", *, threads: int | None = None,
                 batch_chunks: int = 8, verbose: bool = False, backend=None):
        self.backend = backend or OrtBackend(path, device, threads, verbose)
        self.n_mels, self.width = self.backend.n_mels, self.backend.width
        self.batch_chunks = min(batch_chunks, getattr(self.backend, "max_chunks", batch_chunks))

    @property
    def providers(self) -> list[str]:
        return self.backend.providers

    def rows(self, mel: np.ndarray) -> np.ndarray:
        if mel.ndim != 2 or mel.shape[0] != self.n_mels:
            raise ValueError(f"mel must be [{self.n_mels}, frames], got {mel.shape}")
        lengths = chunk_lengths(mel.shape[1])
        # Upstream pads every chunk to the longest one before the conv stem: a lone chunk is
        # seen unpadded, a multi-chunk tail zero-padded to 400 frames.
        stem = max(lengths)
        out = []
        for first in range(0, len(lengths), self.batch_chunks):
            batch = lengths[first : first + self.batch_chunks]
            out.append(self._run(mel, first, batch, stem))
        return np.concatenate(out, axis=0)

    def _run(self, mel: np.ndarray, first: int, lengths: Sequence[int], stem: int) -> np.ndarray:
        x = np.zeros((len(lengths), self.n_mels, CHUNK_FRAMES), dtype=np.float32)
        for i, n in enumerate(lengths):
            start = (first + i) * CHUNK_FRAMES
            x[i, :, :n] = mel[:, start : start + n]
        feeds = {"mel": x, "frames": np.asarray(lengths, dtype=np.int64),
                 "stem_frames": np.full(len(lengths), stem, dtype=np.int64)}
        rows = self.backend.run(feeds)
        return np.concatenate([rows[i, : stem_out_len(n)] for i, n in enumerate(lengths)], axis=0)
