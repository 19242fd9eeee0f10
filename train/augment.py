"""Light waveform augmentation: gain, background noise, a little room reverb."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from train.speech import SAMPLE_RATE


@dataclass(frozen=True)
class AugmentConfig:
    gain_db: tuple[float, float] = (-14.0, 4.0)
    noise_prob: float = 0.6
    snr_db: tuple[float, float] = (12.0, 40.0)
    reverb_prob: float = 0.3
    rt60_s: tuple[float, float] = (0.1, 0.45)


def augment(samples: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    x = samples.astype(np.float32)
    if rng.random() < cfg.reverb_prob:
        x = _reverb(x, rng.uniform(*cfg.rt60_s), rng)
    if rng.random() < cfg.noise_prob:
        noise = rng.standard_normal(x.size).astype(np.float32)
        if rng.random() < 0.5:  # rumble-like: one-pole low-pass of white noise
            from scipy.signal import lfilter

            noise = lfilter([1.0], [1.0, -0.97], noise).astype(np.float32)
        speech_power = np.mean(x[np.abs(x) > 1e-4] ** 2) if np.any(np.abs(x) > 1e-4) else 1e-4
        snr = 10 ** (rng.uniform(*cfg.snr_db) / 10)
        x = x + noise * np.sqrt(speech_power / snr / (np.mean(noise ** 2) + 1e-12))
    x = x * 10 ** (rng.uniform(*cfg.gain_db) / 20)
    peak = np.max(np.abs(x)) if x.size else 0.0
    return (x / peak * 0.98 if peak > 0.98 else x).astype(np.float32)


def _reverb(x: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with exponentially decaying noise (a synthetic room), keeping the direct path."""
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60) * 0.3
    ir[0] = 1.0
    from scipy.signal import fftconvolve

    wet = fftconvolve(x, ir)[: x.size]
    return (wet * (np.max(np.abs(x)) / (np.max(np.abs(wet)) + 1e-9))).astype(np.float32)
