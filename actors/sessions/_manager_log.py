"""The session manager's calls on sessions' event logs and whole variable sets (a part of
``SessionManager``, kept apart to keep each module small)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio.lowlevel

from satchel.runtime import ActorRef, Supervisor
from satchel.runtime._budget import cooperate
from satchel.runtime._errors import InvalidArgumentError, SessionNotFoundError

from .. import _validate as validate
from .._messages import AppendEvents, ClearEvents, PopEvent
from . import _event_log as log
from ._event_log import SessionEvent
from ._session_records import SessionRecords


class EventLogCalls:
    """Append, read, pop and clear events; read every variable at once."""

    if TYPE_CHECKING:
        _sessions: SessionRecords
        _supervisor: Supervisor

        async def _ask(self, session_id: str, message: Any) -> Any: ...

        def _ref(self, session_id: str) -> ActorRef: ...

    async def append_events(
        self,
        session_id: str,
        events: Sequence[Mapping[str, Any]],
        *,
        state: Mapping[str, Any] | None = None,
        delete: Iterable[str] = (),
        expect_position: int | None = None,
        at: Any = None,
        expect_created_at: Any = None,
        expect_state: Mapping[str, Any] | None = None,
    ) -> int:
        """Append ``events`` (JSON-like maps) to the session's log and, in the same atomic
        write, set the variables in ``state`` (``None`` is stored as null) and delete those in
        ``delete``; returns the last event's position. Positions count from 1 and are never
        given twice. With ``expect_position`` the append is refused
        (``InvalidStateTransitionError``) unless the log's last position is still that: a
        writer that read the session stale does not overwrite it. With
        ``expect_created_at`` (the session's ``created_at``) it is refused, the same way, if
        the session was deleted and created again under the same key since (positions count
        from 1 again in the new one). With ``expect_state`` it is refused, the same way,
        unless each variable named there holds the value given, of the same kind at every
        depth (``True``, ``1`` and ``1.0`` differ; a missing variable reads as ``None``): a
        compare-and-set. ``at`` (a datetime, RFC 3339
        text or epoch seconds) is the events' time instead of now."""
        append = log.checked_append(
            events, state, delete, expect_position, at, expect_created_at, expect_state
        )
        # Not through ``_ask``: a coroutine less on the call every adapter makes.
        position: int = await self._ref(session_id).ask(AppendEvents(append))
        return position

    async def append_event(
        self,
        session_id: str,
        event: Mapping[str, Any],
        *,
        state: Mapping[str, Any] | None = None,
        delete: Iterable[str] = (),
        expect_position: int | None = None,
        at: Any = None,
        expect_created_at: Any = None,
        expect_state: Mapping[str, Any] | None = None,
    ) -> int:
        """``append_events`` of one event; its position."""
        return await self.append_events(
            session_id,
            [event],
            state=state,
            delete=delete,
            expect_position=expect_position,
            at=at,
            expect_created_at=expect_created_at,
            expect_state=expect_state,
        )

    async def events(
        self, session_id: str, *, last: int | None = None, after: Any = None
    ) -> builtins.list[SessionEvent]:
        """The session's events, oldest first: the last ``last`` of them, or (and) those after
        the time ``after``, read from the end of the log without the rest."""
        sid = await self._existing(session_id)
        if last is not None and (type(last) is not int or last < 0):
            raise InvalidArgumentError(f"last must be a non-negative integer, not {last!r}")
        after_us = None if after is None else validate.micros("after", after)
        found = (
            [] if last == 0 else await log.read(self._sessions, sid, last=last, after_us=after_us)
        )
        # A cancellation point, and a schedule point once per few calls of the task: as a
        # lent turn (a scheduler pass each time costs ~5 µs on asyncio).
        await cooperate(self._supervisor.native)
        return found

    async def last_event_position(self, session_id: str) -> int:
        """The last position given in the session's log (0 if none; a pop does not lower
        it): what ``expect_position`` compares with."""
        sid = await self._existing(session_id)
        await anyio.lowlevel.checkpoint()
        return (await self._sessions.event_log_end(sid))[0]

    async def pop_event(self, session_id: str) -> SessionEvent | None:
        """Remove and return the session's last event (``None`` if it has none); its state
        delta stays applied."""
        popped: SessionEvent | None = await self._ask(session_id, PopEvent())
        return popped

    async def clear_events(self, session_id: str) -> int:
        """Remove every event of the session's log; how many there were."""
        count: int = await self._ask(session_id, ClearEvents())
        return count

    async def state(self, session_id: str, *, prefix: str = "") -> dict[str, Any]:
        """Every variable of the session and its value (those whose name starts with
        ``prefix``, read without the others), in name order."""
        sid = await self._existing(session_id)
        if not isinstance(prefix, str):
            raise InvalidArgumentError(f"prefix must be a string, not {type(prefix).__name__}")
        found = await self._sessions.variables(sid, prefix)
        await anyio.lowlevel.checkpoint()
        return found

    async def _existing(self, session_id: str) -> bytes:
        """The bytes of ``session_id``; ``SessionNotFound`` if it names no session."""
        sid = validate.session_id(session_id)[1]
        if not await self._sessions.has_counters(sid):
            raise SessionNotFoundError(f"Session not found: {session_id}")
        return sid
