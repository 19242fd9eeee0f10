import numpy as np
import pytest
import soundfile as sf

from runtime.audio import load_audio, read_bytes, read_file
from runtime.errors import AudioError
from tests.conftest import SAMPLE_RATE, clip


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", None)])
def test_reads_common_formats(tmp_path, fmt, subtype):
    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile cannot write {fmt}")
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, clip(1.0), SAMPLE_RATE, format=fmt, subtype=subtype)
    samples = load_audio(path, SAMPLE_RATE)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size - SAMPLE_RATE) <= 1200  # mp3/ogg add encoder padding
    assert np.abs(samples).max() > 0.1


@pytest.mark.parametrize("rate", [8000, 44100, 192000])
def test_resamples_to_16k(tmp_path, rate):
    t = np.arange(rate) / rate
    sf.write(tmp_path / "a.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    samples = load_audio(tmp_path / "a.wav", SAMPLE_RATE)
    assert samples.size == SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 s at 16 kHz: bin = Hz


def test_downmixes_eight_channels(tmp_path):
    x = np.stack([clip(0.5, seed=c) for c in range(8)], axis=1)
    sf.write(tmp_path / "multi.wav", x, SAMPLE_RATE, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "multi.wav", SAMPLE_RATE), x.mean(axis=1), atol=1e-6)


def test_arrays_int16_and_channels_first():
    pcm = (clip(0.5) * 32767).astype(np.int16)
    np.testing.assert_allclose(load_audio(pcm, SAMPLE_RATE), pcm / 32768.0, atol=1e-6)
    stereo = np.stack([clip(0.5), clip(0.5, seed=1)])  # (channels, samples)
    np.testing.assert_allclose(load_audio(stereo, SAMPLE_RATE), stereo.mean(axis=0), atol=1e-7)
    np.testing.assert_allclose(load_audio(clip(1.0), SAMPLE_RATE, sample_rate=8000).size, 32000, atol=1)


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
        load_audio(path, SAMPLE_RATE)


@pytest.mark.parametrize("bad,message", [
    (np.array([0.0, np.nan] * 200, dtype=np.float32), "NaN or infinite"),
    (np.array([0.0, np.inf] * 200, dtype=np.float32), "NaN or infinite"),
    (np.zeros((2, 3, 400), dtype=np.float32), "shape"),
    (np.array(["a"] * 400), "sample type"),
    (np.float32(0.5), "shape"),  # a 0-d array
    ([[0.1, 0.2], [0.3]], "not an array of samples"),  # ragged
])
def test_bad_arrays(bad, message):
    with pytest.raises(AudioError, match=message):
        load_audio(bad, SAMPLE_RATE)


@pytest.mark.parametrize("fmt", ["WAV", "MP3"])
def test_a_file_cut_short_is_an_error_not_shorter_audio(tmp_path, fmt):
    """libsndfile reads what is there; the header (WAV) or the frame count (MP3) says more was promised."""
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(path, clip(3.0), SAMPLE_RATE, format=fmt)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(AudioError, match="truncated"):
        load_audio(path, SAMPLE_RATE)


def test_a_streamed_wav_of_unknown_length_is_not_truncation(tmp_path):
    """arecord | … writes a maximal data size in the header: that is not a cut file."""
    path = tmp_path / "stream.wav"
    sf.write(path, clip(1.0), SAMPLE_RATE, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.index(b"data") + 4
    data[at : at + 4] = (0x7FFFFFFF).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert load_audio(path, SAMPLE_RATE).size == SAMPLE_RATE


def test_a_broken_mp3_gets_our_words_not_libsndfiles(tmp_path, capfd):
    path = tmp_path / "broken.mp3"
    path.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + np.random.default_rng(0).bytes(3000))
    with pytest.raises(AudioError) as e:
        load_audio(path, SAMPLE_RATE)
    assert "cannot decode" in str(e.value) and "possibly a pipe" not in str(e.value)
    assert capfd.readouterr().err == ""  # mpg123's warnings stay off the terminal


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", None)])
def test_bytes_in_memory_decode_as_the_file_would(tmp_path, fmt, subtype):
    """A server's upload: the same samples as the file."""
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, clip(1.0), SAMPLE_RATE, format=fmt, subtype=subtype)
    samples, rate = read_bytes(path.read_bytes(), "the upload")
    expected, expected_rate = read_file(path)
    assert rate == expected_rate and np.array_equal(samples, expected)


@pytest.mark.parametrize("fmt", ["WAV", "MP3"])
def test_bytes_cut_short_are_an_error_not_shorter_audio(tmp_path, fmt):
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(path, clip(3.0), SAMPLE_RATE, format=fmt)
    with pytest.raises(AudioError, match="the upload is truncated"):
        read_bytes(path.read_bytes()[: path.stat().st_size // 2], "the upload")


@pytest.mark.parametrize("content,message", [(b"", "the upload is empty"),
                                             (np.random.default_rng(0).bytes(4096), "cannot decode the upload")])
def test_bad_bytes_get_one_clear_error(content, message):
    with pytest.raises(AudioError, match=message):
        read_bytes(content, "the upload")
