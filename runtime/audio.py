"""Audio in: any file libsndfile reads, or an array, to 16 kHz mono float32."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

import numpy as np

from runtime.errors import AudioError

SAMPLE_RATE = 16_000
HOP_LENGTH = 160  # 10 ms: one mel frame
MIN_SAMPLES = HOP_LENGTH  # N samples give N // 160 frames; fewer than 160 give none

AudioInput = Union[str, Path, np.ndarray]


def load_audio(source: AudioInput, sample_rate: int | None = None) -> np.ndarray:
    """Read, downmix and resample. Arrays are taken at `sample_rate` (default 16 kHz).

    A 2-D array is (samples, channels) as soundfile returns it; (channels, samples) is
    recognised when it has more columns than rows.
    """
    if isinstance(source, (str, Path)):
        if sample_rate is not None:
            raise AudioError("sample_rate is read from the file; pass it only with an array")
        samples, rate = _read_file(Path(source))
        name = str(source)
    else:
        samples, rate = np.asarray(source), sample_rate or SAMPLE_RATE
        name = "the audio array"
    return to_model_rate(samples, rate, name)


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    with _decoding(path):
        return soundfile.read(str(path), dtype="float32", always_2d=True)


def file_info(path: Path) -> tuple[int, int]:
    """(frames, sample rate) of an audio file, without decoding it."""
    import soundfile

    with _decoding(path):
        info = soundfile.info(str(path))
    return info.frames, info.samplerate


@contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Missing, empty and undecodable files end in one AudioError naming the file."""
    import soundfile

    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file is empty: {path}")
    try:
        with _native_stderr_silenced():
            yield
    except (RuntimeError, soundfile.LibsndfileError) as e:  # libsndfile's own reason follows
        raise AudioError(f"cannot decode {path}: {e}. Use a format libsndfile reads (wav, flac, ogg, mp3)") from None


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """libsndfile's mp3 fallback prints to fd 2 from C on junk input; keep the CLI to one line."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def to_model_rate(samples: np.ndarray, rate: int, name: str) -> np.ndarray:
    """Validate, downmix and resample samples at `rate` to 16 kHz mono float32."""
    if samples.dtype.kind in "iu":
        info = np.iinfo(samples.dtype)
        samples = (samples.astype(np.float64) - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
    elif samples.dtype.kind != "f":
        raise AudioError(f"{name} has sample type {samples.dtype}; give float or integer PCM samples")
    if samples.ndim not in (1, 2):
        raise AudioError(f"{name} has shape {samples.shape}; give (samples,) or (samples, channels)")
    if samples.size == 0:
        raise AudioError(f"{name} holds no samples")
    if samples.ndim == 2:
        if samples.shape[0] < samples.shape[1]:
            samples = samples.T
        samples = samples.mean(axis=1)
    if not np.isfinite(samples).all():
        raise AudioError(f"{name} contains NaN or infinite samples; clean the signal first")
    if rate <= 0:
        raise AudioError(f"sample rate {rate} is not positive")
    samples = samples.astype(np.float32)
    if rate != SAMPLE_RATE:
        import soxr

        samples = soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    if samples.size < MIN_SAMPLES:
        ms = 1000 * samples.size / SAMPLE_RATE
        raise AudioError(f"{name} lasts {ms:.1f} ms; at least 10 ms (one mel frame) is needed")
    return samples


def duration_s(samples: np.ndarray) -> float:
    return samples.size / SAMPLE_RATE
