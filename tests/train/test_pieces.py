"""Texts, voices, clip composition, evaluation sets and scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from train.speech import SAMPLE_RATE
from tests.train.conftest import require_espeak
from train.score import Span, edits, normalize_text, parse_segments, summarize, timestamp_error
from train.tasks import compose, timestamp_answer
from runtime import DEMO_TEXT
from train.texts import LANGUAGES, is_demo, is_heldout, sentences
from train.voices import Voice


def test_training_and_heldout_texts_are_disjoint():
    for lang in LANGUAGES:
        train = {normalize_text(s.text) for s in sentences(0, lang, 400, heldout=False)}
        held = {normalize_text(s.text) for s in sentences(0, lang, 60, heldout=True)}
        assert not train & held
        assert all(not is_heldout(t) for t in train) and all(is_heldout(t) for t in held)


def test_demo_sentence_is_never_a_training_text():
    assert is_demo(DEMO_TEXT) and is_demo("the QUICK brown fox, jumps!")
    assert not any(is_demo(s.text) for s in sentences(0, "en", 2000, heldout=False))


def test_sentences_are_deterministic_per_seed():
    assert sentences(5, "de", 20, heldout=False) == sentences(5, "de", 20, heldout=False)
    assert sentences(5, "de", 20, heldout=False) != sentences(6, "de", 20, heldout=False)


def test_voice_parse():
    assert Voice.parse("en-us+f3:160:40") == Voice("en-us", "f3", 160, 40)
    assert Voice.parse("de").espeak_voice == "de"
    with pytest.raises(ValueError, match="SPEED"):
        Voice.parse("en-us:fast")


def _burst(seconds: float, lead: float, tail: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = 0.5 * np.sin(2 * np.pi * 200 * t).astype(np.float32)
    return np.concatenate([np.zeros(int(lead * SAMPLE_RATE), np.float32), tone,
                           np.zeros(int(tail * SAMPLE_RATE), np.float32)])


def test_compose_marks_speech_onsets_not_file_boundaries():
    rng = np.random.default_rng(0)
    samples, segs = compose([("One.", _burst(1.0, 0.3, 0.2)), ("Two.", _burst(0.5, 0.25, 0.4))], rng)
    assert [s.text for s in segs] == ["One.", "Two."]
    assert segs[0].end - segs[0].start == pytest.approx(1.0, abs=0.011)
    assert segs[1].end - segs[1].start == pytest.approx(0.5, abs=0.011)
    assert 0.3 - 0.01 <= segs[1].start - segs[0].end <= 1.0 + 0.01  # the pause drawn, not espeak's padding
    assert samples.size / SAMPLE_RATE > segs[1].end
    assert timestamp_answer(segs) == f"[{segs[0].start:.2f}]One.[{segs[0].end:.2f}][{segs[1].start:.2f}]Two.[{segs[1].end:.2f}]"


def test_parse_segments_and_timestamp_error():
    text = "[0.00]Hello there.[1.25][1.60]It is 7:30 [sharp].[3.05]"
    assert parse_segments(text) == [Span(0.0, 1.25, "Hello there."), Span(1.6, 3.05, "It is 7:30 [sharp].")]
    true = [Span(0.1, 1.2, "a"), Span(1.6, 3.0, "b")]
    err, n = timestamp_error(parse_segments(text), true, duration=4.0)
    assert n == 4 and err == pytest.approx(0.1 + 0.05 + 0.0 + 0.05)
    err, n = timestamp_error(parse_segments("[0.10]a[1.20]"), true, duration=4.0)  # one missing
    assert n == 4 and err == pytest.approx(8.0)
    err, n = timestamp_error([], true, duration=4.0)
    assert n == 4 and err == pytest.approx(16.0)


def test_summarize():
    items = [
        dict(task="transcribe", language="English", answer="The cat, sat.", prediction="the cat sat"),
        dict(task="transcribe", language="English", answer="A dog.", prediction="a dig"),
        dict(task="transcribe", language="German", answer="Ein Hund.", prediction="ein hund"),
        dict(task="language", language="German", answer="German", prediction="German"),
        dict(task="language", language="French", answer="French", prediction="Spanish"),
        dict(task="timestamps", language="English", answer="", prediction="[0.00]a b[1.00]", seconds=2.0,
             segments=[dict(start=0.2, end=1.0, text="a b")]),
    ]
    s = summarize(items)
    assert s["cer_en"] == pytest.approx(1 / (len("the cat sat") + len("a dog")))
    assert s["wer_en"] == pytest.approx(1 / 5)
    assert s["cer_all"] == pytest.approx(1 / (len("the cat sat") + len("a dog") + len("ein hund")))
    assert s["language_accuracy"] == 0.5
    assert s["timestamp_mae_s"] == pytest.approx(0.1) and s["timestamp_segment_count_accuracy"] == 1.0
    assert edits("Hello, World!", "hello world") == (0, 11, 0, 2)


def test_custom_evalset(tmp_path):
    require_espeak()
    import soundfile as sf

    from train.evalset import custom_items, read_evalset, read_sentences, write_evalset

    src = tmp_path / "s.txt"
    src.write_text("The sun is warm.\nWe eat bread.\nde\tDas ist gut.\n")
    items = custom_items(read_sentences(src), [Voice("en-us", "f4", 150, 60), Voice("de", "m6", 170, 40)])
    write_evalset(tmp_path / "set", items, None)
    lines = read_evalset(tmp_path / "set")
    assert {x["task"] for x in lines} == {"transcribe", "language", "timestamps"}
    assert len(lines) == 3 * 2 + 1
    for x in lines:
        samples, rate = sf.read(str(tmp_path / "set" / x["audio"]))
        assert rate == 16000 and samples.ndim == 1
        if x["task"] == "timestamps":
            assert parse_segments(x["answer"]) == [Span(s["start"], s["end"], s["text"]) for s in x["segments"]]
            assert x["voice"]["name"] == "en-us"
    with pytest.raises(ValueError, match="no voice given"):
        custom_items(read_sentences(src), [Voice("en-us")])
    assert json.loads(json.dumps(lines[0]))["question"] == "Transcribe the audio."


def test_training_items_are_the_recipes_own_clips_spread_over_them():
    from train.evalset import training_items

    voice = dict(name="en-us", variant="f4", speed=150, pitch=60)
    meta = [dict(lang="en" if k < 6 else "de", voice=dict(voice, speed=130 + k),
                 segments=[dict(start=0.2, end=1.0, text=f"text {k}")] * (2 if k % 4 == 3 else 1)) for k in range(10)]
    items = training_items(meta, 4)  # singles: 0 1 2 4 5 6 8 9
    assert [i.texts for i in items] == [("text 0",), ("text 2",), ("text 6",), ("text 9",)]
    assert [i.voice.speed for i in items] == [130, 132, 136, 139] and [i.lang for i in items] == ["en", "en", "de", "de"]
    assert {i.task for i in items} == {"transcribe"} and len({i.id for i in items}) == 4
    with pytest.raises(ValueError, match="8 single-sentence"):
        training_items(meta, 9)


def test_evalset_cli_training_set_takes_no_sentences_or_voices(tmp_path, capsys):
    from train.__main__ import main

    for other in (["--sentences", str(tmp_path / "s.txt")], ["--voices", "en-us+f4"]):
        assert main(["evalset", "--out", str(tmp_path / "x"), "--training", "3", *other]) == 2
        assert "drop --sentences and --voices" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_custom_items_do_not_depend_on_the_hash_seed():
    """The second set is rebuilt by every report: its clips (voices, augmentation seeds) must be the same."""
    import os
    import subprocess
    import sys

    code = ("from train.evalset import custom_items, read_sentences; from train.voices import Voice; "
            "from train.__main__ import SECOND_VOICES; from pathlib import Path; "
            "print(custom_items(read_sentences(Path('train/sets/second_set.txt')), "
            "[Voice.parse(v) for v in SECOND_VOICES.split(',')], seed=7))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")]
    assert runs[0] == runs[1] == runs[2] and "timestamps-" in runs[0]


def test_data_cache_key_follows_the_text_and_voice_generators(tmp_path, monkeypatch):
    from train import data, texts
    from train.data import DataConfig

    before = DataConfig().key()
    assert DataConfig().key() == before
    edited = tmp_path / "texts.py"
    edited.write_bytes(Path(texts.__file__).read_bytes() + b"\n# a changed word list\n")
    monkeypatch.setattr(data.texts, "__file__", str(edited))
    assert DataConfig().key() != before


def test_word_clips_are_one_to_three_words_added_after_every_other_clip():
    from dataclasses import replace

    from train.data import DataConfig, plan_jobs

    words = sentences(0, "fr", 200, heldout=False, kind="words")
    assert {len(normalize_text(s.text).split()) for s in words} == {1, 2, 3}
    assert not any(is_heldout(s.text) for s in words)
    cfg = DataConfig(single={"en": 5, "de": 3}, multi={"en": 2}, words={}, wide={})
    without, more = plan_jobs(cfg), plan_jobs(replace(cfg, words={"de": 4, "en": 2}))
    assert more[: len(without)] == without  # the other clips keep their texts and seeds
    assert [j.lang for j in more[len(without):]] == ["en", "en", "de", "de", "de", "de"]


def test_wide_clips_reach_past_the_common_words_and_come_last():
    from dataclasses import replace

    from train.data import DataConfig, plan_jobs
    from train.texts import common_words, wide_words

    common = set(common_words("en"))
    wide = sentences(0, "en", 300, heldout=False, kind="wide")
    counts = [len(normalize_text(s.text).split()) for s in wide]
    assert min(counts) == 2 and max(counts) == 7
    drawn = [w for s in wide for w in normalize_text(s.text).split()]
    rare = sum(w not in common for w in drawn) / len(drawn)
    # half the words come from past the common list: measured 0.513 over these 1315 words (binomial sd 0.014)
    assert 0.4 < rare < 0.6
    assert not any(is_heldout(s.text) for s in wide)
    assert not {"fucked", "whore", "raped"} & set(wide_words("en"))
    assert {"grape", "therapist", "jumps", "lazy"} <= set(wide_words("en"))  # roots, not substrings of words
    assert not common & set(wide_words("en"))
    cfg = DataConfig(single={"en": 5}, multi={}, words={"de": 2}, wide={})
    without, more = plan_jobs(cfg), plan_jobs(replace(cfg, wide={"en": 3}))
    assert more[: len(without)] == without
    assert [len(j.texts) for j in more[len(without):]] == [1, 1, 1]
    with pytest.raises(ValueError, match="English only"):
        plan_jobs(replace(cfg, wide={"de": 3}))


def _threads_in_worker() -> tuple[int, int]:
    import torch
    from threadpoolctl import threadpool_info

    return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), torch.get_num_threads()


def test_feature_workers_compute_on_one_thread():
    """Two workers each with OpenBLAS and torch threads of their own made a clip 2.6x slower (train/data.py)."""
    from multiprocessing import get_context

    import numpy as np

    from train.data import _worker_init

    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the parent as the recipe leaves it (threads=2), whatever ran before
    try:
        with threadpool_limits(2, user_api="blas"):
            np.ones((64, 64)) @ np.ones((64, 64))
            with get_context("fork").Pool(1, initializer=_worker_init) as pool:
                assert pool.apply(_threads_in_worker) == (1, 1)
    finally:
        torch.set_num_threads(before)
