"""Request bodies: read into memory up to the size limit (413 beyond it, before any decoding),
then parsed as JSON or as a multipart form whose file stays in memory."""

from __future__ import annotations

import base64
import binascii
import json
from typing import AsyncIterator

from starlette.datastructures import FormData, Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from runtime.serve.errors import ServeError, bad_request

MAX_FORM_FIELDS = 16  # the transcription form has 8; more is not a client of ours


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to pass `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(limit: int) -> ServeError:
    return ServeError(413, f"the request is larger than this server takes ({limit / 2**20:g} MB): send shorter or "
                      "compressed audio (flac, ogg, mp3), or start the server with a larger --max-upload-mb",
                      code="request_too_large")


def parse_json(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad_request(f"the body is not JSON ({e}); send Content-Type: application/json") from None
    if not isinstance(data, dict):
        raise bad_request("the body must be a JSON object")
    return data


async def parse_form(headers: Headers, body: bytes) -> FormData:
    """A multipart/form-data body already in memory; its file parts stay in memory too."""
    if not headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise bad_request("send multipart/form-data with the audio in the field 'file' (curl -F file=@clip.wav)", "file")

    async def whole() -> AsyncIterator[bytes]:
        yield body

    parser = MultiPartParser(headers, whole(), max_files=1, max_fields=MAX_FORM_FIELDS)
    parser.spool_max_size = len(body) + 1  # never rolled over to a temporary file
    try:
        return await parser.parse()
    except MultiPartException as e:
        raise bad_request(f"the multipart form is malformed: {e.message}") from None


def decode_base64(data: str, param: str) -> bytes:
    """Plain base64, or a data: URL of it as browsers make."""
    if data.startswith("data:") and "," in data:
        data = data.split(",", 1)[1]
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{param} is not base64: encode the audio file's bytes with base64", param) from None
