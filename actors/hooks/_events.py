"""Live events: every journal entry, as it is written, to the subscribers that want it.

Each session has a correlation id, recorded in its first journal entry when it is created: a
root's own id, a child's parent's, a fork's origin's, so a whole tree of sessions and their
forks share one, and it never changes (also when sessions above are deleted). Events
carry it, with the entry's cause (the entry in this or another session that led to it).

Publishing never blocks a writer: each subscriber has a bounded buffer, and an event that
does not fit is dropped and counted on that subscriber (``dropped``), which can then read the
timeline to catch up.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import anyio
import anyio.lowlevel
import attrs

from satchel.runtime._errors import InvalidArgumentError, ValidationError
from satchel.storage import RecordReads

from .. import _validate as validate
from ..sessions import _session_layout as layout
from ..sessions._session_records import SessionRecords


@attrs.frozen
class Event:
    """One journal entry as it was written."""

    session_id: str
    correlation_id: str
    seq: int
    at: datetime
    kind: str
    data: dict[str, Any]
    cause: dict[str, Any] | None = None


class Subscription:
    """An async iterator of the events a subscriber asked for."""

    def __init__(self, session_id: str | None, kinds: frozenset[str] | None, buffer: int) -> None:
        self.session_id = session_id
        self.kinds = kinds
        self.dropped = 0
        self._buffer = buffer
        self._events: collections.deque[Event] = collections.deque()
        self._arrived: anyio.Event | None = None  # readers waiting share it
        self._closed = False

    def wants(self, session_id: str, kind: str) -> bool:
        """Whether this subscriber follows ``kind`` events of ``session_id``."""
        return (self.session_id is None or self.session_id == session_id) and (
            self.kinds is None or kind in self.kinds
        )

    def offer(self, event: Event) -> None:
        """Hand over ``event`` if it fits; count it as dropped if not."""
        if len(self._events) >= self._buffer:
            self.dropped += 1
            return
        self._events.append(event)
        if self._arrived is not None:
            self._arrived.set()

    def close(self) -> None:
        """No more events: a reader finishes once it has read those already handed over."""
        self._closed = True
        if self._arrived is not None:
            self._arrived.set()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        if self._events:
            await anyio.lowlevel.checkpoint()
        while not self._events:
            if self._closed:
                raise StopAsyncIteration
            if self._arrived is None or self._arrived.is_set():
                self._arrived = anyio.Event()
            await self._arrived.wait()
        return self._events.popleft()


class EventBus:
    """The subscribers of one runtime."""

    def __init__(self, records: RecordReads) -> None:
        self._records = records
        self._subscribers: list[Subscription] = []
        #: Whether anyone listens (writers check this before building an event).
        self.active = False
        self._correlations: dict[str, str] = {}
        #: On a cluster node: told of every entry written here (for the other nodes).
        self._relay: Callable[[str, int], None] | None = None

    def relay_to(self, relay: Callable[[str, int], None]) -> None:
        """Tell ``relay`` the session and position of every entry published from now on
        (a cluster node passes them on to the other nodes)."""
        self._relay = relay
        self.active = True

    def wants(self, session_id: str) -> bool:
        """Whether a subscriber here follows ``session_id`` (or every session)."""
        return any(s.session_id in (None, session_id) for s in self._subscribers)

    @asynccontextmanager
    async def subscribe(
        self,
        *,
        session_id: str | None = None,
        kinds: Iterable[str] | None = None,
        buffer: int = 1024,
    ) -> AsyncIterator[Subscription]:
        """Follow events live, of one session or all, of some kinds or all."""
        if session_id is not None:
            session_id = validate.session_id(session_id)[0]
        if type(buffer) is not int or buffer < 1:
            raise ValidationError(f"buffer must be a positive integer, not {buffer!r}")
        if isinstance(kinds, str):
            raise InvalidArgumentError(f"kinds must be a list of kinds, not the text {kinds!r}")
        wanted = None if kinds is None else frozenset(kinds)
        subscription = Subscription(session_id, wanted, buffer)
        self._subscribers.append(subscription)
        self.active = True
        try:
            await anyio.lowlevel.checkpoint()
            yield subscription
        finally:
            self._subscribers.remove(subscription)
            self.active = bool(self._subscribers) or self._relay is not None
            subscription.close()

    async def publish(
        self,
        session_id: str,
        seq: int,
        at_us: int,
        kind: str,
        data: dict[str, Any],
        cause: dict[str, Any] | None = None,
    ) -> None:
        """Offer one written entry to the subscribers that want it."""
        if self._relay is not None:
            self._relay(session_id, seq)
        await self.deliver(session_id, seq, at_us, kind, data, cause)

    async def deliver(
        self,
        session_id: str,
        seq: int,
        at_us: int,
        kind: str,
        data: dict[str, Any],
        cause: dict[str, Any] | None = None,
    ) -> None:
        """Offer one entry to the subscribers here that want it (an entry another node wrote
        comes in this way)."""
        event = None
        for subscription in self._subscribers:
            if subscription.wants(session_id, kind):
                if event is None:
                    event = Event(
                        session_id,
                        await self.correlation_of(session_id),
                        seq,
                        validate.stored_datetime(at_us, "a journal entry"),
                        kind,
                        data,
                        cause,
                    )
                subscription.offer(event)

    def forget(self, session_id: str) -> None:
        """Drop what is remembered of a deleted session (its id may name a new one: a key)."""
        self._correlations.pop(session_id, None)

    async def correlation_of(self, session_id: str) -> str:
        """The id of the session's root (parents and fork origins followed up)."""
        known = self._correlations.get(session_id)
        if known is None:
            known = await correlation_of(self._records, session_id)
            if len(self._correlations) > 100_000:
                self._correlations.clear()
            self._correlations[session_id] = known
        return known


async def correlation_of(records: RecordReads, session_id: str) -> str:
    """The correlation id the session's first journal entry recorded when it was created
    (its own id if it recorded none, or is gone)."""
    first = await SessionRecords(records).journal(layout.bytes_of(session_id), 1, 1)
    if not first or first[0][0] != 1:
        return session_id
    _, at_us, kind, data, cause = first[0]
    layout.check_entry(at_us, kind, data, cause)  # a damaged entry: IntegrityError
    found = data.get("correlation_id")
    return found if isinstance(found, str) else session_id
