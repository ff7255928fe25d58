"""How a session actor's journaled writes reach the store.

In ``process`` durability a write goes to the store at once. In ``machine`` durability the
writes of a turn are held and, at the end of the turn, written with a group commit (one
fsync for the writes of many sessions); the turn's reply waits for it. A write that moves
blob references (``write`` given) is written at once, synced by the store's default, with
any write of the turn still held going first in the same batch so that the journal stays
in order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, final

from satchel.storage import Batch, GroupCommit, RecordStore

#: A journal event to publish once its write is durable: seq, time (µs), kind, data.
Event = tuple[int, int, str, dict[str, Any]]


@final
class TurnWrites:
    """The journaled writes of one session actor (see the module docstring)."""

    __slots__ = ("_batch", "_events", "_group", "_publish", "_records", "holding", "rollback")

    def __init__(
        self,
        records: RecordStore,
        group: GroupCommit | None,
        publish: Callable[[Event], Awaitable[None]],
    ) -> None:
        self._records = records
        self._group = group
        self._publish = publish
        self._batch: Batch | None = None
        self._events: list[Event] = []
        #: What the actor held before the held writes (set while any are held).
        self.rollback: Any = None
        #: Whether writes of this turn wait for ``settle`` (an attribute, not a property:
        #: every turn looks at it).
        self.holding = False

    async def write(
        self,
        batch: Batch,
        event: Event,
        rollback: Any,
        write: Callable[[Batch], Awaitable[None]] | None = None,
    ) -> None:
        """Write ``batch`` (or hold it to the end of the turn); ``rollback`` is the actor's
        state before it, restored if the held writes fail."""
        if self._batch is None and (self._group is None or write is not None):
            await (write or self._records.write)(batch)  # the common case: nothing held, write now
            await self._publish(event)
            return
        if self._group is not None and write is None:
            if self._batch is None:
                self._batch, self.rollback = batch, rollback
                self.holding = True
            else:
                self._batch.extend(batch)
            self._events.append(event)
            return
        if self._batch is not None:
            self._batch.extend(batch)
            batch, self._batch = self._batch, None
            self.holding = False
        await (write or self._records.write)(batch)
        events, self._events = [*self._events, event], []
        for done in events:
            await self._publish(done)

    async def settle(self) -> None:
        """Write what the turn holds with a group, and publish its events once it is on
        stable storage; ``StoreWriteFailedError`` if the group failed (nothing written)."""
        batch, self._batch = self._batch, None
        events, self._events = self._events, []
        self.holding = False
        if batch is None:
            return
        assert self._group is not None
        await self._group.write(batch)
        for done in events:
            await self._publish(done)
