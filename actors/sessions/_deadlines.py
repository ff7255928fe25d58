"""The deadline actor: wakes sessions whose policy or retention time has come.

Sessions record their deadlines (max duration, idle timeout, retention, deletion of archived
sessions) in a persisted index ordered by due time, in the same batch as the change that
sets them. One actor sleeps on a durable kernel reminder set for the earliest due time; when
it fires, it tells every due session ``DeadlineDue`` and sets the reminder for the next one.
At runtime start it sweeps once, so nothing a crash interrupted is missed, and nothing but
the next due time is held in memory.

On a cluster every node runs a sweeper of its own (a session's deadline reaches it on the
node that serves it), so its reminder is the node's own: ``satchel._cluster`` names this
kind node-local, and the shared reminder table keeps one row per node for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, final

import anyio
import anyio.lowlevel

from satchel.runtime import Actor, ActorRef, ReminderFired, Supervisor
from satchel.runtime._errors import SatchelError, SessionMovedError
from satchel.storage import RecordReads

from .._messages import DeadlineAdded, DeadlineDue
from . import _session_layout as layout
from ._session_records import SessionRecords

DEADLINES_KIND = "deadlines"
SWEEPER_ID = "sweeper"
_REMINDER = "next"
_US = 1_000_000
#: A sweep that told sessions of deadlines looks again this soon, for any left unhandled.
RETRY_S = 60

log = logging.getLogger("satchel.sessions")


@final
class DeadlineBoard:
    """The earliest time the sweeper is known to wake at, shared by everyone who adds a
    deadline, so that only a deadline earlier than that costs a message."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.next_us: int | None = None
        self._supervisor = supervisor

    async def note(self, due_us: int) -> None:
        """A session now needs attention at ``due_us`` (its deadline entry is written).

        Called after a change has committed, so nothing here may fail that change: the
        message is sent shielded from cancellation, and a sweeper that cannot take it is
        logged (the deadline stays in the index; the next sweep or restart finds it).
        """
        if self.next_us is not None and due_us >= self.next_us:
            await anyio.lowlevel.checkpoint()
            return
        try:
            with anyio.CancelScope(shield=True):
                await self._supervisor.ref(DEADLINES_KIND, SWEEPER_ID).tell(DeadlineAdded(due_us))
        except SatchelError as error:
            log.warning("deadline at %d µs not scheduled: %s", due_us, error)
            return
        if self.next_us is None or due_us < self.next_us:
            self.next_us = due_us

    async def start(self) -> None:
        """Activate the sweeper (it sweeps what fell due while the runtime was closed)."""
        await self._supervisor.ref(DEADLINES_KIND, SWEEPER_ID).ask(DeadlineAdded(0))


@final
class DeadlineSweeper(Actor[Any]):
    """Tells sessions their deadlines have come; ``factory`` of the ``deadlines`` kind.

    A sweep tells every session with a deadline due now, handled or not (a session that
    failed to act on one is told again), then looks again for deadlines that fell due
    while it was telling, until none did. The reminder is set for the first deadline after
    the last look, and — when anyone was told — no later than ``RETRY_S`` after it.
    """

    def __init__(
        self,
        records: RecordReads,
        board: DeadlineBoard,
        session_ref: Callable[[str], ActorRef],
    ) -> None:
        self._sessions = SessionRecords(records)
        self._board = board
        self._session_ref = session_ref
        self._scheduled: int | None = None
        self._swept_us = 0  # every deadline due up to here has been told

    async def on_start(self) -> None:
        """Catch up with what fell due while nothing was looking."""
        await self._sweep()

    async def receive(self, message: Any) -> None:
        """A reminder fired, or a session added a deadline."""
        if isinstance(message, ReminderFired):
            self._scheduled = None
            await self._sweep()
        elif isinstance(message, DeadlineAdded):
            if message.due_us <= self._swept_us:
                # Due already, and the sweep that passed its time did not see it (an imported
                # session's; the start's wake-up): sweep now, which also keeps a retry.
                await self._sweep()
            elif self._scheduled is None or message.due_us < self._scheduled:
                await self._schedule(retry=False)
        else:
            raise TypeError(f"the deadline actor takes no {type(message).__name__}")

    def _now_us(self) -> int:
        return round(self.context.now() * _US)

    async def _sweep(self) -> None:
        since: int | None = None  # the first sweep starts at the first deadline
        told = False
        while True:
            now = self._now_us()
            due = await self._sessions.deadlines_due(since, now)
            for due_us, sid, reason in due:
                await self._tell(layout.text_of(sid), DeadlineDue(due_us, reason))
            self._swept_us = now
            if not due:
                break
            told, since = True, now + 1
        await self._schedule(retry=told)

    async def _tell(self, session_id: str, message: DeadlineDue) -> None:
        try:
            await self._session_ref(session_id).tell(message)
        except SessionMovedError:
            # Another node of the cluster serves it: its sweeper tells it there.
            log.debug("deadline of session %s left to the node serving it", session_id)
        except SatchelError as error:
            # One session that cannot start must not stop every other session's deadlines.
            log.warning("session %s missed a deadline (retried later): %s", session_id, error)

    async def _schedule(self, *, retry: bool) -> None:
        """Set the reminder for the first deadline after the last sweep (or a retry)."""
        due_us = await self._sessions.next_deadline(self._swept_us)
        if retry:
            again = self._swept_us + RETRY_S * _US
            due_us = again if due_us is None else min(due_us, again)
        # Published before awaiting: a deadline added while the reminder is being written
        # compares against this and, if earlier, reaches this actor as a message.
        self._board.next_us = due_us
        if due_us is None:
            # Also drops a reminder an earlier run left for a deadline since removed.
            await self.context.cancel_reminder(_REMINDER)
        elif due_us != self._scheduled:
            await self.context.set_reminder(_REMINDER, at=due_us / _US)
        self._scheduled = due_us
