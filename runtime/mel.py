"""Whisper-style log-mel in NumPy, as upstream's feature extractor computes it (no 30 s padding)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from runtime.audio import HOP_LENGTH, SAMPLE_RATE

N_FFT = 400  # 25 ms window
N_MELS = 128
_BLOCK_FRAMES = 6000  # 60 s of frames per FFT block keeps an hour's STFT out of memory


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney scale: linear to 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    mel = 3.0 * f / 200.0
    log_step = np.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-12) / 1000.0) / log_step, mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    log_step = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(log_step * (m - 15.0)), 200.0 * m / 3.0)


@lru_cache(maxsize=4)
def mel_filters(n_mels: int = N_MELS) -> np.ndarray:
    """Triangular Slaney-normalised filters, [n_freq, n_mels], 0..8 kHz."""
    n_freq = N_FFT // 2 + 1
    fft_hz = np.linspace(0.0, SAMPLE_RATE / 2, n_freq)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), n_mels + 2))
    widths = np.diff(edges)
    offsets = edges[None, :] - fft_hz[:, None]
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[None, :]


def n_frames(n_samples: int) -> int:
    """The centred STFT gives 1 + N//160 frames; the last is dropped, as in Whisper."""
    return n_samples // HOP_LENGTH


def log_mel(samples: np.ndarray, n_mels: int = N_MELS) -> np.ndarray:
    """[n_mels, N//160] float32 log-mel of 16 kHz samples."""
    frames = n_frames(samples.size)
    padded = np.pad(samples.astype(np.float64), N_FFT // 2, mode="reflect")
    window = np.hanning(N_FFT + 1)[:-1]  # periodic Hann
    filters = mel_filters(n_mels)
    out = np.empty((n_mels, frames), dtype=np.float64)
    for start in range(0, frames, _BLOCK_FRAMES):
        stop = min(frames, start + _BLOCK_FRAMES)
        view = np.lib.stride_tricks.sliding_window_view(
            padded[start * HOP_LENGTH : (stop - 1) * HOP_LENGTH + N_FFT], N_FFT
        )[::HOP_LENGTH]
        power = np.abs(np.fft.rfft(view * window, axis=-1)) ** 2
        out[:, start:stop] = np.log10(np.maximum(power @ filters, 1e-10)).T
    out = np.maximum(out, out.max() - 8.0)
    return ((out + 4.0) / 4.0).astype(np.float32)
