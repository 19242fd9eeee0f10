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


def test_speakers_in_srt_vtt_and_verbose_json():
    import json

    from runtime.serve.formats import transcript

    text = "[0.48][S01]Good morning.[1.66][2.10][S02]Let us begin.[4.02]"
    segments = Result(text=text).segments
    assert srt(segments).split("\n")[2] == "[S01] Good morning."
    assert vtt(segments).split("\n\n")[2] == "00:00:02.100 --> 00:00:04.020\n<v S02>Let us begin."
    body = json.loads(transcript("verbose_json", Finished(text, "", Result(text=text), "stop"), 5.0, None).body)
    assert [(s["speaker"], s["start"], s["text"]) for s in body["segments"]] == [
        ("S01", 0.48, "Good morning."), ("S02", 2.1, "Let us begin.")]
    assert "notes" not in body


def test_verbose_json_carries_the_notes():
    import json

    from runtime.serve.formats import transcript

    note = "answered in windows of 40 s (one pass fits 30 s here): speaker labels restart in each window"
    result = Result(text="[0.00][S01]Hi.[1.00]", notes=[note])
    body = json.loads(transcript("verbose_json", Finished(result.text, "", result, "stop"), 90.0, None).body)
    assert body["notes"] == [note]


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
