"""One generation as a job: asked on a worker thread, its events awaited on the event loop.

The worker sends Started once Pipeline.ask accepted the request (the audio fits, the options
are valid), then the pieces, then Finished or Failed; so a handler knows its status code before
it answers. cancel() from the event loop (the client left) stops the generation at its next
token, or skips it while it still waits in the queue.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Awaitable, Callable, Union

from runtime.answer import Piece, Result, Stream
from runtime.longform import window_size
from runtime.serve.clips import Clip
from runtime.serve.metrics import Metrics
from runtime.serve.stops import StopText

if TYPE_CHECKING:
    from runtime.pipeline import Pipeline

@dataclass(frozen=True)
class Ask:
    """What Pipeline.ask gets, plus the server's own stop strings."""

    clips: tuple[Clip, ...]
    question: str | None  # None: the bundle's default question (a transcription)
    options: dict = field(default_factory=dict)  # generation overrides, already validated
    window: str | None = None  # "auto": audio longer than one window goes in windows (transcriptions)
    stop: tuple[str, ...] = ()

    @property
    def audio_seconds(self) -> float:
        return sum(c.seconds for c in self.clips)


@dataclass(frozen=True)
class Started:
    pass


@dataclass(frozen=True)
class Finished:
    text: str  # the answer as streamed (stop strings cut)
    reasoning: str
    result: Result
    finish_reason: str  # OpenAI's: stop | length


@dataclass(frozen=True)
class Failed:
    error: BaseException


Event = Union[Started, Piece, Finished, Failed]
# OpenAI's finish reasons: a loop the guard stopped is a finished answer, not a truncated one
FINISH = {"stop": "stop", "loop": "stop", "length": "length", "cancelled": "cancelled"}


class Job:
    def __init__(self, ask: Ask, loop: asyncio.AbstractEventLoop):
        self.ask = ask
        self.submitted = time.perf_counter()
        self._loop = loop
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._lock = threading.Lock()
        self._cancelled = False
        self._stream: Stream | None = None

    # --- the event loop's side -------------------------------------------------------------------
    async def next(self) -> Event:
        return await self._events.get()

    def cancel(self) -> None:
        """Thread-safe; the generation stops at its next token, a queued job is skipped."""
        with self._lock:
            self._cancelled = True
            stream = self._stream
        if stream is not None:
            stream.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    # --- the worker's side -----------------------------------------------------------------------
    def run(self, pipe: Pipeline, loop_guard: bool, metrics: Metrics) -> None:
        a = self.ask
        try:
            stream = pipe.ask([c.samples for c in a.clips], a.question, reasoning=True, window=_window(pipe, a),
                              loop_guard=loop_guard, **a.options)
        except Exception as e:  # a user's mistake (MossError) or a fault: the handler tells them apart
            self._emit(Failed(e))
            return
        with self._lock:
            self._stream = stream
            cancelled = self._cancelled
        if cancelled:
            stream.cancel()
        self._emit(Started())
        metrics.audio_seconds.inc(a.audio_seconds)
        try:
            self._generate(stream, metrics)
        except Exception as e:
            self._emit(Failed(e))

    def _generate(self, stream: Stream, metrics: Metrics) -> None:
        stop = StopText(self.ask.stop)
        parts: dict[str, list[str]] = {"answer": [], "reasoning": []}
        stopped = False
        with stream:
            for piece in stream:
                text = piece
                if piece.kind == "answer":
                    text, stopped = stop.feed(piece)
                self._send(Piece(text, piece.kind), parts, metrics)
                if stopped:
                    break
            if not stopped:
                self._send(Piece(stop.flush(), "answer"), parts, metrics)
        result = stream.result
        reason = "stop" if stopped else result.finish_reason  # the runtime's: stop, length, loop, cancelled
        metrics.finished(result, reason)
        self._emit(Finished("".join(parts["answer"]), "".join(parts["reasoning"]), result, FINISH[reason]))

    def _send(self, piece: Piece, parts: dict[str, list[str]], metrics: Metrics) -> None:
        if not piece:
            return
        if not parts["answer"] and not parts["reasoning"]:
            metrics.ttft.observe(time.perf_counter() - self.submitted)
        parts[piece.kind].append(piece)
        self._emit(piece)

    def _emit(self, event: Event) -> None:
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:  # the event loop is closed: the server is stopping
            pass


def _window(pipe: Pipeline, ask: Ask) -> str | None:
    """"auto" only for audio longer than one window: the runtime answers a window whole, and one
    window is the whole clip anyway, so a short clip streams token by token."""
    if ask.window != "auto" or len(ask.clips) != 1:
        return ask.window
    question = pipe.manifest.prompt.default_question if ask.question is None else ask.question
    fits = pipe.max_audio_seconds(question, pipe.options(**ask.options).max_new_tokens)
    return None if ask.clips[0].seconds <= window_size("auto", fits) else "auto"


async def cancel_on_disconnect(receive: Callable[[], Awaitable[dict]], job: Job) -> None:
    """Run beside a handler once the body is read: the client leaving cancels the job."""
    while (await receive())["type"] != "http.disconnect":
        pass
    job.cancel()
