"""Lent turns: an ask whose turn the idle actor lets the asker run in its own task."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
import anyio.lowlevel
import attrs
import pytest

from satchel import ActorCrashedError, RuntimeClosedError, ValidationError
from satchel.runtime import (
    Actor,
    ActorRef,
    ActorSpec,
    Lending,
    Supervisor,
    current_native,
    open_supervisor,
)
from satchel.runtime._budget import LENT_TURNS_PER_YIELD

from .kernel_actors import Add, Boom, Counter, Get, Invalid, Sleep, World


class LendingCounter(Counter):
    """A counter that lends every turn but ``Add`` (``Get`` without a shield, as it never
    suspends) and records the task running each."""

    def __init__(self, world: World, actor_id: str) -> None:
        super().__init__(world, actor_id)
        self.tasks: list[object] = []

    def lending(self, message: Any) -> Lending:
        if isinstance(message, Add):
            return Lending.NO
        return Lending.SYNC if isinstance(message, Get) else Lending.SHIELDED

    async def receive(self, message: Any) -> Any:
        self.tasks.append(current_native().current_task())
        self.world.events.append(("start", message))
        try:
            return await super().receive(message)
        finally:
            self.world.events.append(("end", message))


@asynccontextmanager
async def lending(
    world: World, counter: type[LendingCounter] = LendingCounter
) -> AsyncIterator[tuple[Supervisor, ActorRef]]:
    """A supervisor with one live lending counter ``a`` (of class ``counter``)."""
    async with open_supervisor() as supervisor:
        supervisor.register(
            ActorSpec(kind="lender", factory=lambda actor_id: counter(world, actor_id))
        )
        ref = supervisor.ref("lender", "a")
        await ref.ask(Add(0))  # not lendable: live, and idle once it answers
        yield supervisor, ref


def actor_of(supervisor: Supervisor) -> LendingCounter:
    cell = supervisor.resident(("lender", "a"))
    assert cell is not None and isinstance(cell.actor, LendingCounter)
    return cell.actor


@asynccontextmanager
async def ticking() -> AsyncIterator[list[int]]:
    """A task counting its turns in ``[0]`` (each one scheduler pass), while the block runs."""
    ticks = [0]

    async def ticker() -> None:
        while True:
            ticks[0] += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as nursery:
        nursery.start_soon(ticker)
        yield ticks
        nursery.cancel_scope.cancel()


async def test_idle_actor_lends_the_turn_to_the_asker() -> None:
    """A lendable ask to an idle actor runs in the asking task and counts as a turn."""
    async with lending(World()) as (sup, ref):
        assert await ref.ask(Get()) == 0
        assert actor_of(sup).tasks[-1] is current_native().current_task()
        await ref.ask(Add(2))  # not lendable: the actor's own task runs it
        assert actor_of(sup).tasks[-1] is not current_native().current_task()
        assert sup.inspect("lender", "a").messages_handled == 3


async def test_admit_answers_an_ask_without_starting_the_actor() -> None:
    """A kind's ``admit`` that refuses an ask answers it with its error and starts no actor;
    once an actor is live, or for a ``tell``, ``admit`` is not asked."""
    world = World()
    admitted: list[tuple[str, Any]] = []

    async def admit(actor_id: str, message: Any) -> None:
        admitted.append((actor_id, message))
        if actor_id == "nobody":
            raise ValidationError(f"no actor {actor_id}")

    async with open_supervisor() as supervisor:
        supervisor.register(
            ActorSpec(kind="c", factory=lambda actor_id: Counter(world, actor_id), admit=admit)
        )
        with pytest.raises(ValidationError, match="no actor nobody"):
            await supervisor.ref("c", "nobody").ask(Get())
        assert world.starts == [] and not supervisor.is_live("c", "nobody")
        assert supervisor.totals.activations == 0
        assert await supervisor.ref("c", "a").ask(Add(2)) == 2
        assert await supervisor.ref("c", "a").ask(Get()) == 2  # live: not asked again
        await supervisor.ref("c", "b").tell(Add(1))
        assert admitted == [("nobody", Get()), ("a", Add(2))]
        assert world.starts == ["a", "b"]


async def test_mail_arriving_during_a_lent_turn_waits_for_it(
    autojump_clock: None,
) -> None:
    """Messages sent while an asker runs a turn are handled after that turn, in order."""
    world = World()
    async with lending(world) as (_, ref), anyio.create_task_group() as nursery:
        nursery.start_soon(ref.ask, Sleep(10))
        await anyio.sleep(1)  # inside the lent turn now
        await ref.tell(Add(1))
        assert await ref.ask(Get()) == 1  # not lent (the actor is busy): queued behind
        starts = [type(message).__name__ for kind, message in world.events if kind == "start"]
        assert starts[-3:] == ["Sleep", "Add", "Get"]
        assert world.events.index(("end", Sleep(10))) < world.events.index(("start", Add(1)))


async def test_survivable_error_of_a_lent_turn_reaches_the_asker() -> None:
    """A domain error in a lent turn is raised in the asker with the original as cause."""
    async with lending(World()) as (sup, ref):
        with pytest.raises(ValidationError, match="a: invalid") as caught:
            await ref.ask(Invalid())
        assert isinstance(caught.value.__cause__, ValidationError)
        assert sup.inspect("lender", "a").restarts == 0


async def test_crash_in_a_lent_turn_restarts_the_actor() -> None:
    """A crash in a lent turn answers ActorCrashedError and the actor restarts from its state."""
    world = World()
    async with lending(world) as (sup, ref):
        await ref.ask(Add(7))
        with pytest.raises(ActorCrashedError, match="crashed handling Boom") as caught:
            await ref.ask(Boom())
        assert isinstance(caught.value.__cause__, RuntimeError)
        with anyio.fail_after(5):
            assert await ref.ask(Get()) == 7
        assert sup.inspect("lender", "a").restarts == 1
        assert world.starts == ["a", "a"]


async def test_cancelled_asker_does_not_cut_a_lent_turn(autojump_clock: None) -> None:
    """An asker whose deadline passes mid-turn is cancelled after the turn, which ran whole
    (on asyncio, where a host may cancel its task through any shield, a turn that may
    suspend is queued instead: the asker leaves at its deadline and the turn runs whole)."""
    world = World()
    async with lending(world) as (_, ref):
        start = anyio.current_time()
        with anyio.move_on_after(1) as scope:
            await ref.ask(Sleep(10))
        assert scope.cancelled_caught
        if not current_native().shields_host_tasks:
            assert anyio.current_time() - start == pytest.approx(1)
            await anyio.sleep(9.5)
        assert ("end", Sleep(10)) in world.events
        assert anyio.current_time() - start >= 10


async def test_passivation_waits_for_a_lent_turn(autojump_clock: None) -> None:
    """A passivation requested during a lent turn flushes the actor only after the turn."""
    world = World()
    async with lending(world) as (sup, ref), anyio.create_task_group() as nursery:
        nursery.start_soon(ref.ask, Sleep(10))
        await anyio.sleep(1)
        with anyio.fail_after(20):
            await sup.stop("lender", "a")  # returns once the actor is flushed and gone
        assert anyio.current_time() >= 10
        assert world.events.index(("end", Sleep(10))) < len(world.events)
        assert world.stops == ["a"]
        assert sup.resident(("lender", "a")) is None


async def test_lent_asks_in_a_loop_let_other_tasks_run() -> None:
    """A task asking in a loop yields to the scheduler at least every LENT_TURNS_PER_YIELD
    lent turns, and checks for cancellation after every one."""
    async with lending(World()) as (_, ref):
        gaps: list[int] = []
        async with ticking() as ticks:
            last, since = ticks[0], 0
            for _ in range(10 * LENT_TURNS_PER_YIELD):
                await ref.ask(Get())
                since += 1
                if ticks[0] != last:
                    gaps.append(since)
                    last, since = ticks[0], 0
        # A yield lets the ticker run in the next batch, before or after the asker's next
        # stretch of turns (Trio may run a batch in either order).
        assert LENT_TURNS_PER_YIELD <= 32  # a few hundred microseconds of turns at most
        assert gaps and max(gaps) <= 2 * LENT_TURNS_PER_YIELD
        assert len(gaps) <= 11  # and rare: about one per budget, not one per ask

        with anyio.CancelScope() as scope:
            scope.cancel()
            await ref.ask(Get())  # the turn runs, then the asker sees Cancelled
            pytest.fail("a cancelled asker returned from a lent ask")
        assert scope.cancelled_caught


async def test_a_new_tasks_first_lent_asks_are_no_schedule_points() -> None:
    """A task's budget starts full, whatever its parent spent of its own: its first
    LENT_TURNS_PER_YIELD - 1 lent asks let no other task run, and it yields only on every
    LENT_TURNS_PER_YIELD-th, in each fresh task."""
    per = LENT_TURNS_PER_YIELD
    async with lending(World()) as (_, ref), ticking() as ticks:
        await anyio.lowlevel.checkpoint()  # the ticker has started
        for _ in range(2):
            for _ in range(5):  # the spawning task spends part of its own budget
                await ref.ask(Get())
            yielded: list[bool] = []

            async def asker(yielded: list[bool]) -> None:
                for _ in range(2 * per + 3):
                    before = ticks[0]
                    await ref.ask(Get())
                    yielded.append(ticks[0] != before)

            async with anyio.create_task_group() as nursery:
                nursery.start_soon(asker, yielded)
            # (Trio may run the ticker after the asker in the batch a yield starts, so the
            # ticker's turn may show only at the asker's next yield.)
            assert yielded[: per - 1] == [False] * (per - 1)
            assert any(yielded)
            assert all((i + 1) % per == 0 for i, moved in enumerate(yielded) if moved)


async def test_a_lent_ask_that_fails_is_a_cancellation_point_too() -> None:
    """A lent ask ending in the actor's error checks for cancellation, and asks failing in a
    loop still let other tasks run, as asks that succeed do."""
    async with lending(World()) as (_, ref):
        with anyio.CancelScope() as scope:
            scope.cancel()
            await ref.ask(Invalid())
        assert scope.cancelled_caught
        async with ticking() as ticks:
            await anyio.lowlevel.checkpoint()
            start = ticks[0]
            for _ in range(4 * LENT_TURNS_PER_YIELD):
                with pytest.raises(ValidationError):
                    await ref.ask(Invalid())
            assert ticks[0] - start >= 2


class _Transfer(Actor[Any]):
    """Moves one unit from ``a`` to ``b`` around an ask of another actor (a lent turn that
    does suspend, though declared SYNC)."""

    def __init__(self) -> None:
        self.a, self.b = 10, 0

    def lending(self, message: Any) -> Lending:
        return Lending.SYNC

    async def receive(self, message: Any) -> Any:
        if isinstance(message, ActorRef):
            self.a -= 1
            await message.ask("ping")
            self.b += 1
            return None
        return "pong" if message == "ping" else (self.a, self.b)


async def test_a_lent_turn_cut_by_cancellation_restarts_the_actor() -> None:
    """Cancelled out of the middle of a lent turn, the actor is restarted as after a crash
    rather than left half-changed."""
    async with open_supervisor() as supervisor:
        supervisor.register(ActorSpec(kind="acct", factory=lambda _: _Transfer()))
        x, y = supervisor.ref("acct", "x"), supervisor.ref("acct", "y")
        await x.ask("get")
        await y.ask("get")
        with anyio.CancelScope() as scope:
            scope.cancel()
            await x.ask(y)
        assert await x.ask("get") == (10, 0)  # a fresh actor, not (9, 0)
        assert supervisor.inspect("acct", "x").restarts == 1


async def test_the_grace_cuts_a_shielded_lent_turn_as_a_queued_one(
    autojump_clock: None,
) -> None:
    """When the runtime closes, a shielded lent turn longer than the grace is cut after it,
    and its asker gets RuntimeClosedError, as a queued turn's does."""
    outcome: list[BaseException] = []
    started = anyio.current_time()
    async with anyio.create_task_group() as outer, open_supervisor(grace=1) as supervisor:
        supervisor.register(
            ActorSpec(kind="lender", factory=lambda actor_id: LendingCounter(World(), actor_id))
        )
        ref = supervisor.ref("lender", "a")
        await ref.ask(Add(0))

        async def asker() -> None:
            try:
                await ref.ask(Sleep(10))
            except RuntimeClosedError as error:
                outcome.append(error)

        outer.start_soon(asker)
        await anyio.sleep(0.5)
    assert len(outcome) == 1 and anyio.current_time() - started < 2


class HoldingCounter(LendingCounter):
    """A lending counter whose ``Sleep`` turns are HELD (brief I/O: lent on asyncio too)."""

    def lending(self, message: Any) -> Lending:
        return Lending.HELD if isinstance(message, Sleep) else super().lending(message)


async def test_a_held_turn_runs_whole_in_the_asker_whatever_cancels_it(
    autojump_clock: None,
) -> None:
    """A HELD turn runs in the asker's task, and a cancellation of that task mid-turn (on
    asyncio a native ``Task.cancel``, past any scope) is delivered after the turn ran whole:
    no restart, and the actor answers after it."""
    world = World()
    async with lending(world, HoldingCounter) as (sup, ref):
        asker = current_native().current_task()
        start = anyio.current_time()
        if current_native().name == "asyncio":
            import asyncio

            with pytest.raises(TimeoutError):
                async with asyncio.timeout(1):
                    await ref.ask(Sleep(10))
        else:
            with anyio.move_on_after(1) as scope:
                await ref.ask(Sleep(10))
            assert scope.cancelled_caught
        assert anyio.current_time() - start >= 10
        assert world.events[-2:] == [("start", Sleep(10)), ("end", Sleep(10))]
        assert actor_of(sup).tasks[-1] is asker  # lent, not queued
        assert sup.inspect("lender", "a").restarts == 0
        assert await ref.ask(Get()) == 0


def test_held_work_is_cut_only_by_its_own_cancel() -> None:
    """``Held`` on asyncio: a ``Task.cancel`` of the task awaiting it is kept for later and
    the work goes on; ``Held.cancel`` cuts the work itself."""
    import asyncio

    from satchel.runtime import Held

    async def main() -> tuple[list[str], bool, bool]:
        steps: list[str] = []
        loop = asyncio.get_running_loop()

        async def work(gate: asyncio.Future[None]) -> str:
            steps.append("waiting")
            await gate
            steps.append("done")
            return "result"

        gate = loop.create_future()
        held = Held(work(gate))
        task = asyncio.ensure_future(held)
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.sleep(0)
        gate.set_result(None)
        assert await task == "result"  # the work ran whole; the cancellation was kept
        kept = held.cancelled is not None

        cut = Held(work(loop.create_future()))
        second = asyncio.ensure_future(cut)
        await asyncio.sleep(0)
        cut.cancel()
        try:
            await second
        except asyncio.CancelledError:
            return steps, kept, cut.cancel_called
        raise AssertionError("the cut work finished")

    steps, kept, cut = asyncio.run(main())
    assert steps == ["waiting", "done", "waiting"]
    assert kept and cut


async def _started_then_cut(work: Any, between: Any = lambda: None) -> None:
    """Run ``work`` held (``Held``) in a task of its own, let it start, call ``between()``,
    cut it, and wait for it to end."""
    import asyncio

    from satchel.runtime import Held

    held = Held(work)
    task = asyncio.ensure_future(held)
    await asyncio.sleep(0)
    between()
    held.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_held_work_is_cut_between_two_waits_too() -> None:
    """``Held.cancel`` while the work is between waits (at a bare pass of the loop) cuts it
    at its next step: the cut is not lost for want of an awaited future."""
    import asyncio

    async def main() -> list[str]:
        steps: list[str] = []

        async def work() -> None:
            try:
                for _ in range(1000):
                    await asyncio.sleep(0)  # a bare yield: no future to cancel
                steps.append("ran whole")
            except asyncio.CancelledError:
                steps.append("cut")
                raise

        await _started_then_cut(work())
        return steps

    assert asyncio.run(main()) == ["cut"]


@attrs.frozen
class Run:
    """Run ``work()`` as the turn (HELD by ``Runner``)."""

    work: Any


class Runner(Counter):
    """An actor whose ``Run`` turns are HELD."""

    def lending(self, message: Any) -> Lending:
        return Lending.HELD if isinstance(message, Run) else Lending.NO

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Run):
            return await message.work()
        return await super().receive(message)


async def _runner(supervisor: Supervisor) -> ActorRef:
    supervisor.register(ActorSpec(kind="runner", factory=lambda i: Runner(World(), i)))
    ref = supervisor.ref("runner", "a")
    await ref.ask(Add(0))
    return ref


def test_an_anyio_scope_cancelling_a_held_asker_does_not_cancel_it_on_every_pass() -> None:
    """On asyncio, an AnyIO deadline passing during a HELD turn is delivered once, after
    the turn: the work's awaited future does not pile up a waiter for every pass of the loop
    meanwhile (it did, and the loop spun, before the turn went behind an AnyIO shield)."""
    import asyncio

    async def main() -> tuple[int, bool, str]:
        async with open_supervisor() as supervisor:
            ref = await _runner(supervisor)
            gate = asyncio.get_running_loop().create_future()
            waiters: list[int] = []

            async def work() -> str:
                return cast(str, await gate)

            async def release() -> None:
                await asyncio.sleep(0.05)  # many passes of the loop, in real time
                waiters.append(len(gate._callbacks))  # type: ignore[attr-defined]
                gate.set_result("whole")

            releasing = asyncio.ensure_future(release())
            answer = "cut"
            with anyio.move_on_after(0.001) as scope:
                answer = await ref.ask(Run(work))
            await releasing
            return waiters[0], scope.cancelled_caught, answer

    waiters, caught, answer = asyncio.run(main())
    assert caught and answer == "cut"  # the deadline came, after the turn
    assert waiters <= 2


async def test_a_scope_inside_a_held_turn_still_cancels_its_own_work(
    autojump_clock: None,
) -> None:
    """A deadline inside a HELD turn cuts the work it covers (on asyncio its cancellation is
    passed into the work, not held for the asker)."""
    async with open_supervisor() as supervisor:
        ref = await _runner(supervisor)

        async def work() -> bool:
            with anyio.move_on_after(0.01) as inner:
                await anyio.sleep(0.5)
            return inner.cancelled_caught

        assert await ref.ask(Run(work)) is True


def test_held_work_is_cut_when_its_future_has_just_completed() -> None:
    """``Held.cancel`` right after the awaited future completed (before the work resumed)
    cuts the work where it resumes, as a task's cancellation would: the cut is not lost on a
    future that can no longer be cancelled."""
    import asyncio

    async def main() -> list[str]:
        steps: list[str] = []
        loop = asyncio.get_running_loop()
        first, second = loop.create_future(), loop.create_future()

        async def work() -> None:
            await first
            steps.append("first")
            try:
                await second
                steps.append("second ran whole")
            except asyncio.CancelledError:
                steps.append("cut")
                raise

        loop.call_later(0.01, second.set_result, None)  # a lost cut would wait for it
        await _started_then_cut(work(), lambda: first.set_result(None))
        return steps

    assert asyncio.run(main()) == []
