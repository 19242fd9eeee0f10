"""An OpenAI-compatible HTTP server for a bundle: `python -m runtime serve BUNDLE` (the serve extra).

Apps on a device talk HTTP with the client libraries they already use: transcriptions, chat with
audio input, streamed as Server-Sent Events. fastapi, uvicorn and prometheus-client are imported
only here, and only when a server is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.serve.config import ServeConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServeConfig", "create_app"]


def create_app(config: ServeConfig, **hooks) -> "FastAPI":
    """The ASGI app (workers load the bundle in the background once it starts); see app.create_app."""
    from runtime.serve.deps import require_serve

    require_serve()
    from runtime.serve.app import create_app as create

    return create(config, **hooks)
