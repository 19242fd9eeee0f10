"""What /metrics shows (Prometheus text format): requests by status, queue depth, time to first
token, decode speed, audio processed, and why generations ended."""

from __future__ import annotations

from typing import Awaitable, Callable

from runtime.answer import Result

# Buckets span the tiny test model (ms, thousands of tok/s) and a 4B on 2 CPU cores (seconds, ~7 tok/s).
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
RATE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = r = CollectorRegistry()  # one per app: tests may make several
        self.requests = Counter("moss_requests", "HTTP requests answered, by route and status", ["route", "status"],
                                registry=r)
        self.queue_depth = Gauge("moss_queue_depth", "requests waiting for a worker", registry=r)
        self.ttft = Histogram("moss_time_to_first_token_seconds", "from admission (queue wait included) to the "
                              "first streamed text", buckets=TTFT_BUCKETS, registry=r)
        self.decode_rate = Histogram("moss_decode_tokens_per_second", "decode speed of each generation",
                                     buckets=RATE_BUCKETS, registry=r)
        self.audio_seconds = Counter("moss_audio_seconds", "seconds of audio processed", registry=r)
        self.completion_tokens = Counter("moss_completion_tokens", "tokens generated", registry=r)
        self.generations = Counter("moss_generations", "generations ended, by the runtime's finish reason (stop, "
                                   "length, loop, cancelled: the client left)", ["finish_reason"], registry=r)

    def finished(self, result: Result, finish_reason: str) -> None:
        self.generations.labels(finish_reason).inc()
        self.completion_tokens.inc(len(result.token_ids))
        if result.timings.decode_tokens:
            self.decode_rate.observe(result.timings.decode_tok_s)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class CountRequests:
    """ASGI middleware: every answered request by route (known paths only) and status."""

    def __init__(self, app: Callable[..., Awaitable[None]], metrics: Metrics, routes: set[str]):
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in self.routes else "other"
        status = [500]

        async def counted(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            self.metrics.requests.labels(route, str(status[0])).inc()
