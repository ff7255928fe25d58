"""The messages the kernel itself delivers to actors, and the reply slot an ask waits on."""

from __future__ import annotations

import copy
from typing import Any, final

import attrs

from ._native import NativeEvent


@attrs.frozen
class TimerFired:
    """A volatile timer set with ``ActorContext.start_timer`` went off."""

    name: str


@attrs.frozen
class ReminderFired:
    """A durable reminder came due; ``missed`` counts ticks coalesced into this one."""

    name: str
    due: float
    missed: int = 0


@final
class ReplySlot:
    """Where the answer to one ask is left; the asker waits on it.

    If the asker gives up (cancelled, deadline passed), a late answer is dropped silently.
    ``event`` is an event of the running backend (``Native.event``).
    """

    __slots__ = ("_error", "_event", "_value")

    def __init__(self, event: NativeEvent) -> None:
        self._event = event
        self._value: Any = None
        self._error: BaseException | None = None

    def set(self, value: Any) -> None:
        """Answer with ``value``."""
        if not self._event.is_set():
            self._value = value
            self._event.set()

    def fail(self, error: BaseException) -> None:
        """Answer with an error, raised in the asker with ``error`` as its cause."""
        if not self._event.is_set():
            self._error = error
            self._event.set()

    async def wait(self) -> Any:
        """The answer; raises the error it failed with."""
        await self._event.wait()
        error = self._error
        if error is None:
            return self._value
        clone = reraisable(error)
        if clone is error:
            raise error
        raise clone from error


def reraisable(error: BaseException) -> BaseException:
    """A fresh copy of ``error`` to raise in the asker, so each side keeps its traceback."""
    try:
        clone = copy.copy(error)
    except Exception:
        return error
    clone.__traceback__ = None
    return clone
