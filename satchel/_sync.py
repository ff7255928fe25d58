"""``satchel.sync.open_runtime``: the runtime for plain synchronous code (see ``_portal``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from anyio.from_thread import start_blocking_portal

from satchel._portal import LoopPortal, ThreadPortal
from satchel._runtime import Runtime
from satchel._runtime import open_runtime as open_async_runtime
from satchel._sync_api import SyncRuntime


@contextmanager
def open_runtime(
    path: str | os.PathLike[str] | None = None, *, background: bool = False, **options: Any
) -> Iterator[SyncRuntime]:
    """The runtime of ``satchel.open_runtime`` (same arguments), with blocking methods.

    Each call runs the runtime's event loop in the calling thread, which alone may use it;
    between calls nothing runs. With ``background=True`` the loop runs in a thread of its own
    (timers fire on time, any thread may call), and each call costs a hop to that thread.
    """
    if background:
        with (
            start_blocking_portal("asyncio") as blocking,
            blocking.wrap_async_context_manager(open_async_runtime(path, **options)) as rt,
        ):
            loop = blocking.call(asyncio.get_running_loop)
            thread_portal = ThreadPortal(blocking, loop)
            try:
                yield SyncRuntime(rt, thread_portal)
            finally:
                thread_portal.close()
        return
    loop = asyncio.new_event_loop()
    portal = LoopPortal(loop)
    try:
        with _held_open(loop, path, options) as rt:
            yield SyncRuntime(rt, portal)
    finally:
        portal.closed = True
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


@contextmanager
def _held_open(
    loop: asyncio.AbstractEventLoop, path: str | os.PathLike[str] | None, options: dict[str, Any]
) -> Iterator[Runtime]:
    """The runtime opened in a task of ``loop`` that keeps it open until this exits."""
    opened: asyncio.Future[Runtime] = loop.create_future()
    stop = asyncio.Event()

    async def hold() -> None:
        async with open_async_runtime(path, **options) as rt:
            opened.set_result(rt)
            await stop.wait()

    async def first() -> Runtime:
        waiting: list[asyncio.Future[Any]] = [opened, holder]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not opened.done():
            holder.result()  # raises why the runtime did not open
        return opened.result()

    holder = loop.create_task(hold())
    rt = loop.run_until_complete(first())
    try:
        yield rt
    finally:
        stop.set()
        loop.run_until_complete(holder)


def background_runtime(rt: SyncRuntime) -> tuple[Runtime, ThreadPortal] | None:
    """The async runtime behind ``rt`` and the portal to its loop, where that loop runs in
    a thread of its own (``background=True``): code making several calls an operation (a
    framework adapter) can run them all there in one hop, and wait there as async code does.
    ``None`` where the loop runs in the caller's thread, call by call."""
    portal = rt._portal
    if isinstance(portal, ThreadPortal):
        return rt._target, portal
    return None
