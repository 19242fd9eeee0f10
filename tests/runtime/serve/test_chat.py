"""How a chat request becomes one prompt: clips of every user message, the last user text."""

import base64

import pytest

from runtime.serve.chat import parse_chat
from runtime.serve.errors import ServeError


def audio(data: bytes = b"RIFF", fmt: str = "wav") -> dict:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode(), "format": fmt}}


def test_the_conversations_clips_and_the_last_question():
    req = parse_chat({"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [audio(b"one"), {"type": "text", "text": "What is said?"}]},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": [audio(b"two", "flac"), {"type": "text", "text": "And here?"}]},
    ], "max_completion_tokens": 9, "temperature": 0, "stop": "\n", "stream": True,
        "stream_options": {"include_usage": True}})
    assert [(data, where) for data, where in req.audio] == [
        (b"one", "messages[1].content[0].input_audio"), (b"two", "messages[3].content[0].input_audio")]
    assert req.question == "And here?" and req.stop == ("\n",) and req.stream and req.include_usage
    assert req.options == {"max_new_tokens": 9, "temperature": 0}


def test_audio_alone_asks_the_default_question_and_data_urls_work():
    url = "data:audio/wav;base64," + base64.b64encode(b"abc").decode()
    req = parse_chat({"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": url, "format": "wav"}}]}]})
    assert req.question is None and req.audio[0][0] == b"abc" and not req.stream


@pytest.mark.parametrize("body,param,words", [
    ({"messages": []}, "messages", "non-empty list"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role", "must be one of"),
    ({"messages": [{"role": "user", "content": [audio()]}, {"role": "assistant", "content": "x"}]}, "messages",
     "the last message must be the user's"),
    ({"messages": [{"role": "user", "content": [audio("x".encode(), "aac")]}]},
     "messages[0].content[0].input_audio.format", "must be one of wav, mp3, flac, ogg"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {
        "data": "not base64!", "format": "wav"}}]}]}, "messages[0].content[0].input_audio.data", "not base64"),
    ({"messages": [{"role": "user", "content": [audio()]}], "n": 2}, "n", "n must be 1"),
    ({"messages": [{"role": "user", "content": [audio()]}], "max_tokens": "9"}, "max_tokens", "whole number"),
    ({"messages": [{"role": "user", "content": [audio()]}], "temperature": True}, "temperature", "a number"),
    ({"messages": [{"role": "user", "content": [audio()]}], "stop": [1]}, "stop", "string or a list"),
    ({"messages": [{"role": "user", "content": [audio()]}], "stream": "yes"}, "stream", "true or false"),
])
def test_bad_fields_name_themselves(body, param, words):
    with pytest.raises(ServeError) as e:
        parse_chat(body)
    assert e.value.status == 400 and e.value.param == param and words in e.value.message
