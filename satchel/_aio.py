"""``satchel.aio.open_runtime``: the runtime inside a running asyncio loop.

Trio runs as a guest on the asyncio loop (``trio.lowlevel.start_guest_run``): one thread,
no locks. Every method of the runtime becomes an awaitable; cancelling the awaiting asyncio
task cancels the call on the Trio side.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import outcome
import trio

from satchel._errors import RuntimeClosedError
from satchel._portal import Proxy, is_async, with_keywords
from satchel._runtime import open_runtime as open_trio_runtime


class _GuestPortal:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, token: trio.lowlevel.TrioToken, calls: trio.Nursery
    ) -> None:
        self._loop = loop
        self._token = token
        self._calls = calls

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self._loop.create_future()
        target = with_keywords(fn, kwargs)
        scope = trio.CancelScope()

        def closed() -> None:
            if not future.done():
                future.set_exception(RuntimeClosedError("the runtime closed before this call ran"))

        async def run() -> None:
            try:
                with scope:
                    result = await target(*args) if is_async(fn) else target(*args)
                    if not future.done():
                        future.set_result(result)
            except Exception as error:
                if not future.done():
                    future.set_exception(error)
            finally:
                closed()  # cancelled by the runtime closing (an asyncio cancel is done already)

        def start() -> None:
            try:
                self._calls.start_soon(run)
            except RuntimeError:  # the call nursery has closed: the runtime is closing
                closed()

        def cancel_if_abandoned(done: asyncio.Future[Any]) -> None:
            if done.cancelled():
                with contextlib.suppress(trio.RunFinishedError):
                    self._token.run_sync_soon(scope.cancel)

        future.add_done_callback(cancel_if_abandoned)
        try:
            self._token.run_sync_soon(start)
        except trio.RunFinishedError:
            closed()
        return future


class AioProxy(Proxy):
    """A runtime object whose methods are awaitables for asyncio code."""

    __slots__ = ()

    def _method(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            return self._wrap(await self._portal.call(fn, *args, **kwargs))

        call.__doc__ = fn.__doc__
        return call


@asynccontextmanager
async def open_runtime(
    path: str | os.PathLike[str] | None = None, **options: Any
) -> AsyncIterator[Any]:
    """The runtime of ``satchel.open_runtime`` (same arguments), for asyncio code."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[tuple[Any, ...]] = loop.create_future()
    finished: asyncio.Future[outcome.Outcome[None]] = loop.create_future()

    async def main() -> None:
        async with open_trio_runtime(path, **options) as runtime, trio.open_nursery() as calls:
            stop = trio.Event()
            ready.set_result((runtime, calls, stop, trio.lowlevel.current_trio_token()))
            await stop.wait()
            calls.cancel_scope.cancel()

    trio.lowlevel.start_guest_run(
        main,
        run_sync_soon_threadsafe=loop.call_soon_threadsafe,
        done_callback=finished.set_result,
        host_uses_signal_set_wakeup_fd=True,
    )
    started: list[asyncio.Future[Any]] = [ready, finished]
    await asyncio.wait(started, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        (await finished).unwrap()
    runtime, calls, stop, token = ready.result()
    try:
        yield AioProxy(runtime, _GuestPortal(loop, token, calls))
    finally:
        token.run_sync_soon(stop.set)
        (await finished).unwrap()
