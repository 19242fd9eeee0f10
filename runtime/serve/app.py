"""The ASGI app: routes, OpenAI-shaped errors, request counting, and the workers' lifetime.

/v1/* needs the API key when one is set; /, /health and /metrics do not (the page asks for
the key itself; /health and /metrics are for the machine's own supervisor).
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

from fastapi import Depends, FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response

from runtime.serve.chat import chat_completions
from runtime.serve.config import ServeConfig
from runtime.serve.errors import ServeError, error_body, internal_error
from runtime.serve.flow import Disconnected
from runtime.serve.metrics import CountRequests
from runtime.serve.page import page_html
from runtime.serve.server import Server
from runtime.serve.transcriptions import transcriptions

ROUTES = {"/", "/health", "/metrics", "/v1/models", "/v1/audio/transcriptions", "/v1/chat/completions"}
CLIENT_CLOSED = 499  # nginx's code: the client left before the answer; nobody reads it


def create_app(config: ServeConfig, on_ready: Callable[[], None] | None = None,
               on_failure: Callable[[BaseException], None] | None = None) -> FastAPI:
    """Load the manifest now (a wrong folder fails at once); the workers load when the app starts."""
    server = Server(config, on_ready, on_failure)
    created = int(time.time())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        server.pool.start()
        yield
        server.pool.close()

    app = FastAPI(title="MOSS-Audio", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.server = server
    app.add_middleware(CountRequests, metrics=server.metrics, routes=ROUTES)
    _install_error_handlers(app)

    def authorized(request: Request) -> None:
        server.api_key.check(request.headers.get("authorization"))

    v1 = [Depends(authorized)]

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html(), headers={"Cache-Control": "no-cache"})

    @app.get("/health")
    async def health() -> JSONResponse:
        if server.pool.failure is not None or not server.pool.ready:
            reason = "failed to load the bundle" if server.pool.failure is not None else "loading the bundle"
            return JSONResponse(error_body(503, f"not ready: {reason}"), status_code=503)
        return JSONResponse({"status": "ok", "model": config.model_id, "workers": config.workers})

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = server.metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/v1/models", dependencies=v1)
    async def models() -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": config.model_id, "object": "model",
                                                         "created": created, "owned_by": "moss-audio-edge"}]})

    @app.post("/v1/audio/transcriptions", dependencies=v1)
    async def transcribe(request: Request) -> Response:
        return await transcriptions(request, server)

    @app.post("/v1/chat/completions", dependencies=v1)
    async def chat(request: Request) -> Response:
        return await chat_completions(request, server)

    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServeError)
    async def serve_error(_request: Request, e: ServeError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, e: HTTPException) -> JSONResponse:
        message = {404: "no such route: see GET /v1/models, POST /v1/audio/transcriptions and "
                        "POST /v1/chat/completions", 405: "this route does not take that method"}.get(e.status_code,
                                                                                                    str(e.detail))
        return JSONResponse(error_body(e.status_code, message), status_code=e.status_code, headers=e.headers)

    @app.exception_handler(Disconnected)
    async def disconnected(_request: Request, _e: Disconnected) -> Response:
        return Response(status_code=CLIENT_CLOSED)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, _e: Exception) -> JSONResponse:
        err = internal_error()  # uvicorn logs the traceback; the client gets one line
        return JSONResponse(err.body(), status_code=err.status)
