import numpy as np
import pytest
import soundfile as sf

from runtime.audio import SAMPLE_RATE, load_audio
from runtime.errors import AudioError
from tests.conftest import clip


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", None)])
def test_reads_common_formats(tmp_path, fmt, subtype):
    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile cannot write {fmt}")
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, clip(1.0), SAMPLE_RATE, format=fmt, subtype=subtype)
    samples = load_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size - SAMPLE_RATE) <= 1200  # mp3/ogg add encoder padding
    assert np.abs(samples).max() > 0.1


@pytest.mark.parametrize("rate", [8000, 44100, 192000])
def test_resamples_to_16k(tmp_path, rate):
    t = np.arange(rate) / rate
    sf.write(tmp_path / "a.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    samples = load_audio(tmp_path / "a.wav")
    assert samples.size == SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 s at 16 kHz: bin = Hz


def test_downmixes_eight_channels(tmp_path):
    x = np.stack([clip(0.5, seed=c) for c in range(8)], axis=1)
    sf.write(tmp_path / "multi.wav", x, SAMPLE_RATE, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "multi.wav"), x.mean(axis=1), atol=1e-6)


def test_arrays_int16_and_channels_first():
    pcm = (clip(0.5) * 32767).astype(np.int16)
    np.testing.assert_allclose(load_audio(pcm), pcm / 32768.0, atol=1e-6)
    stereo = np.stack([clip(0.5), clip(0.5, seed=1)])  # (channels, samples)
    np.testing.assert_allclose(load_audio(stereo), stereo.mean(axis=0), atol=1e-7)
    np.testing.assert_allclose(load_audio(clip(1.0), sample_rate=8000).size, 32000, atol=1)


@pytest.mark.parametrize("content,message", [
    (None, "not found"),
    (b"", "empty"),
    (np.random.default_rng(0).bytes(4096), "cannot decode"),  # random bytes named .wav
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "cannot decode"),  # truncated header
])
def test_bad_files_get_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=message):
        load_audio(path)


@pytest.mark.parametrize("bad,message", [
    (np.array([0.0, np.nan] * 200, dtype=np.float32), "NaN or infinite"),
    (np.array([0.0, np.inf] * 200, dtype=np.float32), "NaN or infinite"),
    (np.zeros((2, 3, 400), dtype=np.float32), "shape"),
    (np.array(["a"] * 400), "sample type"),
])
def test_bad_arrays(bad, message):
    with pytest.raises(AudioError, match=message):
        load_audio(bad)
