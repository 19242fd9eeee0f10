"""Scores against the truth, worked by hand."""

import json

import pytest

from quant.evalset import EvalItem, load_evalset, score, timestamp_error
from runtime.errors import OptionsError
from runtime.segments import Segment


def item(task, answer, language="English", segments=()):
    return EvalItem("x", None, task, "q", answer, language, tuple(segments))


def test_transcription_language_and_timestamps():
    items = [item("transcribe", "The cat sat."), item("transcribe", "Hello world"),
             item("transcribe", "Bonjour", language="French"),
             item("language", "German", language="German"), item("language", "English"),
             item("timestamps", "", segments=[Segment(0.0, 1.0, "a"), Segment(1.5, 3.0, "b")])]
    answers = ["the cat sat", "hello word", "nonsense", "german", "French", "[0.10]a[1.00][1.40]b[3.20]"]
    s = score(items, answers, [2.0, 2.0, 2.0, 2.0, 2.0, 4.0])
    assert s.cer == pytest.approx(1 / (11 + 11))  # "the cat sat" exact, "hello world" -> "hello word": 1 edit
    assert s.wer == pytest.approx(1 / 5)
    assert s.language_accuracy == 0.5
    assert s.timestamp_mae_s == pytest.approx((0.1 + 0.0 + 0.1 + 0.2) / 4)
    assert s.counts == {"transcribe_en": 2, "language": 2, "timestamps": 1}


def test_a_missing_segment_costs_the_clip_length_per_boundary():
    true = [Segment(0.0, 1.0, "a"), Segment(1.5, 3.0, "b")]
    assert timestamp_error([Segment(0.0, 1.0, "a")], true, 4.0) == (8.0, 4)
    assert timestamp_error([], true, 4.0) == (16.0, 4)


def test_the_folder_is_checked(tmp_path):
    with pytest.raises(OptionsError, match="no eval.jsonl"):
        load_evalset(tmp_path)
    (tmp_path / "eval.jsonl").write_text(json.dumps({"id": "1", "audio": "a.flac", "task": "sing", "question": "q",
                                                     "answer": "a"}) + "\n")
    with pytest.raises(OptionsError, match="task 'sing'"):
        load_evalset(tmp_path)
