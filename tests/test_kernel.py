"""The actor kernel: turns, ask/tell, backpressure, crashes, restarts, passivation."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

from satchel import (
    ActorCrashedError,
    ActorFailedError,
    ActorNotFoundError,
    MailboxFullError,
    RuntimeClosedError,
    ValidationError,
)
from satchel.runtime import (
    Actor,
    ActorRef,
    ActorSpec,
    Intensity,
    MemoryReminders,
    Restart,
    Strategy,
    Supervisor,
    TimerFired,
    open_supervisor,
)

from .kernel_actors import (
    Add,
    AddTwiceViaSelf,
    Boom,
    Counter,
    Get,
    Invalid,
    Sleep,
    Tick,
    World,
    counter_spec,
)


@asynccontextmanager
async def running(world: World, **options: Any) -> AsyncIterator[Supervisor]:
    """A supervisor with the counter kind registered (spec options in ``options``)."""
    sup_options = {k: options.pop(k) for k in ("strategy", "resident_cap") if k in options}
    async with open_supervisor(**sup_options) as supervisor:
        supervisor.register(counter_spec(world, **options))
        yield supervisor


def counter(supervisor: Supervisor, actor_id: str = "a") -> ActorRef:
    """The ref of one counter."""
    return supervisor.ref("counter", actor_id)


async def test_ask_answers_and_tell_is_ordered() -> None:
    """Told messages are handled in order before a later ask is answered."""
    world = World()
    async with running(world) as sup:
        ref = counter(sup)
        for n in (1, 2, 3):
            await ref.tell(Add(n))
        assert await ref.ask(Get()) == 6


async def test_an_actor_asking_itself_is_answered_inline() -> None:
    """An actor that asks its own ref within a turn gets the answers in that turn (queued,
    they would wait for the turn that waits for them); other tasks' asks still queue."""
    world = World()
    async with running(world) as sup:
        ref = counter(sup)
        with anyio.fail_after(5):
            assert await ref.ask(AddTwiceViaSelf(ref, 2)) == 4
        assert await ref.ask(Get()) == 4
        stats = sup.inspect("counter", "a")
        assert stats.messages_handled == 4


async def test_unknown_kind_is_refused() -> None:
    """A ref to a kind nobody registered is an ActorNotFoundError."""
    async with running(World()) as sup:
        with pytest.raises(ActorNotFoundError, match="no actor kind 'nope'"):
            sup.ref("nope", "x")


async def test_backpressure_and_try_tell(autojump_clock: None) -> None:
    """A full mailbox makes tell wait and try_tell raise MailboxFullError."""
    world = World()
    async with running(world, mailbox_capacity=2) as sup:
        ref = counter(sup)
        await ref.ask(Get())
        await ref.tell(Sleep(100))
        await anyio.sleep(1)  # the actor is now inside the sleep turn
        await ref.tell(Add(1))
        await ref.tell(Add(1))
        with pytest.raises(MailboxFullError, match="counter/a"):
            await ref.try_tell(Add(1))
        with anyio.move_on_after(10) as waited:
            await ref.tell(Add(1))
        assert waited.cancelled_caught
        assert sup.inspect("counter", "a").mailbox_depth == 2
        assert await ref.ask(Get()) == 2


async def test_survivable_error_reaches_asker_with_cause() -> None:
    """A domain error is re-raised in the asker with the original as cause; no restart."""
    world = World()
    async with running(world) as sup:
        ref = counter(sup)
        await ref.ask(Add(5))
        with pytest.raises(ValidationError, match="a: invalid") as caught:
            await ref.ask(Invalid())
        assert isinstance(caught.value.__cause__, ValidationError)
        assert caught.value.__cause__ is not caught.value
        assert await ref.ask(Get()) == 5
        assert sup.inspect("counter", "a").restarts == 0


async def test_crash_restarts_with_persisted_state() -> None:
    """A crash answers ActorCrashedError and the restarted actor reloads its saved state."""
    world = World()
    async with running(world) as sup:
        ref = counter(sup)
        await ref.ask(Add(7))
        with pytest.raises(ActorCrashedError, match="crashed handling Boom") as caught:
            await ref.ask(Boom())
        assert isinstance(caught.value.__cause__, RuntimeError)
        assert await ref.ask(Get()) == 7
        assert (sup.inspect("counter", "a").restarts, world.starts) == (1, ["a", "a"])


async def test_queued_messages_survive_a_restart() -> None:
    """Messages queued behind the one that crashed are all handled after the restart."""
    world = World()
    async with running(world) as sup:
        ref = counter(sup)
        await ref.ask(Get())
        await ref.tell(Boom())
        for _ in range(10):
            await ref.tell(Add(1))
        assert await ref.ask(Get()) == 10


async def test_intensity_exceeded_fails_only_that_actor(autojump_clock: None) -> None:
    """Past max restarts the actor fails with its reason; backoff doubles; others go on."""
    world = World()
    policy = Intensity(max_restarts=2, period=60, backoff=1, max_backoff=10)
    async with running(world, intensity=policy) as sup:
        bad, good = counter(sup, "bad"), counter(sup, "good")
        await good.ask(Add(1))
        start = anyio.current_time()
        for _ in range(3):
            with pytest.raises((ActorCrashedError, ActorFailedError)):
                await bad.ask(Boom())
        await anyio.lowlevel.checkpoint()
        stats = sup.inspect("counter", "bad")
        assert (stats.state, stats.restarts) == ("failed", 2)
        assert stats.failure is not None and "3 times" in stats.failure
        assert anyio.current_time() - start == pytest.approx(1.0)  # 0 then 1 s of backoff
        with pytest.raises(ActorFailedError, match="restart it"):
            await bad.ask(Get())
        assert await good.ask(Add(1)) == 2
        sup.clear_failure("counter", "bad")
        assert await bad.ask(Get()) == 0


async def test_temporary_actor_is_not_restarted() -> None:
    """A temporary actor fails at its first crash."""
    world = World()
    async with running(world, restart=Restart.TEMPORARY) as sup:
        ref = counter(sup)
        with pytest.raises(ActorCrashedError):
            await ref.ask(Boom())
        await anyio.lowlevel.checkpoint()
        assert sup.inspect("counter", "a").state == "failed"


async def test_on_start_failure_reaches_the_first_sender() -> None:
    """If restoring state fails, the caller gets ActorFailedError caused by it; others go on."""
    world = World(fail_start={"a"})
    async with running(world) as sup:
        with pytest.raises(ActorFailedError, match="could not start") as caught:
            await counter(sup).ask(Get())
        assert isinstance(caught.value.__cause__, OSError)
        assert sup.inspect("counter", "a").state == "failed"
        assert await counter(sup, "b").ask(Add(1)) == 1


async def test_late_reply_is_dropped(autojump_clock: None) -> None:
    """An asker that gives up is not disturbed by the answer arriving later."""
    world = World()
    async with running(world) as sup:
        ref = counter(sup)
        with pytest.raises(TimeoutError):
            with anyio.fail_after(1):
                await ref.ask(Sleep(5))
        await anyio.sleep(10)
        assert await ref.ask(Add(1)) == 1


async def test_idle_actor_passivates_and_comes_back(autojump_clock: None) -> None:
    """An idle actor flushes and stops after its timeout; its next message reactivates it."""
    world = World()
    async with running(world, idle_timeout=30) as sup:
        ref = counter(sup)
        await ref.ask(Add(3))
        await anyio.sleep(29)
        assert [s.id for s in sup.live()] == ["a"]
        await anyio.sleep(2)
        assert (sup.live(), world.stops) == ([], ["a"])
        assert await ref.ask(Add(1)) == 4
        assert world.starts == ["a", "a"]
        assert sup.statistics().passivations == 1


async def test_resident_cap_passivates_least_recent() -> None:
    """Beyond the resident cap the least recently active idle actors are passivated."""
    world = World()
    async with running(world, resident_cap=3, idle_timeout=None) as sup:
        for name in "abcde":
            await counter(sup, name).ask(Add(1))
        await counter(sup, "a").ask(Get())
        for name in "fg":
            await counter(sup, name).ask(Add(1))
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        assert sorted(s.id for s in sup.live()) == ["a", "f", "g"]
        assert await counter(sup, "b").ask(Get()) == 1


async def test_concurrent_first_messages_activate_once() -> None:
    """Many concurrent first messages to one id start exactly one actor."""
    world = World()
    answers: list[int] = []
    async with running(world) as sup:

        async def add() -> None:
            answers.append(await counter(sup, "x").ask(Add(1)))

        async with anyio.create_task_group() as nursery:
            for _ in range(200):
                nursery.start_soon(add)
        assert (world.starts, sorted(answers)) == (["x"], list(range(1, 201)))
        assert sup.statistics().activations == 1


async def test_one_for_all_restarts_every_sibling() -> None:
    """With one_for_all, one crash restarts every live actor (siblings flush first)."""
    world = World()
    async with running(world, strategy=Strategy.ONE_FOR_ALL) as sup:
        for name in "abc":
            await counter(sup, name).ask(Add(1))
        with pytest.raises(ActorCrashedError):
            await counter(sup, "b").ask(Boom())
        for name in "abc":
            assert await counter(sup, name).ask(Get()) == 1
        assert sorted(world.starts) == ["a", "a", "b", "b", "c", "c"]
        assert sorted(world.stops) == ["a", "c"]


async def test_rest_for_one_restarts_later_siblings() -> None:
    """With rest_for_one, a crash restarts the actors activated after the one that crashed."""
    world = World()
    async with running(world, strategy=Strategy.REST_FOR_ONE) as sup:
        for name in "abc":
            await counter(sup, name).ask(Add(1))
        with pytest.raises(ActorCrashedError):
            await counter(sup, "b").ask(Boom())
        for name in "abc":
            await counter(sup, name).ask(Get())
        assert sorted(world.starts) == ["a", "b", "b", "c", "c"]


async def test_interval_timer_fires_until_passivation(autojump_clock: None) -> None:
    """A volatile timer delivers TimerFired each interval and is dropped by passivation."""
    world = World()
    async with running(world, idle_timeout=None) as sup:
        ref = counter(sup)
        await ref.ask(Tick(every=10))
        await anyio.sleep(35)
        assert world.events == [("a", TimerFired("tick"))] * 3
        sup.request("counter", "a", "passivate")
        await anyio.sleep(100)
        assert len(world.events) == 3


async def test_shutdown_finishes_turn_and_rejects_queue(autojump_clock: None) -> None:
    """Closing lets the current turn finish, flushes, and fails what was still queued."""
    world = World()
    results: list[object] = []

    async def ask(ref: ActorRef, message: object) -> None:
        try:
            results.append(await ref.ask(message))
        except RuntimeClosedError as error:
            results.append(type(error))

    async with open_supervisor(grace=60) as sup:
        sup.register(counter_spec(world))
        ref = counter(sup)
        await ref.ask(Get())
        async with anyio.create_task_group() as nursery:
            nursery.start_soon(ask, ref, Sleep(5))
            await anyio.sleep(1)
            nursery.start_soon(ask, ref, Add(1))
            await anyio.sleep(1)
            await sup.aclose(grace=60)
    assert sorted(results, key=str) == sorted(["slept", RuntimeClosedError], key=str)
    assert world.stops == ["a"]
    with pytest.raises(RuntimeClosedError):
        await ref.tell(Get())


async def test_statistics_count_turns_and_peaks(autojump_clock: None) -> None:
    """Actor statistics report handled messages, mailbox peak and activations."""
    world = World()
    async with running(world) as sup:
        ref = counter(sup)
        await ref.ask(Get())
        await ref.tell(Sleep(1))
        await anyio.sleep(0.5)  # the actor is inside the sleep turn
        for _ in range(5):
            await ref.tell(Add(1))
        await ref.ask(Get())
        stats = sup.inspect("counter", "a")
        assert (stats.messages_handled, stats.mailbox_peak, stats.activations) == (8, 6, 1)
        assert (stats.mailbox_depth, stats.state) == (0, "running")
        assert sup.statistics().messages_handled == 8


async def test_reminder_survives_restart_and_coalesces(autojump_clock: None) -> None:
    """A durable reminder outlives its supervisor, reactivates the actor, and coalesces."""
    world = World()
    store = MemoryReminders()
    async with open_supervisor(reminder_store=store) as sup:
        sup.register(counter_spec(world))
        now = sup.clock()
        await sup.reminders.set("counter", "a", "daily", now + 100, 50)
        assert sup.live() == []
    await anyio.sleep(1000)  # the process is "down" for a while: ticks are missed
    async with open_supervisor(reminder_store=store) as sup:
        sup.register(counter_spec(world))
        await anyio.sleep(1)
        assert len(world.events) == 1
        _, fired = world.events[0]
        assert (fired.name, fired.due, fired.missed) == ("daily", now + 100, 18)
        assert [s.id for s in sup.live()] == ["a"]
        await anyio.sleep(50)
        assert len(world.events) == 2
        assert world.events[1][1].missed == 0
        await sup.reminders.cancel("counter", "a", "daily")
    assert (await store.load_reminders()) == []


async def test_transient_actor_restarts_after_crash() -> None:
    """A transient actor is restarted after a crash (it only stays down after a normal stop)."""
    world = World()
    async with running(world, restart=Restart.TRANSIENT) as sup:
        ref = counter(sup)
        await ref.ask(Add(2))
        with pytest.raises(ActorCrashedError):
            await ref.ask(Boom())
        assert await ref.ask(Get()) == 2
        assert sup.inspect("counter", "a").restarts == 1


async def test_restart_request_flushes_and_reloads() -> None:
    """A restart asked for from outside flushes the actor and starts a fresh instance."""
    world = World()
    async with running(world) as sup:
        ref = counter(sup)
        await ref.ask(Add(3))
        sup.request("counter", "a", "restart")
        assert await ref.ask(Get()) == 3
        assert (world.starts, world.stops) == (["a", "a"], ["a"])


async def test_sender_blocked_on_full_mailbox_is_released_at_shutdown(
    autojump_clock: None,
) -> None:
    """An ask waiting for mailbox room gets RuntimeClosedError, not a hang, at shutdown."""
    world = World()
    outcomes: list[object] = []
    async with open_supervisor(grace=60) as sup:
        sup.register(counter_spec(world, mailbox_capacity=1))
        ref = counter(sup)
        await ref.ask(Get())
        await ref.tell(Sleep(5))
        await anyio.sleep(1)
        await ref.tell(Add(1))

        async def blocked() -> None:
            try:
                await ref.ask(Add(1))
                outcomes.append("answered")
            except RuntimeClosedError:
                outcomes.append("closed")

        async with anyio.create_task_group() as nursery:
            nursery.start_soon(blocked)
            await anyio.sleep(1)
            await sup.aclose(grace=60)
    assert outcomes == ["closed"]


async def test_factory_error_on_restart_fails_only_that_actor(
    autojump_clock: None,
) -> None:
    """A factory that raises when an actor restarts fails that actor, not the runtime."""
    world = World()
    calls: list[str] = []

    def factory(actor_id: str) -> Counter:
        calls.append(actor_id)
        if actor_id == "a" and len([c for c in calls if c == "a"]) > 1:
            raise OSError("config unavailable")
        return Counter(world, actor_id)

    async with open_supervisor() as sup:
        sup.register(ActorSpec(kind="counter", factory=factory, restart=Restart.TEMPORARY))
        sup.register(ActorSpec(kind="again", factory=factory))
        with pytest.raises(ActorCrashedError):
            await sup.ref("again", "a").ask(Boom())
        await anyio.sleep(10)  # past every backoff
        assert sup.inspect("again", "a").state == "failed"
        assert await sup.ref("counter", "b").ask(Add(1)) == 1


async def test_caller_giving_up_does_not_abandon_activation(
    autojump_clock: None,
) -> None:
    """A first sender that times out during on_start does not abandon it for other senders."""
    world = World()
    slow = Counter(world, "a")

    async def slow_start() -> None:
        await anyio.sleep(10)

    slow.on_start = slow_start  # type: ignore[method-assign]
    async with open_supervisor() as sup:
        sup.register(ActorSpec(kind="counter", factory=lambda _: slow))
        ref = sup.ref("counter", "a")
        answers: list[int] = []

        async def patient() -> None:
            await anyio.sleep(1)
            answers.append(await ref.ask(Add(2)))

        async with anyio.create_task_group() as nursery:
            nursery.start_soon(patient)
            with anyio.move_on_after(2):
                await ref.ask(Add(1))
        assert answers == [2]  # the impatient sender's message was never delivered


async def test_reminder_for_actor_that_cannot_start_is_kept(
    autojump_clock: None,
) -> None:
    """A reminder whose actor fails to start is logged and kept; the runtime goes on."""
    world = World(fail_start={"bad"})
    store = MemoryReminders()
    async with open_supervisor(reminder_store=store) as sup:
        sup.register(counter_spec(world))
        await sup.reminders.set("counter", "bad", "r", sup.clock() + 5, None)
        await anyio.sleep(10)
        assert await counter(sup, "good").ask(Add(1)) == 1
    assert [r.name for r in (await store.load_reminders())] == ["r"]


async def test_ask_in_flight_when_grace_runs_out(autojump_clock: None) -> None:
    """An ask whose turn is cancelled at the end of the grace period gets RuntimeClosedError."""
    world = World()
    outcome: list[object] = []
    async with anyio.create_task_group() as outer, open_supervisor(grace=1) as sup:
        sup.register(counter_spec(world))
        ref = counter(sup)
        await ref.ask(Get())

        async def ask() -> None:
            try:
                outcome.append(await ref.ask(Sleep(100)))
            except RuntimeClosedError as error:
                outcome.append(type(error))

        outer.start_soon(ask)
        await anyio.sleep(1)
    assert outcome == [RuntimeClosedError]


async def test_one_shot_reminder_not_yet_handled_survives_shutdown(
    autojump_clock: None,
) -> None:
    """A reminder that fired but was still queued at shutdown fires again on the next run."""
    world = World()
    store = MemoryReminders()
    async with open_supervisor(reminder_store=store, grace=1) as sup:
        sup.register(counter_spec(world))
        ref = counter(sup)
        await ref.tell(Sleep(50))
        await sup.reminders.set("counter", "a", "once", sup.clock() + 5, None)
        await anyio.sleep(10)
    assert [r.name for r in (await store.load_reminders())] == ["once"]
    async with open_supervisor(reminder_store=store) as sup:
        sup.register(counter_spec(world))
        await anyio.sleep(1)
    assert [e[1].name for e in world.events] == ["once"]
    assert (await store.load_reminders()) == []


async def test_hanging_on_stop_is_bounded(autojump_clock: None) -> None:
    """An on_stop that never returns is abandoned after flush_timeout, so shutdown ends."""
    world = World()
    stuck = Counter(world, "a")

    async def never() -> None:
        await anyio.sleep_forever()

    stuck.on_stop = never  # type: ignore[method-assign]
    start = anyio.current_time()
    async with open_supervisor(grace=60) as sup:
        sup.register(ActorSpec(kind="counter", factory=lambda _: stuck, flush_timeout=3))
        await sup.ref("counter", "a").ask(Get())
    assert anyio.current_time() - start == pytest.approx(3)


async def test_reminder_an_actor_crashed_on_is_fired_again(
    autojump_clock: None,
) -> None:
    """A one-shot reminder whose handler crashed is fired again and only then forgotten."""
    world = World(crash_on_reminders=1)
    store = MemoryReminders()
    async with open_supervisor(reminder_store=store) as sup:
        sup.register(counter_spec(world))
        await sup.reminders.set("counter", "a", "once", sup.clock() + 5, None)
        await anyio.sleep(6)
        assert world.events == [] and [r.name for r in (await store.load_reminders())] == ["once"]
        await anyio.sleep(10)
        assert [e[1].name for e in world.events] == ["once"]
    assert (await store.load_reminders()) == []


class _Gated(Actor[str]):
    """Records each message; the message ``hold`` waits for the gate first."""

    def __init__(self, gate: anyio.Event, seen: list[str]) -> None:
        self.gate = gate
        self.seen = seen

    async def receive(self, message: str) -> None:
        if message == "hold":
            await self.gate.wait()
        self.seen.append(message)


@asynccontextmanager
async def full_mailbox(
    gate: anyio.Event, seen: list[str]
) -> AsyncIterator[tuple[ActorRef, anyio.abc.TaskGroup]]:
    """A gated actor of mailbox capacity 1, busy with "hold" (until ``gate``), its mailbox
    full with "first"; and a task group for the test's senders."""
    async with open_supervisor() as sup:
        sup.register(ActorSpec("gated", lambda _: _Gated(gate, seen), mailbox_capacity=1))
        ref = sup.ref("gated", "x")
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(ref.ask, "hold")
            await anyio.wait_all_tasks_blocked()
            await ref.tell("first")
            yield ref, tasks


async def test_a_sender_waiting_for_room_keeps_its_place() -> None:
    """Room freed in a full mailbox goes to the sender already waiting for it: a message
    offered later without waiting is refused, not slipped in ahead."""
    gate, seen = anyio.Event(), []

    async with full_mailbox(gate, seen) as (ref, tasks):

        async def late() -> None:
            try:
                await ref.try_tell("late")
            except MailboxFullError:
                seen.append("late refused")

        tasks.start_soon(ref.tell, "waiting")
        await anyio.wait_all_tasks_blocked()
        gate.set()  # "hold" ends; the loop takes "first": room for "waiting"
        tasks.start_soon(late)
    await anyio.wait_all_tasks_blocked()
    handled = [m for m in seen if m != "late refused"]
    assert handled in (["hold", "first", "waiting"], ["hold", "first", "waiting", "late"])


async def test_a_waiting_sender_is_not_starved_by_senders_that_do_not_wait() -> None:
    """A tell waiting for room is delivered although another task offers a message every
    scheduler pass (each used to take the room first)."""
    gate, seen = anyio.Event(), []

    async with full_mailbox(gate, seen) as (ref, tasks):

        async def offer_forever() -> None:
            while True:
                with contextlib.suppress(MailboxFullError):
                    await ref.try_tell("offered")
                await anyio.lowlevel.checkpoint()

        tasks.start_soon(offer_forever)
        gate.set()
        with anyio.fail_after(5):  # it waited forever behind the offers
            await ref.tell("waiting")
        tasks.cancel_scope.cancel()
