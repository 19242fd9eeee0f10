"""Whisper-style log-mel in NumPy, as upstream's processor computes it: over the whole clip
(MOSS-Audio: no 30 s padding), or per zero-padded window (a windowed family).

Settings (rate, n_fft, hop, bins, dynamic range, the rounding to bfloat16) come from the
bundle's manifest. The log power before the floor is kept apart from the floor, because
the floor depends on the whole clip's maximum: incremental encoding applies it later.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from runtime.manifest import AudioInfo

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
def mel_filters(n_mels: int, n_fft: int, sample_rate: int) -> np.ndarray:
    """Triangular Slaney-normalised filters, [n_freq, n_mels], 0..rate/2."""
    n_freq = n_fft // 2 + 1
    fft_hz = np.linspace(0.0, sample_rate / 2, n_freq)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges)
    offsets = edges[None, :] - fft_hz[:, None]
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[None, :]


def n_frames(n_samples: int, audio: AudioInfo) -> int:
    """The centred STFT gives 1 + N//hop frames; the last is dropped, as in Whisper."""
    return n_samples // audio.hop_length


def final_frames(n_samples: int, audio: AudioInfo) -> int:
    """Frames whose centred window lies inside the first n samples: more audio cannot change them."""
    return max(0, min(n_frames(n_samples, audio), (n_samples - audio.n_fft // 2) // audio.hop_length + 1))


def log_power(samples: np.ndarray, audio: AudioInfo, start: int = 0, stop: int | None = None) -> np.ndarray:
    """log10 mel power of frames [start, stop) (default all N//hop), float64, before the floor and
    scaling. Frames are centred windows over the reflect-padded clip, so any range gives the
    columns the whole clip would."""
    hop, half = audio.hop_length, audio.n_fft // 2
    stop = n_frames(samples.size, audio) if stop is None else stop
    window = np.hanning(audio.n_fft + 1)[:-1]  # periodic Hann
    filters = mel_filters(audio.n_mels, audio.n_fft, audio.sample_rate)
    out = np.empty((audio.n_mels, stop - start), dtype=np.float64)
    for first in range(start, stop, _BLOCK_FRAMES):
        last = min(stop, first + _BLOCK_FRAMES)
        lo, hi = max(0, first * hop - half), min(samples.size, (last - 1) * hop + half)
        pad = (max(0, half - first * hop), max(0, (last - 1) * hop + half - samples.size))
        segment = np.pad(samples[lo:hi].astype(np.float64), pad, mode="reflect")
        view = np.lib.stride_tricks.sliding_window_view(segment, audio.n_fft)[::hop]
        power = np.abs(np.fft.rfft(view * window, axis=-1)) ** 2
        out[:, first - start : last - start] = np.log10(np.maximum(power @ filters, 1e-10)).T
    return out


def finish(power: np.ndarray, clip_max: float, audio: AudioInfo) -> np.ndarray:
    """Floor at the clip's maximum minus the range, scale as Whisper, round as upstream's processor."""
    out = ((np.maximum(power, clip_max - audio.log_range) + 4.0) / 4.0).astype(np.float32)
    return round_bfloat16(out) if audio.mel_dtype == "bfloat16" else out


def log_mel(samples: np.ndarray, audio: AudioInfo) -> np.ndarray:
    """[n_mels, N//hop] float32 log-mel of samples at the model's rate."""
    power = log_power(samples, audio)
    return finish(power, float(power.max()), audio)


def round_bfloat16(x: np.ndarray) -> np.ndarray:
    """float32 rounded to the nearest bfloat16 (ties to even), kept as float32."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return rounded.view(np.float32)


def window_mels(samples: np.ndarray, audio: AudioInfo) -> tuple[np.ndarray, list[int]]:
    """[windows, n_mels, chunk_frames] log-mels of the clip's windows, each zero-padded to the window
    and floored at its own maximum (Whisper's feature extractor), and the rows each window keeps."""
    from runtime.chunks import window_tokens

    windows = window_tokens(samples.size, audio)
    out = np.empty((len(windows), audio.n_mels, audio.chunk_frames), dtype=np.float32)
    padded = np.zeros(audio.window_samples, dtype=np.float32)
    for i, (n, _) in enumerate(windows):
        padded[:n] = samples[i * audio.window_samples : i * audio.window_samples + n]
        padded[n:] = 0.0
        out[i] = log_mel(padded, audio)
    return out, [rows for _, rows in windows]
