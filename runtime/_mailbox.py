"""A bounded mailbox: a channel of the running backend that counts its depth and remembers its
peak."""

from __future__ import annotations

from typing import Generic, TypeVar, final

import anyio
import trio

from . import _native
from ._errors import MailboxFullError

T = TypeVar("T")
#: Each backend's "empty" or "full" (the Trio channel is used as it is, unwrapped).
_WOULD_BLOCK = (trio.WouldBlock, anyio.WouldBlock)


@final
class Mailbox(Generic[T]):
    """A first-in first-out queue of at most ``capacity`` items.

    ``put`` waits while the mailbox is full (backpressure); ``put_nowait`` raises
    ``MailboxFullError`` instead. The owner drains it with ``get`` and ``get_nowait``.
    """

    __slots__ = ("_receive", "_send", "capacity", "depth", "name", "peak")

    def __init__(self, capacity: int, name: str = "", native: _native.Native | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"a mailbox holds at least one message, not {capacity}")
        self._send: _native.SendSide[T]
        self._receive: _native.ReceiveSide[T]
        self._send, self._receive = (native or _native.current_native()).channel(capacity)
        self.capacity = capacity
        self.name = name
        self.depth = 0
        self.peak = 0

    def _added(self) -> None:
        self.depth += 1
        if self.depth > self.peak:
            self.peak = self.depth

    async def put(self, item: T) -> None:
        """Add ``item``, waiting while the mailbox is full."""
        # Counted before the wait: a sender blocked on a full mailbox is a message waiting, and
        # each receive pulls one such sender's item into the buffer, so drain() gets it too.
        self._added()
        try:
            await self._send.send(item)
        except trio.BrokenResourceError:
            self.depth -= 1
            raise anyio.BrokenResourceError from None
        except BaseException:
            self.depth -= 1
            raise

    def put_nowait(self, item: T) -> None:
        """Add ``item`` now, or raise ``MailboxFullError`` if the mailbox is full."""
        try:
            self._send.send_nowait(item)
        except _WOULD_BLOCK:
            raise MailboxFullError(
                f"the mailbox of {self.name or 'the actor'} is full ({self.capacity} messages)"
            ) from None
        except trio.BrokenResourceError:
            raise anyio.BrokenResourceError from None
        self._added()

    async def get(self) -> T:
        """The oldest item, waiting for one if the mailbox is empty."""
        try:
            item = await self._receive.receive()
        except trio.ClosedResourceError:
            raise anyio.ClosedResourceError from None
        self.depth -= 1
        return item

    def get_nowait(self) -> T:
        """The oldest item; ``anyio.WouldBlock`` if the mailbox is empty."""
        try:
            item = self._receive.receive_nowait()
        except _WOULD_BLOCK:
            raise anyio.WouldBlock from None
        self.depth -= 1
        return item

    def drain(self) -> list[T]:
        """Every item queued now, oldest first, leaving the mailbox empty."""
        # Take exactly what is counted: ending the loop on WouldBlock cost more than the
        # messages themselves (an exception per drain, on every turn of every actor).
        items: list[T] = []
        receive = self._receive.receive_nowait
        try:
            for _ in range(self.depth):
                items.append(receive())
        except _WOULD_BLOCK:
            pass
        self.depth -= len(items)
        return items

    def close(self) -> None:
        """Refuse further items: senders waiting for room get ``anyio.BrokenResourceError``."""
        self._receive.close()
