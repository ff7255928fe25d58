"""The deadline actor: wakes sessions whose policy or retention time has come.

Sessions record their deadlines (max duration, idle timeout, retention, deletion of archived
sessions) in a persisted index ordered by due time, in the same batch as the change that
sets them. One actor sleeps on a durable kernel reminder set for the earliest due time; when
it fires, it tells every due session ``DeadlineDue`` and sets the reminder for the next one.
At runtime start it sweeps once, so nothing a crash interrupted is missed, and nothing but
the next due time is held in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, final

from satchel.runtime import Actor, ActorRef, ReminderFired, Supervisor
from satchel.storage import KeyValueStore
from satchel.storage import _keys as keys

from . import _layout as layout
from ._messages import DeadlineAdded, DeadlineDue

DEADLINES_KIND = "deadlines"
SWEEPER_ID = "sweeper"
_REMINDER = "next"
_US = 1_000_000


@final
class DeadlineBoard:
    """The earliest deadline the sweeper is known to wait for, shared by everyone who adds one,
    so that only a deadline earlier than that costs a message."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.next_us: int | None = None
        self._supervisor = supervisor

    async def note(self, due_us: int) -> None:
        """A session now needs attention at ``due_us``."""
        if self.next_us is None or due_us < self.next_us:
            self.next_us = due_us
            await self._supervisor.ref(DEADLINES_KIND, SWEEPER_ID).tell(DeadlineAdded(due_us))

    async def start(self) -> None:
        """Activate the sweeper (it sweeps what fell due while the runtime was closed)."""
        await self._supervisor.ref(DEADLINES_KIND, SWEEPER_ID).ask(DeadlineAdded(0))


@final
class DeadlineSweeper(Actor[Any]):
    """Tells sessions their deadlines have come; ``factory`` of the ``deadlines`` kind."""

    def __init__(
        self,
        kv: KeyValueStore,
        board: DeadlineBoard,
        session_ref: Callable[[str], ActorRef],
    ) -> None:
        self._kv = kv
        self._board = board
        self._session_ref = session_ref
        self._scheduled: int | None = None

    async def on_start(self) -> None:
        """Catch up with what fell due while nothing was looking."""
        await self._sweep()

    async def receive(self, message: Any) -> None:
        """A reminder fired, or a session added a deadline."""
        if isinstance(message, ReminderFired):
            self._scheduled = None
            await self._sweep()
        elif isinstance(message, DeadlineAdded):
            if self._scheduled is None or message.due_us < self._scheduled:
                await self._schedule()
        else:
            raise TypeError(f"the deadline actor takes no {type(message).__name__}")

    def _now_us(self) -> int:
        return round(self.context.now() * _US)

    async def _sweep(self) -> None:
        upper = keys.DEADLINE + layout.u64(self._now_us() + 1)
        due = [layout.parse_deadline_key(key) for key, _ in self._kv.scan(keys.DEADLINE, upper)]
        for due_us, sid, reason in due:
            await self._session_ref(layout.text_of(sid)).tell(DeadlineDue(due_us, reason))
        await self._schedule()

    async def _schedule(self) -> None:
        """Set the reminder for the earliest deadline still in the future."""
        lower = keys.DEADLINE + layout.u64(self._now_us() + 1)
        first = next(self._kv.scan(lower, layout.DEADLINES_UPPER, limit=1), None)
        due_us = None if first is None else layout.parse_deadline_key(first[0])[0]
        # Published before awaiting: a deadline added while the reminder is being written
        # compares against this and, if earlier, reaches this actor as a message.
        self._board.next_us = due_us
        if due_us is None:
            # Also drops a reminder an earlier run left for a deadline since removed.
            await self.context.cancel_reminder(_REMINDER)
        elif due_us != self._scheduled:
            await self.context.set_reminder(_REMINDER, at=due_us / _US)
        self._scheduled = due_us
