"""``satchel.sync.open_runtime``: the runtime for plain synchronous code.

The Trio loop runs in a background thread; each method call blocks the caller until the
Trio side has answered.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trio

from satchel._portal import Proxy, is_async, with_keywords
from satchel._runtime import open_runtime as open_trio_runtime


class _ThreadPortal:
    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = token

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        target = with_keywords(fn, kwargs)
        if is_async(fn):
            return trio.from_thread.run(target, *args, trio_token=self._token)
        return trio.from_thread.run_sync(target, *args, trio_token=self._token)


class SyncProxy(Proxy):
    """A runtime object whose methods block until the Trio side answers."""

    __slots__ = ()

    def _method(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._wrap(self._portal.call(fn, *args, **kwargs))

        call.__doc__ = fn.__doc__
        return call


@contextmanager
def open_runtime(path: str | os.PathLike[str] | None = None, **options: Any) -> Iterator[Any]:
    """The runtime of ``satchel.open_runtime`` (same arguments), for synchronous code."""
    handoff: queue.Queue[tuple[Any, ...] | BaseException] = queue.Queue()
    failure: list[BaseException] = []

    async def main() -> None:
        try:
            async with open_trio_runtime(path, **options) as runtime:
                stop = trio.Event()
                handoff.put((runtime, stop, trio.lowlevel.current_trio_token()))
                await stop.wait()
        except BaseException as error:
            handoff.put(error)
            failure.append(error)

    thread = threading.Thread(target=trio.run, args=(main,), name="satchel-trio", daemon=True)
    thread.start()
    first = handoff.get()
    if isinstance(first, BaseException):
        thread.join()
        raise first
    runtime, stop, token = first
    try:
        yield SyncProxy(runtime, _ThreadPortal(token))
    finally:
        with contextlib.suppress(trio.RunFinishedError):  # the run may have died already
            trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join()
        if failure:
            raise failure[0]  # the body's own error, if any, stays as its __context__
