"""The encoder stage: onnxruntime over fixed-width chunks, rows assembled for the whole clip."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from runtime.chunks import chunk_lengths, stem_out_len
from runtime.errors import BundleError, EncoderOverflow
from runtime.manifest import ENCODER_INPUTS, ENCODER_OUTPUT, WINDOW_INPUTS, AudioInfo
from runtime.mel import log_mel, window_mels

# Execution providers in order of preference for each device.
PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def pick_providers(device: str) -> list[str]:
    """The providers this onnxruntime build has, for `device`; cuda without CUDA is an error."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    chosen = [p for p in PROVIDERS[device] if p in available]
    if device == "cuda" and "CUDAExecutionProvider" not in chosen:
        raise BundleError("device='cuda' but this onnxruntime has no CUDA provider: pip install '.[gpu]' "
                          "(onnxruntime-gpu) or use device='cpu'")
    return chosen


class OrtBackend:
    """onnxruntime with the providers `device` allows.

    `prepack` lets onnxruntime copy the weights into its packed GEMM layout at load (faster
    matmuls, a private copy of every weight, and seconds of load for a GB-sized encoder);
    without it the weights stay in the page-cache-backed mapping of the file, shared by every
    process that loads the bundle. `arena` keeps freed activation memory for reuse (faster runs, a
    higher peak). Device profiles choose both (runtime/placement/profiles)."""

    def __init__(self, path: Path, device: str, threads: int | None, verbose: bool, prepack: bool = True,
                 arena: bool = True):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 0 if verbose else 3
        if threads:
            options.intra_op_num_threads = threads
        if not prepack:
            options.add_session_config_entry("session.disable_prepacking", "1")
        options.enable_cpu_mem_arena = arena
        try:
            self.session = ort.InferenceSession(str(path), options, providers=pick_providers(device))
        except BundleError:
            raise
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BundleError(f"cannot load encoder {path.name}: {e}") from None
        self.inputs = tuple(i.name for i in self.session.get_inputs())
        if self.inputs not in (ENCODER_INPUTS, WINDOW_INPUTS) or self.session.get_outputs()[0].name != ENCODER_OUTPUT:
            raise BundleError(f"{path.name} is not an encoder graph of ours (inputs {self.inputs}); re-export the bundle")
        mel = self.session.get_inputs()[0].shape
        # a symbolic time axis: chunks of any multiple of 8 frames up to the manifest's chunk
        self.variable_frames = not isinstance(mel[2], int)
        self.n_mels, self.chunk_frames = mel[1], None if self.variable_frames else mel[2]
        self.width = self.session.get_outputs()[0].shape[2]
        self.providers = self.session.get_providers()
        self.max_chunks = None

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run([ENCODER_OUTPUT], feeds)[0]


class Encoder:
    """samples -> packed rows [tokens, hidden * (1 + k)] float32.

    The backend (onnxruntime, or a TensorRT engine via runtime.trt) only runs batches of
    fixed-width chunks (or whole windows); cutting and reassembling the clip happens here, once.
    """

    def __init__(self, backend, audio: AudioInfo, *, batch_chunks: int = 8):
        self.backend, self.audio = backend, audio
        if (backend.n_mels, backend.chunk_frames or audio.chunk_frames) != (audio.n_mels, audio.chunk_frames):
            raise BundleError(f"the encoder takes chunks of {backend.n_mels} x {backend.chunk_frames} mel frames, the "
                              f"manifest says {audio.n_mels} x {audio.chunk_frames}: the encoder is from a different "
                              "model; re-export the bundle")
        windowed = getattr(backend, "inputs", ENCODER_INPUTS) == WINDOW_INPUTS
        if windowed != bool(audio.window_samples):
            raise BundleError("the encoder graph and the manifest disagree on whether audio is encoded in whole "
                              "windows: the encoder is from a different model; re-export the bundle")
        self.width = backend.width
        self.variable_frames = getattr(backend, "variable_frames", False) and not audio.window_samples
        self.batch_chunks = min(batch_chunks, backend.max_chunks or batch_chunks)

    @classmethod
    def load(cls, path: Path, audio: AudioInfo, device: str = "cpu", *, threads: int | None = None,
             verbose: bool = False, batch_chunks: int = 8) -> "Encoder":
        return cls(OrtBackend(path, device, threads, verbose), audio, batch_chunks=batch_chunks)

    @property
    def providers(self) -> list[str]:
        return self.backend.providers

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """A clip's rows: its log-mel in chunks, or a windowed family's padded windows."""
        if not self.audio.window_samples:
            return self.rows(log_mel(samples, self.audio))
        mels, keep = window_mels(samples, self.audio)
        # One window per run: its 3000 frames are already a batch of chunks' worth. On the 0.9B shape
        # (5 min, 2 cores) eight windows per run peaked at 5.27 GB and took 100 s, one at 2.71 GB and 81 s.
        out = [self._checked(self.backend.run({"mel": mels[i : i + 1]}))[0, :n] for i, n in enumerate(keep)]
        return np.concatenate(out, axis=0)

    def rows(self, mel: np.ndarray) -> np.ndarray:
        if mel.ndim != 2 or mel.shape[0] != self.audio.n_mels:
            raise ValueError(f"mel must be [{self.audio.n_mels}, frames], got {mel.shape}")
        lengths = chunk_lengths(mel.shape[1], self.audio.chunk_frames)
        # Upstream pads every chunk to the longest one before the conv stem: a lone chunk is
        # seen unpadded, a multi-chunk tail zero-padded to a full chunk.
        stem = max(lengths)
        out = []
        for first in range(0, len(lengths), self.batch_chunks):
            batch = lengths[first : first + self.batch_chunks]
            out.append(self.run_chunks(mel[:, first * self.audio.chunk_frames :], batch, stem))
        return np.concatenate(out, axis=0)

    def run_chunks(self, mel: np.ndarray, lengths: Sequence[int], stem: int) -> np.ndarray:
        """Rows of consecutive chunks starting at mel's first frame; `stem` frames reach the conv stem.

        A graph with a variable time axis gets the batch only as wide as its longest chunk, rounded
        up to the stem's 8 frames a row: the rows are a full-width batch's (frames past a chunk are
        zeros either way, the stem's kept rows reach no frame past that multiple of 8, attention
        masks the rest), but a 1 s clip costs 1 s of encoder, not a whole chunk's 4 s."""
        size = width = self.audio.chunk_frames
        if self.variable_frames:
            width = min(size, -(-max(lengths) // 8) * 8)
        x = np.zeros((len(lengths), self.audio.n_mels, width), dtype=np.float32)
        for i, n in enumerate(lengths):
            x[i, :, :n] = mel[:, i * size : i * size + n]
        feeds = {"mel": x, "frames": np.asarray(lengths, dtype=np.int64),
                 "stem_frames": np.full(len(lengths), stem, dtype=np.int64)}
        rows = self._checked(self.backend.run(feeds))
        return np.concatenate([rows[i, : stem_out_len(n)] for i, n in enumerate(lengths)], axis=0)

    @staticmethod
    def _checked(rows: np.ndarray) -> np.ndarray:
        # An all-FP16 graph of the trained tiny model overflowed to inf/NaN on 9 of its 110 evaluation
        # clips; llama.cpp turns such rows into confident nonsense. The export now keeps the overflowing
        # MatMuls in FP32 (export/encoder_precisions.py); this guards any other graph (and sessions,
        # which encode chunk by chunk) against it.
        if not np.isfinite(rows).all():
            raise EncoderOverflow("the audio encoder gave non-finite features for this audio (a reduced-precision "
                                  "graph overflowed); use the bundle's fp32 or int8 encoder (encoder=\"fp32\")")
        return rows
