"""Any length, sample rate and channel count: a valid prompt whose audio-token count equals
the encoder's row count, or the documented error."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.audio import load_audio, require_frames
from runtime.chunks import audio_token_count
from runtime.encoder import Encoder
from runtime.errors import AudioError
from runtime.manifest import TokenIds
from runtime.mel import log_mel, n_frames
from runtime.prompt import MarkerRule, build_prompt
from tests.conftest import AUDIO, PROMPT

IDS = TokenIds(audio=7, audio_start=8, audio_end=9, eos=(1,), digits=tuple(range(20, 30)))
RATES = st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000])


def front_end(seconds, rate, channels, seed):
    n = int(seconds * rate)
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, (n, channels)).astype(np.float32)
    return require_frames(load_audio(x if channels > 1 else x[:, 0], 16000, sample_rate=rate), 160, 16000)


@given(seconds=st.floats(0, 12), rate=RATES, channels=st.integers(1, 8), seed=st.integers(0, 99))
@settings(max_examples=80, deadline=None)
def test_prompt_or_documented_error(seconds, rate, channels, seed):
    try:
        samples = front_end(seconds, rate, channels, seed)
    except AudioError as e:
        assert "at least 10 ms" in str(e) or "holds no samples" in str(e)
        assert seconds * 16000 < 161  # only audio under one mel frame is refused
        return
    frames = n_frames(samples.size, AUDIO)
    tokens = audio_token_count(frames, AUDIO.chunk_frames)
    assert tokens == -(-frames // 8) >= 1
    assert log_mel(samples, AUDIO).shape == (128, frames)
    prompt = build_prompt(lambda s, special: [ord(c) % 5 + 100 for c in s], IDS, [tokens], "q?", PROMPT,
                          MarkerRule.of(PROMPT, AUDIO))
    assert prompt.n_audio == tokens
    assert prompt.audio_rows[prompt.audio_rows >= 0].tolist() == list(range(tokens))


@given(seconds=st.floats(0.011, 9), rate=RATES, channels=st.integers(1, 3))
@settings(max_examples=15, deadline=None)
def test_encoder_rows_match_the_prompt(tiny_bundle, seconds, rate, channels):
    samples = front_end(seconds, rate, channels, 0)
    tokens = audio_token_count(n_frames(samples.size, AUDIO), AUDIO.chunk_frames)
    encoder = Encoder.load(tiny_bundle / "encoder-fp32.onnx", AUDIO)
    assert encoder.rows(log_mel(samples, AUDIO)).shape[0] == tokens
