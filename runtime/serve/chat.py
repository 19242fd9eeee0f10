"""POST /v1/chat/completions: messages with `text` and `input_audio` parts, streamed or not.

The model's prompt is one user turn: every clip of the conversation's user messages, in order,
then the last user message's text (none: the bundle's default question, a transcription). So a
follow-up about the same audio sends the same clips again (decoded once, kept by content hash)
with a new question. System and earlier assistant text are not part of that prompt.
Thinking variants return their reasoning as `reasoning_content` beside `content`, as vLLM does.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runtime.answer import Piece
from runtime.serve.body import decode_base64, parse_json, read_body
from runtime.serve.errors import bad_request, from_exception
from runtime.serve.flow import Admitted, admit, collect, events, require_ready, require_room
from runtime.serve.jobs import Ask, Failed, Finished
from runtime.serve.sse import DONE, sse, sse_response

if TYPE_CHECKING:
    from runtime.serve.server import Server

AUDIO_FORMATS = ("wav", "mp3", "flac", "ogg")
ROLES = ("system", "developer", "user", "assistant")
# the runtime's option names -> this API's, so an error names the field the client sent
OPTION_NAMES = {"max_new_tokens": "max_tokens", "temperature": "temperature", "top_p": "top_p", "seed": "seed"}
# the runtime's advice in this API's terms (tests/runtime/serve keep it matching the runtime's words)
ADVICE = {"max_new_tokens": "max_tokens", "Pass window='auto' (CLI: --window auto) to process it in windows":
          "Send long audio to /v1/audio/transcriptions, which answers it in windows"}
AUDIO_PART_HELP = ('{"type": "input_audio", "input_audio": {"data": <base64 of the file>, "format": '
                   '"wav" | "mp3" | "flac" | "ogg"}}')


@dataclass(frozen=True)
class ChatRequest:
    audio: tuple[tuple[bytes, str], ...]  # (file bytes, the field that held them)
    question: str | None
    options: dict
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool


def parse_chat(body: dict) -> ChatRequest:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages must be a non-empty list of {role, content}", "messages")
    audio: list[tuple[bytes, str]] = []
    question: str | None = None
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise bad_request(f"{param}.role must be one of {', '.join(ROLES)}", f"{param}.role")
        texts, clips = _content(message.get("content"), f"{param}.content")
        if role == "user":
            audio += clips
            question = "\n".join(texts) or None
    if messages[-1]["role"] != "user":
        raise bad_request("the last message must be the user's (role 'user'): the model answers it", "messages")
    if not audio:
        raise bad_request(f"no audio in the messages: add a content part {AUDIO_PART_HELP} to a user message; "
                          "MOSS-Audio answers questions about audio", "messages")
    if body.get("n") not in (None, 1):
        raise bad_request("n must be 1: this server makes one answer per request", "n")
    stream_options = body.get("stream_options") or {}
    return ChatRequest(tuple(audio), question, _options(body), _stops(body.get("stop")),
                       _flag(body, "stream"), bool(isinstance(stream_options, dict) and stream_options.get("include_usage")))


def _content(content: Any, param: str) -> tuple[list[str], list[tuple[bytes, str]]]:
    if content is None:
        return [], []
    if isinstance(content, str):
        return [content], []
    if not isinstance(content, list):
        raise bad_request(f"{param} must be text or a list of content parts", param)
    texts, clips = [], []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "input_audio" and isinstance(part.get("input_audio"), dict):
            clips.append(_audio(part["input_audio"], f"{where}.input_audio"))
        elif kind in ("text", "input_audio"):
            raise bad_request(f"{where} is a {kind} part without its {kind!r} field", where)
        else:
            raise bad_request(f"{where}.type {kind!r} is not supported: send 'text' parts and {AUDIO_PART_HELP}",
                              f"{where}.type")
    return texts, clips


def _audio(part: dict, param: str) -> tuple[bytes, str]:
    if part.get("format") not in AUDIO_FORMATS:
        raise bad_request(f"{param}.format must be one of {', '.join(AUDIO_FORMATS)}, got {part.get('format')!r}",
                          f"{param}.format")
    if not isinstance(part.get("data"), str):
        raise bad_request(f"{param}.data must be the audio file's bytes in base64", f"{param}.data")
    return decode_base64(part["data"], f"{param}.data"), param


def _options(body: dict) -> dict:
    """OpenAI's fields as the runtime's generation options; ranges are checked by the runtime."""
    options = {}
    tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    fields = {"max_new_tokens": (tokens, int), "temperature": (body.get("temperature"), float),
              "top_p": (body.get("top_p"), float), "seed": (body.get("seed"), int)}
    for name, (value, kind) in fields.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
            raise bad_request(f"{OPTION_NAMES[name]} must be a {'number' if kind is float else 'whole number'}, "
                              f"got {value!r}", OPTION_NAMES[name])
        options[name] = value
    return options


def _stops(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return tuple(stop)
    raise bad_request("stop must be a string or a list of strings", "stop")


def _flag(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise bad_request(f"{name} must be true or false", name)
    return value


@dataclass(frozen=True)
class Reply:
    """The envelope every chunk and completion of one answer shares."""

    id: str
    created: int
    model: str

    @classmethod
    def new(cls, model: str) -> "Reply":
        return cls(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), model)

    def completion(self, done: Finished) -> dict:
        message = {"role": "assistant", "content": done.text, "reasoning_content": done.reasoning or None}
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": done.finish_reason}],
                "usage": usage(done)}

    def chunk(self, delta: dict, finish_reason: str | None = None) -> dict:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}


def usage(done: Finished) -> dict:
    prompt, completion = len(done.result.prompt_token_ids), len(done.result.token_ids)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def chat_completions(request: Request, server: "Server") -> Response:
    require_ready(server.pool)
    body = await read_body(request, server.config.max_upload_bytes)
    require_room(server.pool)
    req = parse_chat(parse_json(body))
    options = {**server.config.generation, **req.options}
    server.check_options(options, ADVICE)
    clips = await server.decode(req.audio)
    admitted = await admit(server.pool, Ask(clips, req.question, options, stop=req.stop), request.receive, ADVICE)
    reply = Reply.new(server.config.model_id)
    if req.stream:
        return sse_response(_stream(admitted, reply, req.include_usage))
    return JSONResponse(reply.completion(await collect(admitted)))


async def _stream(admitted: Admitted, reply: Reply, include_usage: bool) -> AsyncIterator[bytes]:
    yield sse(reply.chunk({"role": "assistant", "content": ""}))
    async for event in events(admitted):
        if isinstance(event, Piece):
            yield sse(reply.chunk({"content" if event.kind == "answer" else "reasoning_content": str(event)}))
        elif isinstance(event, Finished):
            yield sse(reply.chunk({}, event.finish_reason))
            if include_usage:
                yield sse({**reply.chunk({}), "choices": [], "usage": usage(event)})
        elif isinstance(event, Failed):
            yield sse(from_exception(event.error, admitted.words).body())
    yield DONE
