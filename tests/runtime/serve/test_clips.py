import io

import numpy as np
import pytest
import soundfile as sf

from runtime.errors import AudioError
from runtime.serve.clips import ClipDecoder
from tests.conftest import AUDIO, clip


def flac(seconds: float, seed: int = 0, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    sf.write(out, clip(seconds, seed)[:: 16000 // rate] if rate != 16000 else clip(seconds, seed), rate, format="FLAC")
    return out.getvalue()


def test_the_same_bytes_are_decoded_once_and_shared_read_only():
    decoder = ClipDecoder(AUDIO, budget_bytes=2**20)
    first, again = decoder.decode(flac(1.0), "a"), decoder.decode(flac(1.0), "a")
    assert again is first and first.seconds == 1.0 and not first.samples.flags.writeable
    assert decoder.decode(flac(1.0, seed=1), "b").key != first.key


def test_resampled_to_the_model_rate_and_evicted_by_bytes():
    decoder = ClipDecoder(AUDIO, budget_bytes=100_000)  # one 1 s clip (64 kB of float32), not two
    a = decoder.decode(flac(1.0, rate=8000), "a")
    assert a.samples.size == 16000 and a.samples.dtype == np.float32
    decoder.decode(flac(1.0, seed=1), "b")
    assert decoder.decode(flac(1.0, rate=8000), "a") is not a  # a was evicted: decoded anew


def test_too_short_audio_names_the_field():
    with pytest.raises(AudioError, match="the audio in 'file' lasts 5.0 ms; at least 10 ms"):
        ClipDecoder(AUDIO, 2**20).decode(flac(0.005), "the audio in 'file'")
