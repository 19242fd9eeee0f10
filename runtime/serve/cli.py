"""python -m runtime serve BUNDLE: an OpenAI-compatible HTTP server for the bundle.

  POST /v1/audio/transcriptions   multipart upload; json, text, verbose_json, srt, vtt; stream=true
  POST /v1/chat/completions       messages with text and input_audio parts; stream=true
  GET  /v1/models, /health, /metrics (Prometheus), /  (a page to try it)

Binds to 127.0.0.1 unless --host says otherwise. The bundle loads in the background: /health
answers 503 until it is ready. Needs the serve extra: pip install '.[serve]'.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from runtime.cli import Parser, add_generation_args, add_load_args, generation_overrides, load_options, run_guarded, say
from runtime.serve.config import API_KEY_ENV, DEFAULT_MAX_QUEUE, DEFAULT_MAX_UPLOAD_MB, DEFAULT_PORT, ServeConfig

GRACEFUL_SHUTDOWN_S = 5  # then answers still streaming are cancelled at their next token


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m runtime serve", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", type=Path)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--workers", type=int, default=1,
                   help="pipelines answering in parallel, each with its own memory (default 1)")
    p.add_argument("--max-queue", type=int, default=DEFAULT_MAX_QUEUE,
                   help=f"requests waiting per worker; more get 429 with Retry-After (default {DEFAULT_MAX_QUEUE})")
    p.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                   help=f"largest request body; larger get 413 (default {DEFAULT_MAX_UPLOAD_MB:g})")
    p.add_argument("--api-key", help=f"require 'Authorization: Bearer KEY' on /v1/* (default: ${API_KEY_ENV} "
                   "when set, else no key)")
    p.add_argument("--model-name", help="the model id /v1/models shows (default: the bundle folder's name)")
    add_generation_args(p, "defaults for requests that do not set them (else the bundle's generation_config)")
    add_load_args(p)
    p.add_argument("--no-loop-guard", action="store_true", help="let a generation that repeats itself run on")
    p.add_argument("--verbose", action="store_true", help="library logs and tracebacks")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_guarded(lambda: _run(args), args.verbose)


def _run(args: argparse.Namespace) -> int:
    from runtime.serve import create_app
    from runtime.serve.deps import require_serve

    require_serve()
    config = ServeConfig(args.bundle, host=args.host, port=args.port, workers=args.workers,
                         max_queue=args.max_queue, max_upload_mb=args.max_upload_mb,
                         api_key=args.api_key or os.environ.get(API_KEY_ENV) or None, model_name=args.model_name,
                         loop_guard=not args.no_loop_guard, generation=generation_overrides(args),
                         load=load_options(args), verbose=args.verbose)
    import uvicorn

    failures: list[BaseException] = []
    url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}"

    def failed(error: BaseException) -> None:
        failures.append(error)
        server.should_exit = True

    def ready() -> None:
        for note in app.state.server.pool.workers[0].pipeline.notes:  # why a GPU or an engine was not used
            say(f"note: {note}")
        say(f"ready: {config.model_id} on {url}")

    app = create_app(config, on_ready=ready, on_failure=failed)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info",
                                           timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S))
    say(f"loading {config.bundle} ({config.workers} worker{'s' * (config.workers > 1)}); "
        f"GET {url}/health answers 200 when ready")
    server.run()
    if failures:
        raise failures[0]
    return 0


if __name__ == "__main__":
    sys.exit(main())
