"""The session actor's turns on its deadlines: max duration, idle timeout, retention and
archive retention (a part of ``SessionActor``, kept apart to keep each module small)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from satchel.runtime import ActorContext
from satchel.runtime._errors import SessionHasChildrenError

from .._lifecycle import DAY_S, Transition
from .._messages import DeadlineDue, Delete
from . import _session_layout as layout
from ._session_records import OwnRecords

_US = 1_000_000
#: How long an archived session that cannot go yet (it has children) waits to try again.
_RETRY_DELETE_US = round(DAY_S * _US)


class DeadlineTurns:
    """What a session does when one of its deadlines comes."""

    if TYPE_CHECKING:
        _own: OwnRecords
        _record: layout.SessionRecord | None
        _counters: layout.Counters
        _active_us: int
        context: ActorContext

        def _now_us(self) -> int: ...

        async def _require_session(self) -> layout.SessionRecord: ...

        async def _transition(self, operation: Transition, reason: str | None) -> None: ...

        def _announce(self, added: list[int]) -> None: ...

        async def _delete(self, message: Delete) -> Any: ...

    async def _deadline_due(self, message: DeadlineDue) -> None:
        record = self._record
        entry = (message.due_us, message.reason)
        if record is None or entry not in record.deadlines:
            await self._drop_stale_deadline(message)
            if record is None:
                self.context.passivate()
            return
        reason = layout.Deadline(message.reason)
        if reason is layout.Deadline.MAX_DURATION:
            await self._transition(Transition.FAIL, "timeout")
        elif reason is layout.Deadline.IDLE:
            await self._idle_due(record, entry)
        elif reason is layout.Deadline.RETENTION:
            await self._transition(Transition.ARCHIVE, "retention")
        else:
            await self._archive_retention_due(entry)

    async def _drop_stale_deadline(self, message: DeadlineDue) -> None:
        await self._own.drop_deadline(message.due_us, message.reason)

    async def _idle_due(self, record: layout.SessionRecord, entry: tuple[int, bytes]) -> None:
        timeout_us = round((record.config.idle_timeout_s or 0) * _US)
        idle_until = max(self._counters.updated_us, self._active_us) + timeout_us
        if self._now_us() >= idle_until:
            await self._transition(Transition.SUSPEND, "idle")
            self.context.passivate()
            return
        await self._rearm(record, entry, idle_until)

    async def _archive_retention_due(self, entry: tuple[int, bytes]) -> None:
        try:
            await self._delete(Delete(cascade=False))
        except SessionHasChildrenError:
            record = await self._require_session()
            await self._rearm(record, entry, self._now_us() + _RETRY_DELETE_US)

    async def _rearm(
        self, record: layout.SessionRecord, entry: tuple[int, bytes], due: int
    ) -> None:
        """Move one deadline later (bookkeeping only: no journal entry)."""
        deadlines = (*(d for d in record.deadlines if d != entry), (due, entry[1]))
        new = attrs.evolve(record, deadlines=deadlines)
        added = await self._own.move_deadlines(record, new)
        self._record = new
        self._announce(added)
