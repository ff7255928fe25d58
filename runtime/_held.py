"""``Held``: an awaitable run to its end in the current asyncio task, the task's
cancellation held off meanwhile.

On Trio a shielded cancel scope does this. On asyncio a host may cancel its own task
(``Task.cancel``) past any scope: the cancellation is delivered by cancelling the future the
task waits on. Here the task waits on a stand-in future instead, which the cancellation
cancels; the work's own future is left alone and waited for again. What ``asyncio.shield``
of a task of its own does, without the task (~9 µs a call here: three passes of the loop):
nothing unless the work suspends, then one pass more per wait.

An AnyIO scope around the task re-delivers its cancellation on every pass of the loop while
the task stays inside it: the caller puts the ``Held`` behind an AnyIO shield, so that only
native cancellations (``Task.cancel``, ``asyncio.timeout``) reach it. A cancellation meant for
a scope inside the work (``inner()`` says so) goes into the work, not held.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar, cast, final

T = TypeVar("T")


def _never() -> bool:
    return False


@final
class Held(Generic[T]):
    """``await Held(awaitable)``: its result (or error), with every cancellation of the task
    meanwhile caught and kept in ``cancelled`` (the first one) for the caller to deliver;
    ``cancel()`` cancels the work itself, as cancelling a shielded scope does on Trio.
    ``inner()``, asked when a cancellation arrives: whether it is meant for a scope inside
    the work (then it is thrown into the work)."""

    __slots__ = ("_current", "_cut_pending", "_inner", "_steps", "cancel_called", "cancelled")

    def __init__(self, awaitable: Awaitable[T], inner: Callable[[], bool] = _never) -> None:
        self._steps = awaitable.__await__()
        self._inner = inner
        self._current: asyncio.Future[Any] | None = None
        self._cut_pending = False
        #: The first cancellation of the task while the work ran (``None``: none came).
        self.cancelled: asyncio.CancelledError | None = None
        #: Whether ``cancel`` was called.
        self.cancel_called = False

    def cancel(self) -> None:
        """Cancel the future the work waits on now, or (between two waits) its next step:
        the work gets ``CancelledError`` unless it catches it."""
        self.cancel_called = True
        if self._current is None or not self._current.cancel():  # (done: it wakes the work)
            self._cut_pending = True

    def _keep(self, cancelled: asyncio.CancelledError) -> BaseException | None:
        """A cancellation caught while the work waits: kept, or (if meant for a scope inside
        the work) returned to be thrown into it."""
        if self._inner():
            return cancelled
        self.cancelled = self.cancelled or cancelled
        return None

    def __await__(self) -> Generator[Any, None, T]:
        steps = self._steps
        value: Any = None
        error: BaseException | None = None
        while True:
            if self._cut_pending and error is None:
                self._cut_pending = False
                error = asyncio.CancelledError()
            try:
                out = steps.send(value) if error is None else steps.throw(error)
            except StopIteration as done:
                return cast(T, done.value)
            value = error = None
            try:
                if asyncio.isfuture(out):
                    out._asyncio_future_blocking = False  # waited on here, as a task would
                    if self._cut_pending:
                        self._cut_pending = False
                        out.cancel()
                    self._current = out
                    try:
                        while not out.done():
                            try:
                                yield from _stand_in(out)
                            except asyncio.CancelledError as cancelled:
                                if self._keep(cancelled) is not None:
                                    # As a task's cancellation does: the awaited future is
                                    # cancelled with its message, and the work sees it.
                                    out.cancel(cancelled.args[0] if cancelled.args else None)
                    finally:
                        self._current = None
                else:  # a bare yield (a pass of the loop) or, if not asyncio's, as it is
                    try:
                        value = yield out
                    except asyncio.CancelledError as cancelled:
                        error = self._keep(cancelled)
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as thrown:  # anything else thrown in is the work's
                error = thrown


def _stand_in(future: asyncio.Future[Any]) -> Generator[Any, None, None]:
    """Wait until ``future`` is done, on a future of our own: cancelling the wait leaves
    ``future`` alone (and takes our callback off it)."""
    stand_in: asyncio.Future[None] = future.get_loop().create_future()

    def done(_: object) -> None:
        if not stand_in.done():
            stand_in.set_result(None)

    future.add_done_callback(done)
    try:
        yield from stand_in.__await__()
    finally:
        if not future.done():
            future.remove_done_callback(done)
