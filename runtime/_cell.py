"""A cell: one live actor's mailbox, task and counters, and the loop that runs its turns.

The mailbox belongs to the cell, not to the actor instance, so a restart (a fresh instance
that reloads its persisted state) keeps every message still queued.
"""

from __future__ import annotations

import contextvars
import logging
import math
from typing import TYPE_CHECKING, Any, Literal

import anyio
import trio

from ._actor import ActorContext, Lending
from ._budget import cooperate
from ._errors import ActorCrashedError, ActorFailedError, RuntimeClosedError, SessionMovedError
from ._held import Held
from ._mailbox import Mailbox
from ._messages import ReplySlot, TimerFired, reraisable
from ._native import NativeEvent
from ._spec import Restart
from ._stats import ActorStatistics

if TYPE_CHECKING:
    from ._actor import Actor
    from ._spec import ActorSpec
    from ._supervisor import ActorRef, Supervisor

log = logging.getLogger("satchel.runtime")

Item = tuple[Any, ReplySlot | None]
Request = Literal["passivate", "restart", "shutdown", "evict"]


_WAKE: Item = (object(), None)

#: The cell whose turn the current task is running, with that task: an actor asking itself
#: from within its turn (a session's Lua script calling its own session) is answered inline.
_IN_TURN: contextvars.ContextVar[tuple[Cell, object] | None] = contextvars.ContextVar(
    "satchel_in_turn", default=None
)


def turn_of(key: tuple[str, str]) -> Cell | None:
    """The cell of ``key`` if the current task is running one of its turns."""
    running = _IN_TURN.get()
    if running is None or running[0].key != key:
        return None
    cell = running[0]
    return cell if running[1] is cell.supervisor.native.current_task() else None


class _Crash(Exception):
    """A handler (or ``on_start``) raised an error the actor does not survive."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


class Cell:
    """One resident actor. States: activating, running, passivating, stopped, failed."""

    __slots__ = (
        "_lent",
        "_lent_crash",
        "_lent_done",
        "_lent_scope",
        "_timers",
        "_waiting",
        "activations",
        "actor",
        "actor_id",
        "backlog",
        "failure",
        "handled",
        "key",
        "last_activity",
        "mailbox",
        "order",
        "ref",
        "requests",
        "restart_times",
        "restarts",
        "spec",
        "state",
        "supervisor",
    )

    def __init__(self, supervisor: Supervisor, spec: ActorSpec, actor_id: str) -> None:
        self.supervisor = supervisor
        self.spec = spec
        self.actor_id = actor_id
        self.key = (spec.kind, actor_id)
        self.mailbox: Mailbox[Item] = Mailbox(
            spec.mailbox_capacity, f"{spec.kind}/{actor_id}", supervisor.native
        )
        # Lists, not deques or sets: an empty deque costs 600 bytes, times 100,000 actors.
        self.backlog: list[Item] = []
        self.actor: Actor[Any] | None = None
        self.state = "activating"
        self.failure: str | None = None
        self.requests: list[Request] = []
        self.handled = 0
        self.restarts = 0
        self.activations = 0
        self.last_activity = supervisor.clock()
        self.restart_times: list[float] = []
        self.order = 0
        self.ref: ActorRef | None = None  # made by ``Supervisor.resident_ref`` when asked
        self._waiting = False
        self._timers: dict[str, anyio.CancelScope] | None = None  # most actors have none
        # A turn run by an asker in its own task (see ``lent_turn``): the loop waits for it.
        self._lent = False
        self._lent_done: NativeEvent | None = None
        # The shield of a lent SHIELDED or HELD turn (a scope on Trio, ``Held`` on asyncio): the
        # runtime's grace cuts it (``_lent_ended``).
        self._lent_scope: trio.CancelScope | Held[Any] | None = None
        self._lent_crash: Exception | None = None

    # -- requests from outside the loop ---------------------------------------------------

    def request(self, what: Request) -> None:
        """Ask the loop to passivate, restart or shut down after the current turn."""
        if what not in self.requests:
            self.requests.append(what)
        if self._waiting and self.mailbox.depth == 0:
            # The loop sleeps on an empty mailbox: a wake-up item gets it to look at requests.
            self.mailbox.put_nowait(_WAKE)

    def _has_mail(self) -> bool:
        return bool(self.backlog) or self.mailbox.depth > 0

    @property
    def idle(self) -> bool:
        """Running, with nothing queued and no turn in progress."""
        return self._waiting and not self._lent and not self.backlog and self.mailbox.depth == 0

    def statistics(self) -> ActorStatistics:
        """This actor's counters now."""
        return ActorStatistics(
            kind=self.spec.kind,
            id=self.actor_id,
            state=self.state,
            mailbox_depth=self.mailbox.depth + len(self.backlog),
            mailbox_peak=self.mailbox.peak,
            mailbox_capacity=self.mailbox.capacity,
            messages_handled=self.handled,
            restarts=self.restarts,
            activations=self.activations,
            last_activity=self.last_activity,
            failure=self.failure,
        )

    # -- the task ---------------------------------------------------------------------------

    async def run(self, ready: NativeEvent, errors: list[Exception]) -> None:
        """Start the actor, set ``ready``, run turns until passivated, failed or shut down.

        If ``on_start`` fails, its error goes to ``errors`` (for the senders waiting on
        ``ready``) and the actor is marked failed.
        """
        try:
            try:
                await self._start_instance()
            except _Crash as crash:
                self._fail(f"on_start raised {crash.error!r}", crash.error)
                errors.append(crash.error)
                return
            finally:
                ready.set()
            await self._loop()
        finally:
            self._drop_timers()
            self.supervisor._cell_finished(self)
            # The actor's context points back at this cell: without this the two would wait
            # for the garbage collector instead of being freed now.
            self.actor = None
            # Senders blocked on a full mailbox must not wait forever on a cell that is gone.
            self._reject_queued(RuntimeClosedError("the actor stopped before this message ran"))
            self.mailbox.close()

    async def _start_instance(self) -> None:
        self.activations += 1
        self.supervisor.totals.activations += 1
        try:
            actor = self.spec.factory(self.actor_id)
            actor.context = ActorContext(self)
            self.actor = actor
            await actor.on_start()
        except Exception as error:
            raise _Crash(error) from error
        self.state = "running"

    async def _loop(self) -> None:
        while True:
            if self.requests:
                if not await self._obey_requests():
                    return
                continue
            if self.backlog or self._take_mail():
                await self.supervisor.native.checkpoint()  # once per batch, not per message
            else:
                # Waiting inline rather than in a helper coroutine saves a frame per idle actor.
                # No cancel scope either: entering one costs O(live actors) in Trio's cancel
                # bookkeeping. Requests wake the loop with _WAKE; the supervisor's idle sweep
                # asks actors idle past their timeout to passivate.
                self._waiting = True
                try:
                    first = await self.mailbox.get()
                finally:
                    self._waiting = False
                if first is not _WAKE:
                    self.backlog.append(first)
                if (self._lent or self._lent_crash is not None) and not await self._lent_ended():
                    return
                if first is _WAKE:
                    continue
                self._take_mail()
            try:
                while self.backlog and not self.requests:
                    item = self.backlog.pop(0)
                    if item is _WAKE:
                        continue
                    message, slot = item
                    await self._turn(message, slot)
            except _Crash as crash:
                if not await self._recover(crash.error):
                    return

    def _take_mail(self) -> bool:
        """Move everything queued to the backlog; whether there was any."""
        batch = self.mailbox.drain()
        self.backlog.extend(batch)
        return bool(batch)

    def _begin_turn(self) -> contextvars.Token[tuple[Cell, object] | None]:
        """Count a turn and mark the current task as running it (reset the token after)."""
        self.handled += 1
        self.supervisor.totals.messages_handled += 1
        self.last_activity = self.supervisor.clock()
        self.supervisor._touched(self)
        return _IN_TURN.set((self, self.supervisor.native.current_task()))

    async def _turn(self, message: Any, slot: ReplySlot | None) -> None:
        assert self.actor is not None
        token = self._begin_turn()
        try:
            result = await self.actor.receive(message)
        except anyio.get_cancelled_exc_class():
            # The grace period ran out mid-turn: the asker must not wait forever.
            if slot is not None:
                slot.fail(RuntimeClosedError("the runtime closed during this message"))
            raise
        except self.spec.survives as error:
            if slot is not None:
                slot.fail(error)
            else:
                log.warning("%s/%s: %r from a told message", *self.key, error)
            return
        except Exception as error:
            if slot is not None:
                crashed = ActorCrashedError(
                    f"actor {self.spec.kind}/{self.actor_id} crashed handling "
                    f"{type(message).__name__}: {error!r}"
                )
                crashed.__cause__ = error
                slot.fail(crashed)
            raise _Crash(error) from error
        finally:
            _IN_TURN.reset(token)
        if slot is not None:
            slot.set(result)

    # -- turns run by the asker -------------------------------------------------------------

    def lending(self, message: Any) -> Lending:
        """Whether an asker may run ``message``'s turn itself now: the loop sleeps on an empty
        mailbox, nothing else is pending, and the actor allows it (``Actor.lending``)."""
        if (
            self._waiting
            and not self._lent
            and self._lent_crash is None
            and self.mailbox.depth == 0
            and not self.backlog
            and not self.requests
            and self.state == "running"
            and self.actor is not None
        ):
            how = self.actor.lending(message)
            if how is Lending.SHIELDED and not self.supervisor.native.shields_host_tasks:
                return Lending.NO  # the host could cancel its task through the shield
            return how
        return Lending.NO

    async def lent_turn(self, message: Any, how: Lending) -> Any:
        """Run the turn of ``message`` in the asking task (``lending`` said ``how``): its answer,
        or its error. The loop, if mail wakes it meanwhile, waits for this turn to end; a
        crash is handed to the loop, which restarts the actor as after any crash."""
        assert self.actor is not None
        token = self._begin_turn()
        self._lent = True
        failure: BaseException | None = None
        try:
            if how is Lending.SYNC:
                result = await self.actor.receive(message)
            elif self.supervisor.native.shields_host_tasks:
                # An asker's deadline must not cut a turn in half (a queued turn runs whole
                # whatever becomes of its asker, too); the runtime's grace may.
                with self.supervisor.native.shield() as self._lent_scope:
                    result = await self.actor.receive(message)
                if self._lent_scope.cancelled_caught:
                    failure = RuntimeClosedError("the runtime closed during this message")
            else:
                result, failure = await self._held_turn(message)
        except self.spec.survives as error:
            failure = reraisable(error)  # raised as a queued ask's answer is: cause = original
            if failure is not error:
                failure.__cause__ = error
        except Exception as error:
            self._lent_crash = error
            failure = ActorCrashedError(
                f"actor {self.spec.kind}/{self.actor_id} crashed handling "
                f"{type(message).__name__}: {error!r}"
            )
            failure.__cause__ = error
        except BaseException as error:
            # Cancelled or KeyboardInterrupt from inside the turn (Trio delivers Ctrl-C to
            # the main task whatever shields it): the actor may be half-changed, so it
            # restarts as after a crash.
            self._lent_crash = RuntimeError(f"a lent turn was interrupted: {error!r}")
            raise
        finally:
            _IN_TURN.reset(token)
            self._lent = False
            self._lent_scope = None
            if self._lent_done is not None:
                self._lent_done.set()
            elif self._lent_crash is not None and self.mailbox.depth == 0:
                self.mailbox.put_nowait(_WAKE)  # the sleeping loop must recover the actor
        # After the turn, as for a queued ask, also one that failed: a cancelled asker gets
        # Cancelled, and the turn it asked for has run. A schedule point only when the task's
        # budget is spent.
        await cooperate(self.supervisor.native)
        if failure is not None:
            raise failure
        return result

    async def _held_turn(self, message: Any) -> tuple[Any, BaseException | None]:
        """A HELD lent turn on asyncio, where a host may cancel its task past any scope: run
        whole in ``Held``, a cancellation that came meanwhile delivered at the asker's next
        await (after the turn, as Trio delivers one after a shield)."""
        native = self.supervisor.native
        work = self.actor.receive(message)  # type: ignore[union-attr]
        self._lent_scope = held = Held(work, native.inner_cancelled)
        try:
            # Behind an AnyIO shield: a scope around the asker that is cancelled meanwhile
            # waits (instead of cancelling the task again on every pass of the loop), and
            # delivers its cancellation once the shield is left.
            with anyio.CancelScope(shield=True):
                result = await held
            return result, None
        except anyio.get_cancelled_exc_class():
            if not held.cancel_called:
                held.cancelled = None  # the work's own cancellation, raised now: not twice
                raise
            return None, RuntimeClosedError("the runtime closed during this message")
        finally:
            if held.cancelled is not None:
                native.deliver_later(held.cancelled)

    async def _lent_ended(self) -> bool:
        """Wait for a turn run by an asker, and recover the actor if it crashed there;
        False once the actor has failed for good."""
        if self._lent:
            self._lent_done = done = self.supervisor.native.event()
            try:
                await done.wait()
            except anyio.get_cancelled_exc_class():
                # The grace ran out: cut a shielded lent turn as a queued turn is cut, and
                # let it end (a SYNC one has nothing left that waits).
                if self._lent_scope is not None:
                    self._lent_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await done.wait()
                raise
            finally:
                self._lent_done = None
        crash, self._lent_crash = self._lent_crash, None
        return crash is None or await self._recover(crash)

    async def receive_inline(self, message: Any) -> Any:
        """Handle ``message`` within the turn now running (the actor asked itself): its
        answer, or its error raised to the asker."""
        assert self.actor is not None
        self.handled += 1
        self.supervisor.totals.messages_handled += 1
        return await self.actor.receive(message)

    # -- crashes, restarts, stops -----------------------------------------------------------

    async def _recover(self, error: BaseException) -> bool:
        """Restart after a crash if the policy allows; False once the actor has failed."""
        log.error("%s/%s crashed: %r", *self.key, error)
        while True:
            if self.spec.restart is Restart.TEMPORARY:
                self._fail(f"crashed (temporary actor, not restarted): {error!r}", error)
                return False
            now = anyio.current_time()
            window = self.spec.intensity
            while self.restart_times and now - self.restart_times[0] > window.period:
                self.restart_times.pop(0)
            if len(self.restart_times) >= window.max_restarts:
                self._fail(
                    f"crashed {len(self.restart_times) + 1} times within {window.period}s: "
                    f"{error!r}",
                    error,
                )
                return False
            if self.restart_times:
                exponent = len(self.restart_times) - 1
                await anyio.sleep(min(window.backoff * math.pow(2, exponent), window.max_backoff))
            self.restart_times.append(anyio.current_time())
            self.restarts += 1
            self.supervisor.totals.restarts += 1
            self.supervisor._crashed(self)
            self._drop_timers()
            self.state = "activating"
            try:
                await self._start_instance()
                return True
            except _Crash as crash:
                error = crash.error

    async def _obey_requests(self) -> bool:
        """Carry out pending requests; False when the loop must end."""
        if "shutdown" in self.requests:
            await self._flush("stopped")
            self._reject_queued(RuntimeClosedError("the runtime closed before this message ran"))
            return False
        if "evict" in self.requests:
            # Its placement was lost (another node serves it now): stop even with mail queued;
            # the senders ask again and reach the actor's new home.
            await self._flush("stopped")
            self._reject_queued(
                SessionMovedError(
                    f"{self.spec.kind}/{self.actor_id} moved to another node before this "
                    "message ran; ask again"
                )
            )
            return False
        if "restart" in self.requests:
            self.requests.remove("restart")
            await self._flush("activating")
            return await self._fresh_instance()
        if "passivate" in self.requests:
            self.requests.remove("passivate")
        if self._has_mail():
            return True  # mail arrived: not idle any more
        await self._flush("passivating")
        if self._has_mail():
            # Mail arrived while flushing: come back to life instead of dropping it.
            return await self._fresh_instance()
        self.state = "stopped"
        self.supervisor.totals.passivations += 1
        return False

    async def _fresh_instance(self) -> bool:
        """Replace the (flushed) actor with a new instance; False if that fails for good."""
        self._drop_timers()
        try:
            await self._start_instance()
        except _Crash as crash:
            return await self._recover(crash.error)
        return True

    async def _flush(self, state: str) -> None:
        self.state = state
        actor = self.actor
        if actor is None:
            return
        # Shielded so a closing runtime still lets the actor save, but bounded so an on_stop
        # that hangs cannot hold shutdown (or a passivation) forever.
        deadline = anyio.current_time() + self.spec.flush_timeout
        with anyio.CancelScope(shield=True, deadline=deadline) as scope:
            try:
                await actor.on_stop()
            except Exception as error:
                log.error("%s/%s: on_stop raised %r", *self.key, error)
        if scope.cancelled_caught:
            log.error("%s/%s: on_stop overran %ss", *self.key, self.spec.flush_timeout)

    def _fail(self, reason: str, error: BaseException) -> None:
        self.state = "failed"
        self.failure = reason
        self.supervisor.totals.failures += 1
        failed = ActorFailedError(f"actor {self.spec.kind}/{self.actor_id} failed: {reason}")
        failed.__cause__ = error
        self._reject_queued(failed)

    def _reject_queued(self, error: BaseException) -> None:
        self.backlog.extend(self.mailbox.drain())
        while self.backlog:
            _, slot = self.backlog.pop(0)
            if slot is not None:
                slot.fail(error)

    # -- timers -----------------------------------------------------------------------------

    def start_timer(self, name: str, delay: float, interval: float | None) -> None:
        """Deliver ``TimerFired(name)`` after ``delay`` (then every ``interval``)."""
        self.cancel_timer(name)
        scope = anyio.CancelScope()
        if self._timers is None:
            self._timers = {}
        self._timers[name] = scope
        # Timer tasks live in the supervisor's nursery: a cell needs no nursery of its own.
        self.supervisor.spawn_system_task(self._timer, name, delay, interval, scope)

    def cancel_timer(self, name: str) -> None:
        """Stop the timer ``name`` if it runs."""
        scope = None if self._timers is None else self._timers.pop(name, None)
        if scope is not None:
            scope.cancel()

    def _drop_timers(self) -> None:
        for name in list(self._timers or ()):
            self.cancel_timer(name)

    async def _timer(
        self, name: str, delay: float, interval: float | None, scope: anyio.CancelScope
    ) -> None:
        with scope:
            await anyio.sleep(delay)
            while True:
                await self.mailbox.put((TimerFired(name), None))
                if interval is None:
                    break
                await anyio.sleep(interval)
        if self._timers is not None and self._timers.get(name) is scope:
            del self._timers[name]
