"""Live events across the nodes of a cluster: a subscriber on any node sees the entries
written on every node.

Each node tells the others of the entries it writes (session and position) by PostgreSQL
notices, a few hundred per notice, sent off the writers' path. A node with a subscriber that
follows a session named in a notice reads that entry from the journal and offers it to its
subscribers. Notices are live only: a node that was not listening when one was sent (starting,
or its connection broken) does not see it; as for a subscriber whose buffer was full, the
timeline has every entry.
"""

from __future__ import annotations

import logging
from typing import final

import anyio

from satchel.runtime._errors import IntegrityError
from satchel.storage import RecordReads
from satchel.storage._pg_notices import MAX_NOTICE, PostgresNotices

from ..hooks._events import EventBus
from ..sessions import _session_layout as layout

log = logging.getLogger("satchel.cluster")

#: How long the sender waits for more entries before sending what it has.
_GATHER_S = 0.01
#: How long a listener whose connection broke waits before listening again.
_RELISTEN_S = 1.0


@final
class ClusterEvents:
    """Passes this node's entries on to the other nodes, and theirs to its subscribers."""

    def __init__(
        self, notices: PostgresNotices, bus: EventBus, records: RecordReads, holder: str
    ) -> None:
        self._notices = notices
        self._bus = bus
        self._records = records
        self._holder = holder
        self._pending: list[str] = []
        self._wake = anyio.Event()
        #: Entries of other nodes offered to subscribers here.
        self.received = 0
        #: Set while the node listens to the other nodes.
        self.listening = anyio.Event()

    def note(self, session_id: str, seq: int) -> None:
        """An entry was written here (``EventBus.relay_to``)."""
        self._pending.append(f"{session_id} {seq}")
        self._wake.set()

    def _packed(self) -> list[str]:
        """The pending entries as notices of at most ``MAX_NOTICE`` bytes."""
        notices: list[str] = []
        lines = [self._holder]
        size = len(self._holder)
        for line in self._pending:
            if size + 1 + len(line) > MAX_NOTICE:
                notices.append("\n".join(lines))
                lines, size = [self._holder], len(self._holder)
            lines.append(line)
            size += 1 + len(line)
        if len(lines) > 1:
            notices.append("\n".join(lines))
        self._pending = []
        return notices

    async def send_forever(self) -> None:
        """Send what was written, a round trip for all that came meanwhile."""
        while True:
            await self._wake.wait()
            # A short wait gathers what other writers write meanwhile into the same notice:
            # under load, a hundred notices a second at most, not one per write.
            await anyio.sleep(_GATHER_S)
            self._wake = anyio.Event()
            try:
                await self._notices.send(self._packed())
            except Exception as error:  # live events only: the journal keeps every entry
                log.warning("events not passed on to the other nodes: %r", error)

    async def listen_forever(self) -> None:
        """Offer the other nodes' entries to the subscribers here that follow them."""
        while True:
            try:
                async for notice in self._notices.listen(self.listening.set):
                    await self._received(notice)
            except Exception as error:
                log.warning("not listening to the other nodes' events: %r", error)
            self.listening = anyio.Event()
            await anyio.sleep(_RELISTEN_S)

    async def _received(self, notice: str) -> None:
        holder, _, lines = notice.partition("\n")
        if holder == self._holder or not lines:
            return
        for line in lines.split("\n"):
            session_id, _, seq = line.partition(" ")
            if not self._bus.wants(session_id):
                continue
            raw = await self._records.get(layout.journal_key(layout.bytes_of(session_id), int(seq)))
            if raw is None:
                continue  # gone since (the session was deleted)
            try:
                at_us, kind, data, cause = layout.decode_entry_with_cause(raw)
                layout.check_entry(at_us, kind, data, cause)
                await self._bus.deliver(session_id, int(seq), at_us, kind, data, cause)
            except IntegrityError as error:
                # One damaged entry (the timeline raises it to whoever reads it there): the
                # rest of the notice still reaches its subscribers, and the node keeps
                # listening rather than missing notices while it starts again.
                log.warning("entry %s of session %s not passed on: %s", seq, session_id, error)
                continue
            self.received += 1
