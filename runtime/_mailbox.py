"""A bounded mailbox: a channel of the running backend that counts its depth and remembers its
peak."""

from __future__ import annotations

from typing import Generic, TypeVar, final

import anyio

from satchel._errors import MailboxFullError

from . import _native

T = TypeVar("T")


@final
class Mailbox(Generic[T]):
    """A first-in first-out queue of at most ``capacity`` items.

    ``put`` waits while the mailbox is full (backpressure); ``put_nowait`` raises
    ``MailboxFullError`` instead. The owner drains it with ``get`` and ``get_nowait``.
    """

    __slots__ = ("_channel", "capacity", "depth", "name", "peak")

    def __init__(self, capacity: int, name: str = "", native: _native.Native | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"a mailbox holds at least one message, not {capacity}")
        channel: _native.Channel[T] = (native or _native.current_native()).channel(capacity)
        self._channel = channel
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
            await self._channel.send(item)
        except BaseException:
            self.depth -= 1
            raise

    def put_nowait(self, item: T) -> None:
        """Add ``item`` now, or raise ``MailboxFullError`` if the mailbox is full."""
        try:
            self._channel.send_nowait(item)
        except anyio.WouldBlock:
            raise MailboxFullError(
                f"the mailbox of {self.name or 'the actor'} is full ({self.capacity} messages)"
            ) from None
        self._added()

    async def get(self) -> T:
        """The oldest item, waiting for one if the mailbox is empty."""
        item = await self._channel.receive()
        self.depth -= 1
        return item

    def get_nowait(self) -> T:
        """The oldest item; ``anyio.WouldBlock`` if the mailbox is empty."""
        item = self._channel.receive_nowait()
        self.depth -= 1
        return item

    def drain(self) -> list[T]:
        """Every item queued now, oldest first, leaving the mailbox empty."""
        # Take exactly what is counted: ending the loop on WouldBlock cost more than the
        # messages themselves (an exception per drain, on every turn of every actor).
        items: list[T] = []
        receive = self._channel.receive_nowait
        try:
            for _ in range(self.depth):
                items.append(receive())
        except anyio.WouldBlock:
            pass
        self.depth -= len(items)
        return items

    def close(self) -> None:
        """Refuse further items: senders waiting for room get ``anyio.BrokenResourceError``."""
        self._channel.close()
