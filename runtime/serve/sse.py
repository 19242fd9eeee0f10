"""Server-Sent Events as OpenAI sends them: `data: <json>` blocks, chat ending in `data: [DONE]`."""

from __future__ import annotations

import json
from typing import AsyncIterator

from starlette.responses import StreamingResponse

DONE = b"data: [DONE]\n\n"


def sse(data: dict) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n\n"


def sse_response(body: AsyncIterator[bytes]) -> StreamingResponse:
    # no-cache and no proxy buffering: each event reaches the client when it is made
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
