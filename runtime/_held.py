"""``Held``: an awaitable run to its end in the current asyncio task, the task's
cancellation held off meanwhile.

On Trio a shielded cancel scope does this. On asyncio a host may cancel its own task
(``Task.cancel``) past any scope: the cancellation is delivered by cancelling the future the
task waits on. Here the task waits on a stand-in future instead, which the cancellation
cancels; the work's own future is left alone and waited for again. What ``asyncio.shield``
of a task of its own does, without the task (~9 µs a call here: three passes of the loop):
nothing unless the work suspends, then one pass more per wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Generator
from typing import Any, Generic, TypeVar, cast, final

T = TypeVar("T")


@final
class Held(Generic[T]):
    """``await Held(awaitable)``: its result (or error), with every cancellation of the task
    meanwhile caught and kept in ``cancelled`` (the first one) for the caller to deliver;
    ``cancel()`` cancels the work itself, as cancelling a shielded scope does on Trio."""

    __slots__ = ("_current", "_steps", "cancel_called", "cancelled")

    def __init__(self, awaitable: Awaitable[T]) -> None:
        self._steps = awaitable.__await__()
        self._current: asyncio.Future[Any] | None = None
        #: The first cancellation of the task while the work ran (``None``: none came).
        self.cancelled: asyncio.CancelledError | None = None
        #: Whether ``cancel`` was called.
        self.cancel_called = False

    def cancel(self) -> None:
        """Cancel the future the work waits on now (and so the work, unless it catches it)."""
        self.cancel_called = True
        if self._current is not None:
            self._current.cancel()

    def __await__(self) -> Generator[Any, None, T]:
        steps = self._steps
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                out = steps.send(value) if error is None else steps.throw(error)
            except StopIteration as done:
                return cast(T, done.value)
            value = error = None
            try:
                if asyncio.isfuture(out):
                    out._asyncio_future_blocking = False  # waited on here, as a task would
                    self._current = out
                    while not out.done():
                        try:
                            yield from _stand_in(out).__await__()
                        except asyncio.CancelledError as cancelled:
                            self.cancelled = self.cancelled or cancelled
                    self._current = None
                else:  # a bare yield (a pass of the loop) or, if not asyncio's, as it is
                    try:
                        value = yield out
                    except asyncio.CancelledError as cancelled:
                        self.cancelled = self.cancelled or cancelled
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as thrown:  # anything else thrown in is the work's
                error = thrown


def _stand_in(future: asyncio.Future[Any]) -> asyncio.Future[None]:
    """A future done when ``future`` is; cancelling it leaves ``future`` alone."""
    stand_in: asyncio.Future[None] = future.get_loop().create_future()

    def done(_: object) -> None:
        if not stand_in.done():
            stand_in.set_result(None)

    future.add_done_callback(done)
    return stand_in
