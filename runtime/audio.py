"""Audio in: any file libsndfile reads, or an array, to the model's rate, mono float32."""

from __future__ import annotations

import io
import os
import re
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator, Union

import numpy as np

from runtime.errors import AudioError

AudioInput = Union[str, Path, np.ndarray]
_DECLARED_LONGER = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.M)  # libsndfile's WAV log
_UNKNOWN_LENGTH = 0x7FFFF000  # streamed WAVs (arecord | …) declare a maximal data size: not truncation


def load_audio(source: AudioInput, rate: int, *, sample_rate: int | None = None) -> np.ndarray:
    """Read, downmix and resample to `rate`. Arrays are taken at `sample_rate` (default: `rate`).

    A 2-D array is (samples, channels) as soundfile returns it; (channels, samples) is
    recognised when it has more columns than rows.
    """
    if isinstance(source, (str, Path)):
        if sample_rate is not None:
            raise AudioError("sample_rate is read from the file; pass it only with an array")
        samples, file_rate = read_file(Path(source))
        return to_model_rate(samples, file_rate, rate, str(source))
    return to_model_rate(as_samples(source), sample_rate or rate, rate, "the audio array")


def as_samples(source: object) -> np.ndarray:
    """An array-like of samples as a 1-D or 2-D array, or an AudioError that says what to pass."""
    if isinstance(source, (str, Path)):
        raise AudioError("expected samples, got a path")
    try:
        arr = np.asarray(source)
    except (TypeError, ValueError) as e:
        raise AudioError(f"the audio is not an array of samples ({e}); pass a path or a NumPy array") from None
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        raise AudioError(f"the audio array has sample type {arr.dtype}; give float or integer PCM samples")
    if arr.ndim not in (1, 2):
        raise AudioError(f"the audio array has shape {arr.shape}; give (samples,) or (samples, channels)")
    return arr


def read_file(path: Path, start: int = 0, frames: int = -1) -> tuple[np.ndarray, int]:
    """(samples [n, channels] float32, rate) of a whole file or a span of it."""
    with decoding(path):
        return _read(str(path), str(path), start, frames)


def read_bytes(data: bytes, name: str) -> tuple[np.ndarray, int]:
    """(samples [n, channels] float32, rate) of an audio file held in memory (a server's upload:
    nothing is written to disk), with read_file's checks; `name` says which input in errors."""
    if not data:
        raise AudioError(f"{name} is empty")
    with decode_errors(name, quiet=False):  # fd 2 is the process's: a server's other threads log there
        return _read(io.BytesIO(data), name)


def _read(source: str | io.BytesIO, name: str, start: int = 0, frames: int = -1) -> tuple[np.ndarray, int]:
    import soundfile

    with soundfile.SoundFile(source) as f:
        declared = f.frames
        if start:
            f.seek(start)
        data = f.read(frames, dtype="float32", always_2d=True)
        rate, log = f.samplerate, f.extra_info
    wanted = declared - start if frames < 0 else min(frames, declared - start)
    if data.shape[0] < wanted or _declares_more(log):
        raise AudioError(f"{name} is truncated: its header declares more audio than the file holds "
                         "(an interrupted copy or download?); re-create the file")
    return data, rate


def _declares_more(log: str) -> bool:
    m = _DECLARED_LONGER.search(log)
    return bool(m) and int(m.group(2)) < int(m.group(1)) < _UNKNOWN_LENGTH


def file_info(path: Path) -> tuple[int, int]:
    """(frames, sample rate) of an audio file, without decoding it."""
    import soundfile

    with decoding(path):
        info = soundfile.info(str(path))
    return info.frames, info.samplerate


@contextmanager
def decoding(path: Path) -> Iterator[None]:
    """Missing, empty and undecodable files end in one AudioError naming the file."""
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file is empty: {path}")
    with decode_errors(str(path)):
        yield


@contextmanager
def decode_errors(name: str, quiet: bool = True) -> Iterator[None]:
    """An undecodable input ends in one AudioError naming it; when quiet, the C decoders' own
    chatter (mpg123 warnings) never reaches the terminal."""
    import soundfile

    try:
        with native_stderr_silenced() if quiet else nullcontext():
            yield
    except (RuntimeError, soundfile.LibsndfileError) as e:
        reason = str(e)
        if "does not exist" in reason or "Error opening" in reason:  # libsndfile's words for an undecodable file
            reason = "not a recognised or intact audio format"
        raise AudioError(f"cannot decode {name}: {reason.splitlines()[0]}. Use a format libsndfile reads "
                         "(wav, flac, ogg, mp3)") from None


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """libsndfile/mpg123 print to fd 2 from C; keep the CLI to one line."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def to_model_rate(samples: np.ndarray, rate: int, target: int, name: str) -> np.ndarray:
    """Validate, downmix and resample samples at `rate` to `target` Hz mono float32."""
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
        samples = channels_last(samples).mean(axis=1)
    if not np.isfinite(samples).all():
        raise AudioError(f"{name} contains NaN or infinite samples; clean the signal first")
    if not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise AudioError(f"sample rate {rate!r} is not a positive whole number of Hz")
    samples = samples.astype(np.float32)
    if rate != target:
        import soxr

        samples = soxr.resample(samples, int(rate), target, quality="HQ").astype(np.float32)
    return samples


def channels_last(samples: np.ndarray) -> np.ndarray:
    """(samples, channels), whichever way a 2-D array came."""
    return samples.T if samples.ndim == 2 and samples.shape[0] < samples.shape[1] else samples


def require_frames(samples: np.ndarray, hop: int, rate: int, name: str = "the audio") -> np.ndarray:
    """Fewer samples than one hop give no mel frame: refuse them with how long is needed."""
    if samples.size < hop:
        raise AudioError(f"{name} lasts {1000 * samples.size / rate:.1f} ms; at least {1000 * hop / rate:.0f} ms "
                         "(one mel frame) is needed")
    return samples
