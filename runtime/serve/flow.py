"""A request's life on the event loop: admitted to a worker's queue, its first event awaited
(so the status code is known before anything is sent), then streamed or collected.

A client that leaves cancels its job: before streaming, a watcher on the ASGI receive channel
sees the disconnect; while streaming, Starlette's response does and closes our generator.
"""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable, Iterator

from runtime.serve.errors import ServeError, from_exception
from runtime.serve.jobs import Ask, Event, Failed, Finished, Job, cancel_on_disconnect
from runtime.serve.workers import QueueFull, WorkerPool

NOT_READY_RETRY_S = 5


class Disconnected(Exception):
    """The client left before its answer was ready: nobody to answer."""


@dataclass
class Admitted:
    job: Job
    watcher: asyncio.Task
    words: dict[str, str]  # the runtime's advice in this API's terms, for error messages


def require_ready(pool: WorkerPool) -> None:
    if pool.failure is not None:
        raise ServeError(503, "the bundle failed to load; the server log says why")
    if not pool.ready:
        raise ServeError(503, "the model is still loading; retry when GET /health answers 200",
                         headers={"Retry-After": str(NOT_READY_RETRY_S)})


@contextmanager
def busy_is_429() -> Iterator[None]:
    try:
        yield
    except QueueFull as e:
        raise ServeError(429, f"the server is busy: {e}", code="rate_limit_exceeded",
                         headers={"Retry-After": str(e.retry_after_s)}) from None


def require_room(pool: WorkerPool) -> None:
    """Before the request's audio is decoded: a request that would be refused costs nothing more."""
    with busy_is_429():
        pool.check_room()


async def admit(pool: WorkerPool, ask: Ask, receive: Callable[[], Awaitable[dict]],
                words: dict[str, str] | None = None) -> Admitted:
    """Queue the ask and wait until its worker accepted it (Started) or refused it (an error)."""
    job = Job(ask, asyncio.get_running_loop())
    with busy_is_429():
        pool.submit(job)
    admitted = Admitted(job, asyncio.ensure_future(cancel_on_disconnect(receive, job)), words or {})
    try:
        first = await _unless_gone(job.next(), admitted)
    except BaseException:
        _end(admitted)
        raise
    if isinstance(first, Failed):
        _end(admitted)
        raise from_exception(first.error, admitted.words)
    return admitted


async def collect(admitted: Admitted) -> Finished:
    """The whole answer (a non-streamed response)."""

    async def drain() -> Event:
        while not isinstance(event := await admitted.job.next(), (Finished, Failed)):
            pass
        return event

    try:
        last = await _unless_gone(drain(), admitted)
    finally:
        _end(admitted)
    if isinstance(last, Failed):
        raise from_exception(last.error, admitted.words)
    return last


async def events(admitted: Admitted) -> AsyncIterator[Event]:
    """Pieces, then Finished or Failed (a streamed response; Starlette watches the disconnect)."""
    admitted.watcher.cancel()
    try:
        while True:
            event = await admitted.job.next()
            yield event
            if isinstance(event, (Finished, Failed)):
                return
    finally:
        admitted.job.cancel()


async def _unless_gone(awaitable: Awaitable[Event], admitted: Admitted) -> Event:
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task, admitted.watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the server is stopping
        task.cancel()
        raise
    if task in done:
        return task.result()
    task.cancel()
    raise Disconnected


def _end(admitted: Admitted) -> None:
    admitted.watcher.cancel()
    admitted.job.cancel()  # a finished job ignores it; a running one stops at its next token
