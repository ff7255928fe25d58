"""The supervisor: activates actors by id (once), restarts them, passivates them, stops them."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, NoReturn, final

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from . import _native
from ._actor import Lending
from ._budget import cooperate
from ._cell import Cell, Item, turn_of
from ._errors import (
    ActorFailedError,
    ActorNotFoundError,
    ForeignLoopError,
    MailboxFullError,
    RuntimeClosedError,
)
from ._heap import TrimSchedule, release_free_heap
from ._messages import ReplySlot
from ._persistence import MemoryReminders, ReminderStore
from ._placement import Placement
from ._reminders import Reminders
from ._spec import ActorSpec, Strategy
from ._stats import ActorStatistics, SupervisorStatistics

Key = tuple[str, str]
log = logging.getLogger("satchel.runtime")

_EPOCH: anyio.lowlevel.RunVar[float] = anyio.lowlevel.RunVar("satchel_epoch")


def _epoch() -> float:
    """Wall time minus the event loop's clock, fixed once per run of the loop: wall time
    moves with the loop's clock, so a mock clock in tests advances it too, across
    supervisors opened in one run."""
    try:
        return _EPOCH.get()
    except LookupError:
        epoch = time.time() - anyio.current_time()
        _EPOCH.set(epoch)
        return epoch


class _StoppedWhileStarting(RuntimeClosedError):
    """The actor was passivated (or stopped) before its start finished."""


@attrs.define
class _Totals:
    activations: int = 0
    passivations: int = 0
    restarts: int = 0
    failures: int = 0
    messages_handled: int = 0
    heap_trims: int = 0


@final
class Supervisor:
    """Runs every actor of a runtime in one task group; see ``open_supervisor``."""

    def __init__(
        self,
        nursery: _native.TaskGroup,
        *,
        strategy: Strategy,
        resident_cap: int,
        reminder_store: ReminderStore,
    ) -> None:
        self._nursery = nursery
        #: The running event loop's hot-path primitives (Trio's or asyncio's).
        self.native = _native.current_native()
        self._loop = self.native.loop_token()
        self._epoch = _epoch()
        self._now = self.native.clock()
        self.strategy = strategy
        self.resident_cap = resident_cap
        self._specs: dict[str, ActorSpec] = {}
        # Live cells, least recently active first (the LRU order for the resident cap).
        self._cells: collections.OrderedDict[Key, Cell] = collections.OrderedDict()
        self._failed: dict[Key, Cell] = {}
        self._order = 0
        self.totals = _Totals()
        self.heap = TrimSchedule()
        self._trimming = False
        self._trim_again = False
        self._emptied = anyio.Event()
        # Events of callers waiting in ``stop`` (made on demand: a cell has no room for one).
        self._stopping: dict[Key, anyio.Event] = {}
        # Native, not AnyIO's: every activation sets it, and the sweeper makes a new one.
        self._sweep_wake = self.native.event()
        self.closed = False
        self.reminders = Reminders(self, reminder_store)
        #: Where actors may be active when runtimes share a store; ``None``: all here.
        self.placement: Placement | None = None

    def clock(self) -> float:
        """Wall time in seconds since the epoch, advancing with the loop's clock (mockable)."""
        return self._epoch + self._now()

    def refuse_foreign_caller(self) -> NoReturn:
        """Raise ``ForeignLoopError``: the caller runs outside the loop that opened this."""
        raise ForeignLoopError(
            f"this satchel runtime runs in the {self.native.name} event loop that opened it, "
            "and was called from another thread or event loop; from plain threads use "
            "satchel.sync.open_runtime, or open a runtime in the loop that calls it"
        )

    def register(self, spec: ActorSpec) -> None:
        """Make actors of ``spec.kind`` addressable."""
        if spec.kind in self._specs:
            raise ValueError(f"actor kind {spec.kind!r} is registered already")
        self._specs[spec.kind] = spec
        self.reminders.wake()

    def spawn_system_task(
        self, fn: Callable[..., Coroutine[Any, Any, object]], *args: object
    ) -> None:
        """Run ``fn(*args)`` in the supervisor's task group (timers and the like)."""
        self._nursery.start_soon(fn, *args)

    def is_live(self, kind: str, actor_id: str) -> bool:
        """Whether the actor is live now (activating or running, not failed)."""
        return (kind, actor_id) in self._cells

    def kinds(self) -> list[str]:
        """The actor kinds registered, in the order they were."""
        return list(self._specs)

    def has_kind(self, kind: str) -> bool:
        """Whether actors of ``kind`` can be addressed."""
        return kind in self._specs

    def ref(self, kind: str, actor_id: str) -> ActorRef:
        """The address of actor ``actor_id`` of ``kind`` (live or not)."""
        if kind not in self._specs:
            raise ActorNotFoundError(f"no actor kind {kind!r} is registered")
        return ActorRef(self, kind, actor_id)

    # -- delivery and activation -----------------------------------------------------------

    async def deliver(self, key: Key, item: Item) -> None:
        """Queue ``item`` for the actor, activating it first if it is not live."""
        while True:
            cell = await self._cell_for(key)
            try:
                await cell.mailbox.put(item)
                return
            except anyio.BrokenResourceError:
                # The cell stopped while we waited for room: deliver to its successor.
                if self.closed:
                    raise RuntimeClosedError("the runtime closed before delivery") from None

    def resident(self, key: Key) -> Cell | None:
        """The cell of ``key`` if its actor is resident (in any state)."""
        return self._cells.get(key)

    def resident_ref(self, key: Key) -> ActorRef | None:
        """The address of ``key``'s actor if it is resident, kept with its cell: a caller
        that often names a live actor by a text it would otherwise have to check (a session
        id) skips the check, and nothing is kept for an actor once it is passivated."""
        cell = self._cells.get(key)
        if cell is None or cell.state != "running":
            return None  # one still starting may yet refuse its id (sessions: canonical)
        ref = cell.ref
        if ref is None:
            ref = cell.ref = ActorRef(self, key[0], key[1])
        return ref

    def offer(self, key: Key, item: Item) -> bool:
        """Queue ``item`` now if the actor is live and has room (no scheduler pass); whether
        it was queued. An ask then waits on its answer, which is its checkpoint."""
        cell = self._cells.get(key)
        if cell is None or cell.state != "running":
            return False
        try:
            cell.mailbox.put_nowait(item)
        except (MailboxFullError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        return True

    async def deliver_nowait(self, key: Key, item: Item) -> None:
        """Queue ``item`` without waiting on a full mailbox (activation may still await)."""
        (await self._cell_for(key)).mailbox.put_nowait(item)

    async def _cell_for(self, key: Key) -> Cell:
        cell = self._cells.get(key)
        return cell if cell is not None else await self.activate(*key)

    async def activate(self, kind: str, actor_id: str) -> Cell:
        """The live cell of the actor, started (state restored) if it was not live.

        Concurrent calls for one id share one activation: never two live actors per id. An
        actor passivated while it started is started again.
        """
        while True:
            try:
                return await self._activate_once(kind, actor_id)
            except _StoppedWhileStarting:
                # Each start ran the mail queued before it, so this ends; let others run.
                await self.native.checkpoint()

    async def _activate_once(self, kind: str, actor_id: str) -> Cell:
        key = (kind, actor_id)
        if self.closed:
            raise RuntimeClosedError("the runtime is closed")
        failed = self._failed.get(key)
        if failed is not None:
            raise ActorFailedError(
                f"actor {kind}/{actor_id} failed: {failed.failure}; restart it to use it again"
            )
        cell = self._cells.get(key)
        if cell is not None:
            return cell  # live, or starting: mail queued now runs once its state is restored
        spec = self._specs.get(kind)
        if spec is None:
            raise ActorNotFoundError(f"no actor kind {kind!r} is registered")
        placement = self.placement
        if placement is not None and placement.places(kind):
            if not placement.holds(kind, actor_id):
                await placement.claim(kind, actor_id)  # raises if another node holds it
            cell = self._cells.get(key)  # activated meanwhile by another caller
            if cell is not None:
                return cell
            if self.closed:
                raise RuntimeClosedError("the runtime is closed")
        cell = Cell(self, spec, actor_id)
        self._order += 1
        cell.order = self._order
        self._cells[key] = cell
        self.heap.grew(len(self._cells))
        self._sweep_wake.set()
        errors: list[Exception] = []
        # Not nursery.start: until started() that runs on_start in this caller's cancel scope,
        # and a caller that gives up must not abandon on_start for the senders already queued.
        # The cell's own task sets ``ready`` once its state is restored.
        ready = self.native.event()
        self._nursery.start_soon(cell.run, ready, errors)
        await ready.wait()
        if errors:
            raise ActorFailedError(
                f"actor {kind}/{actor_id} could not start: {errors[0]!r}"
            ) from errors[0]
        if cell.state != "running" and self._cells.get(key) is not cell:
            if self.closed:
                raise RuntimeClosedError(f"actor {kind}/{actor_id} stopped while starting")
            raise _StoppedWhileStarting(f"actor {kind}/{actor_id} stopped while starting")
        self._enforce_cap()
        return cell

    def _enforce_cap(self) -> None:
        excess = len(self._cells) - self.resident_cap
        if excess <= 0:
            return
        for cell in list(self._cells.values()):
            if excess <= 0:
                break
            if cell.idle and "passivate" not in cell.requests:
                cell.request("passivate")
                excess -= 1

    async def sweep_idle(self) -> None:
        """Ask actors idle past their kind's ``idle_timeout`` to passivate, forever.

        Cells are kept least recently active first, so each sweep stops at the first cell
        that cannot have expired, and sleeps until it could.
        """
        while True:
            timeouts = [s.idle_timeout for s in self._specs.values() if s.idle_timeout is not None]
            if not timeouts or not self._cells:
                self._sweep_wake = self.native.event()
                await self._sweep_wake.wait()
                continue
            shortest = min(timeouts)
            now = self.clock()
            wake_at = now + shortest
            for cell in list(self._cells.values()):
                if cell.last_activity + shortest > now:
                    wake_at = cell.last_activity + shortest
                    break
                timeout = cell.spec.idle_timeout
                if timeout is not None and now - cell.last_activity >= timeout and cell.idle:
                    cell.request("passivate")
            await anyio.sleep(max(wake_at - now, 0.001))

    def _touched(self, cell: Cell) -> None:
        self._cells.move_to_end(cell.key)

    def _cell_finished(self, cell: Cell) -> None:
        if self._cells.get(cell.key) is cell:
            del self._cells[cell.key]
            stopped = self._stopping.pop(cell.key, None)
            if stopped is not None:
                stopped.set()
            placement = self.placement
            if placement is not None and placement.places(cell.key[0]):
                placement.vacated(*cell.key)
        if self.heap.due(len(self._cells)) and self.heap.enabled and not self.closed:
            if self._trimming:
                self._trim_again = True  # more was freed while a trim ran: once more after it
            else:
                self._trimming = True
                self._nursery.start_soon(self._release_heap)
        if not self._cells:
            self._emptied.set()
        if cell.state == "failed":
            self._failed[cell.key] = cell

    def _crashed(self, cell: Cell) -> None:
        """Apply the strategy to the siblings of a cell that crashed and restarts."""
        if self.strategy is Strategy.ONE_FOR_ONE:
            return
        for other in list(self._cells.values()):
            if other is cell or other.state != "running":
                continue
            if self.strategy is Strategy.ONE_FOR_ALL or other.order > cell.order:
                other.request("restart")

    # -- control ----------------------------------------------------------------------------

    def live(self) -> list[ActorStatistics]:
        """Statistics of every live actor and every failed one, least recently active first."""
        cells = [*self._cells.values(), *self._failed.values()]
        return [cell.statistics() for cell in cells]

    def inspect(self, kind: str, actor_id: str) -> ActorStatistics:
        """Statistics of one live or failed actor."""
        cell = self._cells.get((kind, actor_id)) or self._failed.get((kind, actor_id))
        if cell is None:
            raise ActorNotFoundError(f"actor {kind}/{actor_id} is not live")
        return cell.statistics()

    def request(self, kind: str, actor_id: str, what: str) -> None:
        """Ask a live actor to ``passivate`` or ``restart`` after its current turn."""
        cell = self._cells.get((kind, actor_id))
        if cell is None:
            raise ActorNotFoundError(f"actor {kind}/{actor_id} is not live")
        if what not in ("passivate", "restart"):
            raise ValueError(f"unknown request {what!r}")
        cell.request(what)  # type: ignore[arg-type]

    def evict(self, kind: str, actor_id: str) -> None:
        """Stop a live actor after its current turn even if mail is queued (rejected with
        ``SessionMovedError``): another node serves it now. Nothing if it is not live."""
        cell = self._cells.get((kind, actor_id))
        if cell is not None:
            cell.request("evict")

    async def stop(self, kind: str, actor_id: str) -> None:
        """Passivate a live actor and return once it is gone (its state flushed, and in a
        cluster its claim let go)."""
        cell = self._cells.get((kind, actor_id))
        if cell is None:
            raise ActorNotFoundError(f"actor {kind}/{actor_id} is not live")
        stopped = self._stopping.setdefault(cell.key, anyio.Event())
        cell.request("passivate")
        await stopped.wait()
        placement = self.placement
        if placement is not None and placement.places(kind):
            await placement.settled(kind, actor_id)  # so another node can take it at once

    async def _release_heap(self) -> None:
        """Give back the heap a wave of passivations freed (``_heap``), off the loop."""
        try:
            again = True
            while again:
                seen = -1
                for _ in range(50):  # until the wave is over, or half a second at most
                    if seen == self.totals.passivations:
                        break
                    seen = self.totals.passivations
                    await anyio.sleep(0.01)
                self._trim_again = False
                # A dict never shrinks as entries go: the table grown to hold the wave's live
                # actors (~400 KiB at 10,000) would stay that size. A copy is sized for those left.
                self._cells = collections.OrderedDict(self._cells)
                await anyio.to_thread.run_sync(release_free_heap)
                self.totals.heap_trims += 1
                again = self._trim_again
        except Exception as error:  # a thread refused (a process limit): no actor pays for it
            self.heap.enabled = False
            log.warning("giving the free heap back failed, and is off from now: %r", error)
        finally:
            self._trimming = False

    def clear_failure(self, kind: str, actor_id: str) -> None:
        """Forget that an actor failed, so its next message activates it again."""
        if self._failed.pop((kind, actor_id), None) is None:
            raise ActorNotFoundError(f"actor {kind}/{actor_id} has not failed")

    def statistics(self) -> SupervisorStatistics:
        """Counters of the supervisor now."""
        return SupervisorStatistics(
            live_actors=len(self._cells),
            failed_actors=len(self._failed),
            activations=self.totals.activations,
            passivations=self.totals.passivations,
            restarts=self.totals.restarts,
            messages_handled=self.totals.messages_handled,
            heap_trims=self.totals.heap_trims,
            reminders=len(self.reminders),
            resident_cap=self.resident_cap,
            closed=self.closed,
        )

    async def aclose(self, grace: float) -> None:
        """Stop taking messages; let each actor finish its turn and flush, within ``grace``."""
        self.closed = True
        self.reminders.stop()
        with anyio.move_on_after(grace):
            while self._cells:
                for cell in list(self._cells.values()):
                    cell.request("shutdown")
                if self._cells:
                    self._emptied = anyio.Event()
                    await self._emptied.wait()
        self._nursery.cancel_scope.cancel()


@final
class ActorRef:
    """The address of one actor: valid across passivation and restarts."""

    __slots__ = ("_key", "_supervisor", "actor_id", "kind")

    def __init__(self, supervisor: Supervisor, kind: str, actor_id: str) -> None:
        self._supervisor = supervisor
        self.kind = kind
        self.actor_id = actor_id
        self._key = (kind, actor_id)

    def __repr__(self) -> str:
        return f"ActorRef({self.kind!r}, {self.actor_id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)

    def _check_open(self) -> None:
        supervisor = self._supervisor
        if supervisor.closed:
            raise RuntimeClosedError(f"the runtime is closed; {self.kind}/{self.actor_id} is gone")
        if supervisor.native.loop_token() is not supervisor._loop:
            supervisor.refuse_foreign_caller()

    async def tell(self, message: Any) -> None:
        """Send ``message``, waiting while the mailbox is full; no answer."""
        self._check_open()
        await self._supervisor.deliver(self._key, (message, None))

    async def try_tell(self, message: Any) -> None:
        """Send ``message``, raising ``MailboxFullError`` rather than waiting for room."""
        self._check_open()
        await self._supervisor.deliver_nowait(self._key, (message, None))

    async def ask(self, message: Any) -> Any:
        """Send ``message`` and wait for the actor's answer (or its error).

        The caller sets any deadline (``anyio.fail_after``); a late answer is dropped. An
        actor that asks itself from within its turn gets its answer inline.
        """
        supervisor = self._supervisor
        if supervisor.closed or supervisor.native.loop_token() is not supervisor._loop:
            self._check_open()  # raises: the checks inline are the hot path's
        cell = turn_of(self._key)
        if cell is not None:
            # Queued, the message would wait for the very turn that waits for its answer.
            return await cell.receive_inline(message)
        cell = supervisor._cells.get(self._key)  # ``resident``, without the call
        if cell is None:
            spec = supervisor._specs.get(self._key[0])
            if spec is not None and spec.admit is not None:
                # An ask for an id that names nothing is answered here: no task is started
                # (and stopped) for it.
                try:
                    await spec.admit(self._key[1], message)
                except BaseException:
                    # Refused without starting anything: still a cancellation point (and,
                    # now and then, a schedule point), as every ask is.
                    await cooperate(supervisor.native)
                    raise
        else:
            how = cell.lending(message)
            if how is not Lending.NO:
                return await cell.lent_turn(message, how)
        slot = ReplySlot(self._supervisor.native.event())
        if not self._supervisor.offer(self._key, (message, slot)):
            await self._supervisor.deliver(self._key, (message, slot))
        return await slot.wait()


@asynccontextmanager
async def open_supervisor(
    *,
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    resident_cap: int = 10_000,
    reminder_store: ReminderStore | None = None,
    grace: float = 5.0,
) -> AsyncIterator[Supervisor]:
    """A running supervisor; on exit it shuts every actor down (see ``Supervisor.aclose``).

    ``resident_cap`` bounds live actors (the least recently active idle ones are passivated);
    ``reminder_store`` keeps durable reminders (in memory if not given).
    """
    if resident_cap < 1:
        raise ValueError(f"resident_cap must be at least 1, not {resident_cap}")
    async with anyio.create_task_group() as outer:
        # Actors run in a task group of their own, so that closing the supervisor cancels them
        # and not the caller's code inside this context manager.
        nursery: _native.TaskGroup = await outer.start(_actor_nursery)
        supervisor = Supervisor(
            nursery,
            strategy=strategy,
            resident_cap=resident_cap,
            reminder_store=reminder_store or MemoryReminders(),
        )
        await nursery.start(supervisor.reminders.run)
        nursery.start_soon(supervisor.sweep_idle)
        try:
            yield supervisor
        finally:
            with anyio.CancelScope(shield=True):
                await supervisor.aclose(grace)


async def _actor_nursery(*, task_status: anyio.abc.TaskStatus[_native.TaskGroup]) -> None:
    async with _native.current_native().open_task_group() as nursery:
        task_status.started(nursery)
        await anyio.sleep_forever()
