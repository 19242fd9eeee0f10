"""Prompt ids against hand-worked cases; the tokenizer is the synthetic checkpoint's."""

import numpy as np
import pytest

from runtime.audio import load_audio
from runtime.chunks import audio_token_count
from runtime.errors import AudioError, PromptError
from runtime.mel import n_frames
from runtime.prompt import TokenIds, audio_span_ids, build_prompt, chat_texts

A = -1  # stands for the audio id in the hand-worked spans below
IDS = TokenIds(audio=A, audio_start=-2, audio_end=-3, eos=(-4,), digits=tuple(range(100, 110)))


def tokens_for_seconds(seconds: float) -> int:
    return audio_token_count(n_frames(int(round(seconds * 16000))))


def test_zero_seconds_is_rejected_before_any_prompt():
    with pytest.raises(AudioError, match="no samples"):
        load_audio(np.zeros(0, dtype=np.float32))
    with pytest.raises(AudioError, match="at least 10 ms"):
        load_audio(np.zeros(159, dtype=np.float32))
    with pytest.raises(PromptError, match="too short"):
        build_prompt(lambda s: [], IDS, [0], "q")


def test_1_9_seconds_has_no_marker():
    # 30400 samples -> 190 frames -> ceil(190/8) = 24 tokens = 1.92 s < 2 s
    assert tokens_for_seconds(1.9) == 24
    assert audio_span_ids(24, IDS) == [A] * 24


def test_2_0_seconds_ends_with_the_marker_2():
    # 200 frames -> 25 tokens = exactly 2 s: upstream inserts "2" after the 25th token
    assert tokens_for_seconds(2.0) == 25
    assert audio_span_ids(25, IDS) == [A] * 25 + [102]


def test_10_seconds_has_markers_up_to_two_digit_10():
    assert tokens_for_seconds(10.0) == 125
    expected = []
    for second in (2, 4, 6, 8):
        expected += [A] * 25 + [100 + second]
    expected += [A] * 25 + [101, 100]  # "10" as the digits 1, 0
    assert audio_span_ids(125, IDS) == expected


def test_21_seconds_ends_with_the_tokens_after_the_last_marker():
    # 2100 frames: 5 chunks of 400 (50 tokens each) + 100 frames (13 tokens) = 263 = 21.04 s
    assert tokens_for_seconds(21.0) == 263
    span = audio_span_ids(263, IDS)
    markers = [t for t in span if t != A]
    assert markers == [102, 104, 106, 108, 101, 100, 101, 102, 101, 104, 101, 106, 101, 108, 102, 100]
    assert span[-13:] == [A] * 13 and span[-14] == 100  # "20" then the remaining 13 tokens
    assert span.count(A) == 263


def test_time_markers_can_be_switched_off():
    assert audio_span_ids(263, IDS, time_markers=False) == [A] * 263


def test_prompt_template_and_rows(tiny_reference):
    ckpt = tiny_reference.ckpt
    ids = ckpt.token_ids
    prompt = build_prompt(ckpt.tokenize, ids, [25, 3], "What is said?")
    head, middle, tail = chat_texts("What is said?", 2)
    expected = (ckpt.tokenize(head) + [ids.audio_start] + [ids.audio] * 25 + [ids.digits[2]] + [ids.audio_end]
                + [ids.audio_start] + [ids.audio] * 3 + [ids.audio_end] + ckpt.tokenize(tail))
    assert middle == ""
    assert prompt.ids.tolist() == expected
    rows = prompt.audio_rows
    assert rows[prompt.ids == ids.audio].tolist() == list(range(28))  # clip 2 continues the row count
    assert (rows[prompt.ids != ids.audio] == -1).all()
    assert head.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert tail == "\nWhat is said?<|im_end|>\n<|im_start|>assistant\n"


def test_no_audio_is_an_error():
    with pytest.raises(PromptError, match="at least one clip"):
        build_prompt(lambda s: [], IDS, [], "q")
