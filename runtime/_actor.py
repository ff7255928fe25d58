"""The actor base class and the context the kernel hands each actor."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from ._cell import Cell

M = TypeVar("M")


class Lending(enum.Enum):
    """Whether an asker may run a turn in its own task while the actor is idle
    (``Actor.lending``): the same turn, one task switch and one scheduler pass cheaper."""

    #: Queued: the actor's own task runs the turn.
    NO = "no"
    #: Nothing can cut the turn short: it has no checkpoint, or waits only uncancellably.
    SYNC = "sync"
    #: The turn may suspend: it runs shielded from the asker's cancellation (the asker
    #: gets ``Cancelled`` after it), so only for short turns. A shield costs ~5 µs here.
    #: Queued on asyncio, where a host may cancel its task past any scope.
    SHIELDED = "shielded"
    #: As ``SHIELDED``, for a turn that waits only on brief I/O (a networked store): on
    #: asyncio too, held in the asker's task (``Held``, behind an AnyIO shield); the asker's
    #: cancellation is delivered after the turn.
    HELD = "held"


class Actor(Generic[M]):
    """Owns its state and handles one message at a time.

    Subclasses override ``on_start`` (load persisted state; runs on every activation and
    restart before the first message), ``receive`` (one message; its return value answers an
    ask) and ``on_stop`` (flush state; runs shielded on passivation and shutdown, not after a
    crash). ``self.context`` is set before ``on_start``.
    """

    context: ActorContext

    async def on_start(self) -> None:
        """Restore state; the actor takes no message before this returns."""

    async def receive(self, message: M) -> Any:
        """Handle one message; the return value is the answer to an ask."""
        raise NotImplementedError

    async def on_stop(self) -> None:
        """Flush state before the actor stops (passivation or shutdown)."""

    def lending(self, message: M) -> Lending:
        """Whether an ask of ``message`` may run its turn in the asking task while the actor
        is idle, and how (see ``Lending``); by default it may not."""
        return Lending.NO


class ActorContext:
    """What an actor may ask of the kernel about itself."""

    __slots__ = ("_cell",)

    def __init__(self, cell: Cell) -> None:
        self._cell = cell

    @property
    def id(self) -> str:
        """The actor's id (stable across passivation and restarts)."""
        return self._cell.actor_id

    @property
    def kind(self) -> str:
        """The actor's kind."""
        return self._cell.spec.kind

    def start_timer(self, name: str, delay: float, *, interval: float | None = None) -> None:
        """Deliver ``TimerFired(name)`` after ``delay`` seconds (then every ``interval``).

        Timers are volatile: passivation, restart and shutdown drop them. Starting a timer
        with the name of a running one replaces it.
        """
        self._cell.start_timer(name, delay, interval)

    def cancel_timer(self, name: str) -> None:
        """Stop the timer ``name`` if it is running."""
        self._cell.cancel_timer(name)

    async def set_reminder(self, name: str, *, at: float, every: float | None = None) -> None:
        """Persist a reminder delivering ``ReminderFired`` at wall time ``at`` (then every
        ``every`` seconds); it survives passivation and restarts and reactivates the actor."""
        await self._cell.supervisor.reminders.set(self.kind, self.id, name, at, every)

    async def cancel_reminder(self, name: str) -> None:
        """Delete the reminder ``name`` of this actor, if any."""
        await self._cell.supervisor.reminders.cancel(self.kind, self.id, name)

    def passivate(self) -> None:
        """Stop after the current message, flushing state; the next message reactivates."""
        self._cell.request("passivate")

    def now(self) -> float:
        """The runtime's wall clock (seconds since the epoch)."""
        return self._cell.supervisor.clock()
