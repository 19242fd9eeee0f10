"""The official openai client against a live server, as an app would use it (tiny random model:
answers are noise, the plumbing is real; temperature 0 makes them comparable)."""

from __future__ import annotations

import json
import re
import time

import httpx
import openai
import pytest

from tests.runtime.serve.conftest import MAX_UPLOAD_MB, audio_part, metric, user, wav_bytes

GREEDY = dict(temperature=0, max_tokens=24)


def transcribe(client, data: bytes, **kw):
    return client.audio.transcriptions.create(model="whisper-1", file=("clip.wav", data), **kw)


def test_models_and_health(client, server):
    assert [m.id for m in client.models.list().data] == ["moss-audio-tiny"]
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok", "model": "moss-audio-tiny", "workers": 1}


def test_transcription_in_every_format_is_the_same_answer(client):
    data = wav_bytes(2.0, seed=1)
    text = transcribe(client, data).text
    assert text and text == transcribe(client, data, response_format="text").rstrip("\n")
    verbose = transcribe(client, data, response_format="verbose_json")
    assert verbose.text == text and verbose.duration == 2.0
    segments = [(s.start, s.end, s.text) for s in verbose.segments]
    assert segments == [(0.0, 2.0, text)]  # no timestamps in a random model's answer: one window, the clip
    assert transcribe(client, data, response_format="srt") == f"1\n00:00:00,000 --> 00:00:02,000\n{text}\n\n"
    assert transcribe(client, data, response_format="vtt") == f"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n{text}\n\n"


def test_the_prompt_field_is_the_question(client):
    data = wav_bytes(2.0, seed=1)
    assert transcribe(client, data, prompt="Which language is spoken?").text != transcribe(client, data).text


def test_streamed_transcription_adds_up_to_the_whole(client):
    data = wav_bytes(2.0, seed=1)
    events = list(transcribe(client, data, stream=True))
    deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
    assert len(deltas) > 1, "streamed token by token, not in one piece"
    assert [e.type for e in events[len(deltas):]] == ["transcript.text.done"]
    assert events[-1].text == "".join(deltas).strip() == transcribe(client, data).text


def test_long_audio_is_windowed_with_a_segment_per_window(client):
    """70 s > the 30 s window: three windows (0, 28, 56 s), as the runtime's window='auto'."""
    data = wav_bytes(70.0, seed=2, fmt="FLAC")  # 70 s of WAV would pass the 2 MB limit
    verbose = client.audio.transcriptions.create(model="whisper-1", file=("long.flac", data),
                                                 response_format="verbose_json")
    assert verbose.duration == 70.0
    assert [s.start for s in verbose.segments] == [0.0, 28.0, 56.0] and verbose.segments[-1].end == 70.0


def test_chat_streamed_equals_not_streamed(client):
    messages = user(audio_part(wav_bytes(2.0)), "What is said?")
    whole = client.chat.completions.create(model="m", messages=messages, **GREEDY)
    chunks = list(client.chat.completions.create(model="m", messages=messages, stream=True,
                                                 stream_options={"include_usage": True}, **GREEDY))
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content and streamed
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason == "length"
    assert chunks[-1].usage == whole.usage and whole.usage.completion_tokens == GREEDY["max_tokens"]
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens


def test_two_clips_in_one_message(client):
    one = client.chat.completions.create(model="m", messages=user(audio_part(wav_bytes(1.0)), "Which is louder?"),
                                         **GREEDY)
    two = client.chat.completions.create(
        model="m", messages=user(audio_part(wav_bytes(1.0)), audio_part(wav_bytes(1.5, seed=3, fmt="FLAC"), "flac"),
                                 "Which is louder?"), **GREEDY)
    # a 1.5 s clip adds its span (19 audio tokens) and its <|audio_bos|>/<|audio_eos|> pair to the prompt
    assert two.usage.prompt_tokens - one.usage.prompt_tokens == 19 + 2


def test_a_follow_up_asks_about_the_conversations_audio(client):
    clip = audio_part(wav_bytes(2.0))
    first = client.chat.completions.create(model="m", messages=user(clip, "What is said?"), **GREEDY)
    follow_up = [*user(clip, "What is said?"), {"role": "assistant", "content": first.choices[0].message.content},
                 {"role": "user", "content": "Which language is it?"}]
    direct = client.chat.completions.create(model="m", messages=user(clip, "Which language is it?"), **GREEDY)
    again = client.chat.completions.create(model="m", messages=follow_up, **GREEDY)
    assert again.choices[0].message.content == direct.choices[0].message.content


def test_stop_strings_end_the_answer_before_them(client):
    messages = user(audio_part(wav_bytes(2.0)), "What is said?")
    whole = client.chat.completions.create(model="m", messages=messages, **GREEDY).choices[0].message.content
    stop = whole[5:8]
    cut = client.chat.completions.create(model="m", messages=messages, stop=[stop], **GREEDY).choices[0]
    assert cut.message.content == whole[: whole.index(stop)] and cut.finish_reason == "stop"
    streamed = list(client.chat.completions.create(model="m", messages=messages, stop=stop, stream=True, **GREEDY))
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == cut.message.content


@pytest.mark.parametrize("call,status,exception,words", [
    (lambda c: transcribe(c, b"\x01" * 999), 400, openai.BadRequestError, "cannot decode the audio in 'file'"),
    (lambda c: transcribe(c, wav_bytes(0.005)), 400, openai.BadRequestError, "at least 10 ms"),
    (lambda c: transcribe(c, wav_bytes(1.0), response_format="docx"), 400, openai.BadRequestError,
     "response_format must be one of"),
    (lambda c: c.chat.completions.create(model="m", messages=user("hi")), 400, openai.BadRequestError,
     "no audio in the messages"),
    (lambda c: c.chat.completions.create(model="m", messages=user(audio_part(wav_bytes(1.0)), "hi"), top_p=3),
     400, openai.BadRequestError, "top_p must be in (0, 1]"),
    (lambda c: c.chat.completions.create(model="m", messages=user(audio_part(wav_bytes(1.0))), max_tokens=0),
     400, openai.BadRequestError, "max_tokens must be at least 1"),
    (lambda c: c.chat.completions.create(model="m", messages=user(
        {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}})), 400, openai.BadRequestError,
     "'image_url' is not supported"),
    (lambda c: transcribe(c, b"\0" * (MAX_UPLOAD_MB * 2**20 + 1)), 413, openai.APIStatusError, "--max-upload-mb"),
    # 8000 of the tiny model's 8192 positions kept for the answer leave room for ~11 s of audio
    (lambda c: c.chat.completions.create(model="m", messages=user(audio_part(wav_bytes(20.0))), max_tokens=8000),
     400, openai.BadRequestError, "or lower max_tokens"),
    (lambda c: c.chat.completions.create(model="m", messages=user(audio_part(wav_bytes(20.0))), max_tokens=8000),
     400, openai.BadRequestError, "Send long audio to /v1/audio/transcriptions"),
])
def test_errors_surface_as_the_clients_exceptions(client, call, status, exception, words):
    with pytest.raises(exception) as raised:
        call(client)
    e = raised.value
    assert e.status_code == status and words in e.body["message"], e.body
    assert set(e.body) == {"message", "type", "param", "code"} and "Traceback" not in e.response.text


def test_a_missing_or_wrong_key_is_401(server):
    from openai import OpenAI

    for key in ("wrong-key", ""):
        bad = OpenAI(base_url=server.v1, api_key=key or "unused", max_retries=0,
                     default_headers={} if key else {"Authorization": ""})
        with pytest.raises(openai.AuthenticationError) as e:
            bad.models.list()
        assert e.value.status_code == 401 and e.value.body["code"] == "invalid_api_key"
    assert httpx.get(f"{server.url}/health").status_code == 200  # health and metrics need no key


def test_a_client_that_leaves_stops_its_generation(server, client):
    """The same request run to its end makes `full` tokens; abandoned after a few chunks, the
    generation ends as cancelled having made far fewer (it stops at its next token)."""
    messages = user(audio_part(wav_bytes(2.0, seed=5)), "What is said?")
    full = client.chat.completions.create(model="m", messages=messages, temperature=0, max_tokens=2000).usage
    cancelled = metric(server, 'moss_generations_total{finish_reason="cancelled"}')
    tokens = metric(server, "moss_completion_tokens_total")
    body = {"model": "m", "messages": messages, "temperature": 0, "max_tokens": 2000, "stream": True}
    headers = {"Authorization": f"Bearer {server.key}"}
    with httpx.stream("POST", f"{server.v1}/chat/completions", json=body, headers=headers, timeout=60) as r:
        received = 0
        for line in r.iter_lines():
            received += line.startswith("data: {")
            if received == 4:
                break
    for _ in range(200):  # the server notices the closed connection at once; allow 10 s on a busy machine
        if metric(server, 'moss_generations_total{finish_reason="cancelled"}') > cancelled:
            break
        time.sleep(0.05)
    made = metric(server, "moss_completion_tokens_total") - tokens
    assert metric(server, 'moss_generations_total{finish_reason="cancelled"}') == cancelled + 1
    assert made < full.completion_tokens / 2, (made, full.completion_tokens)


def test_metrics_count_requests_by_status(server, client):
    before = metric(server, 'moss_requests_total{route="/v1/chat/completions",status="400"}')
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m", messages=user("no audio"))
    text = httpx.get(f"{server.url}/metrics").text
    assert metric(server, 'moss_requests_total{route="/v1/chat/completions",status="400"}') == before + 1
    for name in ("moss_queue_depth", "moss_time_to_first_token_seconds_count", "moss_decode_tokens_per_second_count",
                 "moss_audio_seconds_total"):
        assert re.search(rf"^{name} ", text, re.M), name
    assert metric(server, "moss_audio_seconds_total") > 0 and metric(server, "moss_time_to_first_token_seconds_count") > 0


def test_no_request_can_name_a_file_on_the_server(server):
    """Audio comes only as bytes: a path or URL where audio is expected is refused, never opened."""
    headers = {"Authorization": f"Bearer {server.key}"}
    for data in ("/etc/passwd", "file:///etc/passwd"):
        part = {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}
        r = httpx.post(f"{server.v1}/chat/completions", json={"model": "m", "messages": user(part)}, headers=headers)
        assert r.status_code == 400 and "not base64" in r.json()["error"]["message"]
    for form in (dict(data={"file": "/etc/passwd"}),  # urlencoded
                 dict(data={"file": "/etc/passwd"}, files={"model": (None, "m")})):  # multipart, file as text
        r = httpx.post(f"{server.v1}/audio/transcriptions", headers=headers, **form)
        assert r.status_code == 400 and json.loads(r.text)["error"]["param"] == "file"
