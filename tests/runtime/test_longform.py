import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from runtime.errors import AudioError, PromptError
from runtime.longform import iter_windows, join_seam
from runtime.pipeline import Pipeline
from runtime.segments import Segment, parse_segments, shift_timestamps
from tests.conftest import clip


def test_windows_cover_the_audio_with_overlap(tmp_path):
    x = clip(71.0)
    sf.write(tmp_path / "a.flac", x, 16000)
    stereo = np.stack([x, x])  # (channels, samples): the long axis is time
    for source in (x, tmp_path / "a.flac", stereo):
        windows = list(iter_windows(source, 30.0, 16000, 2.0))
        assert [w.start_s for w in windows] == [0.0, 28.0, 56.0]
        assert [round(w.duration_s, 3) for w in windows] == [30.0, 30.0, 15.0]
        np.testing.assert_allclose(windows[1].samples, x[28 * 16000 : 58 * 16000], atol=1e-4)


def test_timestamps_shift_to_absolute_time():
    answer = "0.00 - 12.50: birds chirping\n12.50 - 30.00: water running"
    assert shift_timestamps(answer, 56.0) == "56.00 - 68.50: birds chirping\n68.50 - 86.00: water running"
    assert shift_timestamps("a cough at [00:08], speech [00:00]-[00:06]", 56) == \
        "a cough at [01:04], speech [00:56]-[01:02]"
    assert shift_timestamps("intro (0:03\u20130:16)", 3598) == "intro (01:00:01\u201301:00:14)"
    assert shift_timestamps("at 12:05:09.5 sharp", 1) == "at 12:05:10.5 sharp"
    assert shift_timestamps("version 2.0 of 3 items", 30) == "version 2.0 of 3 items"  # not a timestamp
    # upstream's sentence-level format
    assert shift_timestamps("[0.00]Hello there.[1.52][2.10]Bye.[3.00]", 28.0) == \
        "[28.00]Hello there.[29.52][30.10]Bye.[31.00]"


def test_segments_are_parsed_from_every_form():
    assert parse_segments("[0.00]Hello there.[1.52][2.10] Bye. [3.00]") == [
        Segment(0.0, 1.52, "Hello there."), Segment(2.1, 3.0, "Bye.")]
    assert parse_segments("0.00 - 12.50: birds chirping\n12.50 - 30.00: water running") == [
        Segment(0.0, 12.5, "birds chirping"), Segment(12.5, 30.0, "water running")]
    assert parse_segments("[0.48][S01]Good morning.[1.66][2.10][S02]Let us begin.[4.02]") == [
        Segment(0.48, 1.66, "Good morning.", "S01"), Segment(2.1, 4.02, "Let us begin.", "S02")]  # diarized
    assert shift_timestamps("[0.48][S01]Hi.[1.66]", 30.0) == "[30.48][S01]Hi.[31.66]"
    assert parse_segments("no times here") == []
    assert parse_segments("version 2.0 of 3 items\nat 12.5 s") == []


def test_clock_time_lines_are_segments_to_the_next_line_or_the_end():
    """A windowed answer's [MM:SS] times (shifted to absolute) become segments."""
    answer = "[00:00] a dog barks\n[00:28]-[00:31]: a door\n01:02:03.5 rain"
    assert parse_segments(answer, end=3800.0) == [
        Segment(0.0, 28.0, "a dog barks"), Segment(28.0, 31.0, "a door"), Segment(3723.5, 3800.0, "rain")]
    assert parse_segments("[00:05] a dog barks")[0].end == 5.0  # no end known: a point in time
    assert parse_segments("it starts at [00:05] and ends") == []  # a time inside a sentence is not a segment


def test_seams_drop_words_heard_twice_and_nothing_else():
    assert join_seam("the quick brown fox jumps", "Fox jumps over the dog.") == "over the dog."
    assert join_seam("hello there", "general kenobi") == "general kenobi"
    assert join_seam("", "anything") == "anything"
    # one shared word is no evidence, and a repeat far from the seam is a genuine repeat
    assert join_seam("we said yes", "yes we did") == "yes we did"
    assert join_seam("the cat sat on the mat and then it slept for a long time", "the cat sat again") == \
        "the cat sat again"
    # what follows the dropped words keeps its lines
    assert join_seam("so it ends here", "ends here\n30.00 - 31.00: next line") == "30.00 - 31.00: next line"


def test_too_long_audio_is_refused_with_what_fits(tiny_bundle):
    pipe = Pipeline.load(tiny_bundle, device="cpu", decoder="q8_0", context=8192)
    fits = pipe.max_audio_seconds(max_new_tokens=32)
    assert 500 < fits < 700  # tiny context 8192 at 12.5 tokens/s plus markers
    with pytest.raises(PromptError, match=rf"fits about {fits:.1f} s\. Pass window='auto'"):
        pipe.generate(clip(fits + 20), max_new_tokens=32)
    with pytest.raises(PromptError, match="already fill the context"):
        pipe.generate(clip(1.0), "why? " * 9000, max_new_tokens=32)


def test_the_planned_context_caps_what_fits(tiny_bundle):
    small = Pipeline.load(tiny_bundle, device="cpu", decoder="q8_0", context=1024)
    assert small.decoder.context_limit == 1024
    assert 60 < small.max_audio_seconds(max_new_tokens=32) < 85
    with pytest.raises(PromptError, match=r"context \(1024\) fits about"):
        small.generate(clip(90.0), max_new_tokens=32)


def test_window_mode_on_audio_too_short_for_a_frame_is_the_same_error(tiny_bundle):
    pipe = Pipeline.load(tiny_bundle, device="cpu", decoder="q8_0")
    with pytest.raises(AudioError, match="at least 10 ms"):
        pipe.generate(clip(0.006), window="auto", max_new_tokens=4)


def test_an_hour_transcribes_in_windows_with_bounded_memory(tiny_bundle, tmp_path):
    path = tmp_path / "hour.flac"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as f:
        for minute in range(60):
            t = np.arange(16000 * 60) / 16000
            f.write((0.3 * np.sin(2 * np.pi * (200 + 5 * minute) * t) + 0.05 * rng.standard_normal(t.size)))
    code = (
        "import json, sys\n"
        "from runtime.pipeline import Pipeline\n"
        f"r = Pipeline.load({str(tiny_bundle)!r}, device='cpu', decoder='q8_0').generate("
        f"{str(path)!r}, window='auto', max_new_tokens=4, temperature=0)\n"
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(json.dumps({'windows': [w.to_dict() for w in r.windows], 'peak_kb': int(peak)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    starts = [w["start_s"] for w in result["windows"]]
    assert len(starts) == 129 and starts[-1] == 3584.0  # 30 s windows every 28 s
    # Measured 156 MB for the CLI run; the decoded hour alone would be 230 MB as float32.
    assert result["peak_kb"] < 400_000
