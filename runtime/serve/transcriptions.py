"""POST /v1/audio/transcriptions: a multipart upload (`file`, `model`, `prompt`, `temperature`,
`response_format`, `stream`, `language`), answered as OpenAI's API does.

`prompt` is the question when given (default: the bundle's, a transcription); long files are
windowed as the runtime's window="auto" does; temperature defaults to 0, as OpenAI's does.
The length of each answer is the server's --max-new-tokens, else the bundle's.
`stream=true` sends `transcript.text.delta` events and one `transcript.text.done`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, AsyncIterator

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from runtime.answer import Piece
from runtime.serve.body import parse_form, read_body
from runtime.serve.errors import bad_request, from_exception
from runtime.serve.flow import Admitted, admit, collect, events, require_ready, require_room
from runtime.serve.formats import RESPONSE_FORMATS, STREAMABLE, transcript
from runtime.serve.jobs import Ask, Failed, Finished
from runtime.serve.sse import sse, sse_response

if TYPE_CHECKING:
    from runtime.serve.server import Server


TEMPERATURE = 0.0  # OpenAI's default for transcriptions (the server's --temperature, when given, instead)


@dataclass(frozen=True)
class TranscriptionRequest:
    audio: bytes
    question: str | None
    options: dict  # the client's temperature, when it sent one
    response_format: str
    stream: bool
    language: str | None


async def parse_transcription(form: FormData) -> TranscriptionRequest:
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise bad_request("the audio goes in the multipart field 'file' (curl -F file=@clip.wav)", "file")
    fmt = _text(form, "response_format") or "json"
    if fmt not in RESPONSE_FORMATS:
        raise bad_request(f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, got {fmt!r}",
                          "response_format")
    stream = (_text(form, "stream") or "false").lower()
    if stream not in ("true", "false"):
        raise bad_request(f"stream must be true or false, got {stream!r}", "stream")
    if stream == "true" and fmt not in STREAMABLE:
        raise bad_request(f"a stream sends text events: use response_format json or text with stream=true, or "
                          f"stream=false for {fmt}", "response_format")
    return TranscriptionRequest(await upload.read(), _text(form, "prompt") or None, _temperature(form), fmt,
                                stream == "true", _text(form, "language") or None)


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if isinstance(value, UploadFile):
        raise bad_request(f"{name} must be a text field, not a file", name)
    return value


def _temperature(form: FormData) -> dict:
    text = _text(form, "temperature")
    if text is None or text == "":
        return {}
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise bad_request(f"temperature must be a number, got {text!r}", "temperature")
    return {"temperature": value}


async def transcriptions(request: Request, server: "Server") -> Response:
    require_ready(server.pool)
    body = await read_body(request, server.config.max_upload_bytes)
    require_room(server.pool)
    form = await parse_form(request.headers, body)
    try:
        req = await parse_transcription(form)
    finally:
        await form.close()
    options = {"temperature": TEMPERATURE, **server.config.generation, **req.options}
    server.check_options(options)
    clips = await server.decode([(req.audio, "file")])
    admitted = await admit(server.pool, Ask(clips, req.question, options, window="auto"), request.receive)
    if req.stream:
        return sse_response(_stream(admitted, clips[0].seconds))
    return transcript(req.response_format, await collect(admitted), clips[0].seconds, req.language)


async def _stream(admitted: Admitted, duration_s: float) -> AsyncIterator[bytes]:
    async for event in events(admitted):
        if isinstance(event, Piece) and event.kind == "answer":
            yield sse({"type": "transcript.text.delta", "delta": str(event)})
        elif isinstance(event, Finished):
            yield sse({"type": "transcript.text.done", "text": event.text.strip(),
                       "usage": {"type": "duration", "seconds": round(duration_s, 3)}})
        elif isinstance(event, Failed):
            yield sse(from_exception(event.error).body())
