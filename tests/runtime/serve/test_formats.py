from runtime.answer import Result, Window
from runtime.segments import Segment
from runtime.serve.formats import srt, transcript_segments, vtt
from runtime.serve.jobs import Finished


def test_srt_and_vtt_clocks():
    segments = [Segment(0.0, 2.5, "Hello."), Segment(3599.9995, 3723.25, "Later.")]
    assert srt(segments) == ("1\n00:00:00,000 --> 00:00:02,500\nHello.\n\n"
                             "2\n01:00:00,000 --> 01:02:03,250\nLater.\n\n")
    assert vtt(segments) == ("WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello.\n\n"
                             "01:00:00.000 --> 01:02:03.250\nLater.\n\n")


def test_segments_from_timestamps_else_windows_else_the_clip():
    timed = Result(text="[0.00]Hello.[1.50][2.00]Bye.[3.00]")
    assert transcript_segments(Finished(timed.text, "", timed, "stop"), 4.0) == [
        Segment(0.0, 1.5, "Hello."), Segment(2.0, 3.0, "Bye.")]
    windowed = Result(text="one two", windows=[Window(0.0, 30.0, "one"), Window(28.0, 12.0, "two")])
    assert transcript_segments(Finished(windowed.text, "", windowed, "stop"), 40.0) == [
        Segment(0.0, 30.0, "one"), Segment(28.0, 40.0, "two")]
    plain = Result(text="just words")
    assert transcript_segments(Finished(" just words", "", plain, "stop"), 2.0) == [Segment(0.0, 2.0, "just words")]
    assert transcript_segments(Finished("", "", Result(), "stop"), 2.0) == []
