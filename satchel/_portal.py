"""Portals: how plain synchronous code (``satchel.sync``) calls the runtime in its event loop.

By default the loop is the caller's own: a private asyncio loop that runs in the calling
thread for the length of each call (``run_until_complete``), ~9 µs a call here. A hop to a
loop in another thread costs 150-200 µs a call on these machines, more than most operations.
Between calls that loop does not run, so work the runtime sets for later (idle passivation,
reminders, scheduled replays, batched observers) happens during the next call. A host that
needs it on time opens the runtime with ``background=True``: the loop then runs in a thread
of its own (AnyIO's blocking portal), and every call pays the hop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterable, AsyncIterator, Coroutine, Iterable, Iterator
from typing import Any, Protocol, TypeVar, cast, final

from anyio.from_thread import BlockingPortal

from satchel.runtime._errors import ForeignLoopError, RuntimeClosedError

T = TypeVar("T")


class Portal(Protocol):
    """Runs the runtime's coroutines for synchronous callers."""

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        """The result of ``call``, run in the runtime's loop."""
        ...

    def iterate(self, stream: AsyncIterator[bytes]) -> Iterator[bytes]:
        """``stream``, read piece by piece in the runtime's loop."""
        ...

    def feed(self, content: bytes | Iterable[bytes]) -> bytes | AsyncIterable[bytes]:
        """``content`` as the runtime takes it: bytes as they are, an iterable as a stream."""
        ...


async def _next(stream: AsyncIterator[bytes]) -> tuple[bool, bytes]:
    try:
        return True, await stream.__anext__()
    except StopAsyncIteration:
        return False, b""


async def _pieces(content: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in content:
        yield piece


def _fed(content: bytes | Iterable[bytes]) -> bytes | AsyncIterable[bytes]:
    if isinstance(content, bytes | bytearray | memoryview):
        return cast(bytes, content)  # the async API takes any buffer as bytes
    return _pieces(content)


def _iterate(portal: Portal, stream: AsyncIterator[bytes]) -> Iterator[bytes]:
    try:
        while True:
            more, piece = portal.run(_next(stream))
            if not more:
                return
            yield piece
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            portal.run(close())


@final
class LoopPortal:
    """The runtime's asyncio loop, run in the calling thread during each call."""

    __slots__ = ("_loop", "_thread", "closed")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.get_ident()
        self.closed = False

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        if threading.get_ident() != self._thread:
            call.close()
            raise ForeignLoopError(
                "this satchel.sync runtime is called from the thread that opened it only; "
                "open one per thread, or open it with background=True to call it from any"
            )
        if self._loop.is_running():
            call.close()
            raise ForeignLoopError(
                "this satchel.sync runtime was called from inside its own event loop (a hook "
                "or callback of the runtime); use the async API (await) there"
            )
        if self.closed:
            call.close()
            raise RuntimeClosedError("the runtime is closed")
        return self._loop.run_until_complete(call)

    def iterate(self, stream: AsyncIterator[bytes]) -> Iterator[bytes]:
        return _iterate(self, stream)

    def feed(self, content: bytes | Iterable[bytes]) -> bytes | AsyncIterable[bytes]:
        return _fed(content)


async def _await(call: Coroutine[Any, Any, T]) -> T:
    return await call


@final
class ThreadPortal:
    """The runtime's loop in a thread of its own; any thread may call."""

    __slots__ = ("_closed", "_lock", "_pending", "_portal", "loop")

    def __init__(self, portal: BlockingPortal, loop: asyncio.AbstractEventLoop) -> None:
        self._portal = portal
        #: The loop the runtime runs in.
        self.loop = loop
        self._lock = threading.Lock()
        self._closed = False
        self._pending: set[concurrent.futures.Future[Any]] = set()

    def close(self) -> None:
        """Refuse new work, then wait for the work started (the loop still runs): called
        before the runtime closes, so no work is handed to a loop that stopped (it would
        never run, and its caller never return)."""
        with self._lock:
            self._closed = True
            pending = list(self._pending)
        concurrent.futures.wait(pending)

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        try:
            result: T = self._portal.call(_await, call)
        except RuntimeError as error:
            call.close()
            if "not running" in str(error):
                raise RuntimeClosedError("the runtime is closed") from None
            raise
        return result

    def start(self, call: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """``call`` started in the runtime's loop, without blocking the caller; refused with
        ``RuntimeClosedError`` once ``close`` began (the loop runs until close returns)."""
        with self._lock:
            if self._closed:
                call.close()
                raise RuntimeClosedError("the runtime is closed")
            future = asyncio.run_coroutine_threadsafe(call, self.loop)
            self._pending.add(future)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def iterate(self, stream: AsyncIterator[bytes]) -> Iterator[bytes]:
        return _iterate(self, stream)

    def feed(self, content: bytes | Iterable[bytes]) -> bytes | AsyncIterable[bytes]:
        return _fed(content)
