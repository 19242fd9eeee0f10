"""Speech from espeak-ng at 16 kHz mono, and where in it the speech really starts and ends."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np

from train.voices import Voice

SAMPLE_RATE = 16_000  # the model's rate: processor_config.json's mel_sr (train/tokenizer.py)

INSTALL_HINT = "espeak-ng is not installed: apt-get install espeak-ng (Debian/Ubuntu) or brew install espeak-ng"


class EspeakMissing(RuntimeError):
    pass


def require_espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise EspeakMissing(INSTALL_HINT)
    return path


def synthesize(text: str, voice: Voice) -> np.ndarray:
    """float32 16 kHz samples of `text` spoken by `voice` (espeak's own silences included)."""
    import soundfile as sf
    import soxr

    cmd = [require_espeak(), "--stdout", "-v", voice.espeak_voice, "-s", str(voice.speed), "-p", str(voice.pitch),
           "--", text]
    run = subprocess.run(cmd, capture_output=True, check=False)
    if run.returncode != 0 or len(run.stdout) < 100:
        raise RuntimeError(f"espeak-ng failed for voice {voice.espeak_voice!r}: {run.stderr.decode(errors='replace')}"
                           " (list voices with espeak-ng --voices and variants with --voices=variant)")
    samples, rate = sf.read(io.BytesIO(run.stdout), dtype="float32")
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    return soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float32)


def speech_bounds(samples: np.ndarray, threshold_db: float = -35.0, frame: int = 160) -> tuple[int, int]:
    """(first, last+1) sample of speech: 10 ms frames whose RMS is within threshold_db of the peak frame."""
    n = samples.size // frame
    if n == 0:
        return 0, samples.size
    rms = np.sqrt(np.mean(samples[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(rms >= rms.max() * 10 ** (threshold_db / 20))[0]
    return int(loud[0] * frame), int(min(samples.size, (loud[-1] + 1) * frame))


def trimmed(samples: np.ndarray) -> np.ndarray:
    """Only the speech: espeak's leading and trailing silence cut by energy."""
    start, end = speech_bounds(samples)
    return samples[start:end]
