import dataclasses

import numpy as np
import pytest

from runtime.mel import log_mel, n_frames, round_bfloat16
from tests.conftest import AUDIO, clip

# Measured: max |ours - WhisperFeatureExtractor| = 6.7e-8 on 0.01 s .. 9 s (float32 rounding).
MEL_TOLERANCE = 1e-6
FLOAT32 = dataclasses.replace(AUDIO, mel_dtype="float32")


@pytest.mark.parametrize("n_samples", [160, 199, 401, 16000, 64037, 16000 * 61 + 5])
def test_log_mel_matches_whisper_feature_extractor(n_samples):
    transformers = pytest.importorskip("transformers")
    fe = transformers.WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, n_fft=400)
    x = clip(n_samples / 16000, seed=n_samples)[:n_samples]
    expected = fe._np_extract_fbank_features(x[None], device="cpu")[0]
    ours = log_mel(x, FLOAT32)
    assert ours.shape == expected.shape == (128, n_samples // 160)
    assert ours.dtype == np.float32
    assert np.abs(ours - expected).max() <= MEL_TOLERANCE


def test_bfloat16_rounding_is_torchs():
    """Upstream's processor casts the log-mel to bfloat16 (round to nearest even)."""
    torch = pytest.importorskip("torch")
    x = np.concatenate([np.random.default_rng(0).normal(0, 2, 100_000), [1 + 2**-8, 1 + 3 * 2**-8, -0.0, 0.0]])
    x = x.astype(np.float32)
    expected = torch.from_numpy(x).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(round_bfloat16(x), expected)
    assert (log_mel(clip(1.0), AUDIO) == round_bfloat16(log_mel(clip(1.0), FLOAT32))).all()


def test_frame_count_drops_the_last_stft_frame():
    assert [n_frames(n, AUDIO) for n in (159, 160, 319, 320, 16000)] == [0, 1, 1, 2, 100]
