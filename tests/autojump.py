"""An asyncio event loop whose clock jumps ahead whenever every task waits, as Trio's
``MockClock(autojump_threshold=0)`` does, so tests with timeouts never sleep in real time."""

from __future__ import annotations

import asyncio
import selectors
from typing import Any


class _JumpingSelector:
    """A selector that, asked to wait with nothing ready, moves the loop's clock instead."""

    def __init__(self, loop_clock: list[float]) -> None:
        self._inner = selectors.DefaultSelector()
        self._jumped = loop_clock

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None or timeout <= 0:
            # No timer is due: only I/O (a worker thread's answer) can wake the loop.
            return self._inner.select(timeout)
        ready = self._inner.select(0)
        if not ready:
            self._jumped[0] += timeout
        return ready

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class AutojumpLoop(asyncio.SelectorEventLoop):
    """A selector loop on a virtual clock that moves only by jumps (real time does not move
    it, as with Trio's ``MockClock`` at rate 0)."""

    def __init__(self) -> None:
        self._jumped = [0.0]
        super().__init__(selector=_JumpingSelector(self._jumped))  # type: ignore[arg-type]
        self._start = super().time()

    def time(self) -> float:
        return self._start + self._jumped[0]
