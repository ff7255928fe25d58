"""Memory comes back when sessions go idle: a passivated session's actor is freed at once
(no reference cycle left for the garbage collector), nothing of it stays in the manager,
the supervisor gives the heap back to the system after a wave of passivations, and the
asyncio primitives each live actor holds behave as asyncio's own."""

from __future__ import annotations

import asyncio
import collections
import gc
import sys
import weakref
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from satchel import open_runtime
from satchel.actors.sessions._session import SESSION_KIND
from satchel.runtime import _heap
from satchel.runtime import _supervisor as supervisor_module
from satchel.runtime._heap import TrimSchedule
from satchel.runtime._native import ASYNCIO

pytestmark = pytest.mark.anyio


@pytest.fixture
def no_collector() -> Iterator[None]:
    """Only reference counting frees objects while the test runs."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _until(condition: object, passes: int = 500) -> None:
    for _ in range(passes):
        if callable(condition) and condition():
            return
        await anyio.sleep(0.001)
    raise AssertionError("the condition never held")


async def _wave(rt: Any, sessions: int, min_drop: int) -> list[str]:
    """Make ``sessions`` live sessions, each written once, and passivate all but the first
    (with trims due after ``min_drop`` passivations); their ids."""
    rt.control._supervisor.heap.min_drop = min_drop
    ids = [await rt.sessions.create() for _ in range(sessions)]
    for sid in ids:
        await rt.sessions.set_state(sid, "k", 0)
    for sid in ids[1:]:
        rt.control.passivate(sid)
    return ids


async def test_a_passivated_session_actor_is_freed_without_the_collector(
    no_collector: None,
) -> None:
    """After passivation the session's actor is freed by reference counting alone (it was
    in cycles with its cell and its own write queue that waited for a full collection)."""
    async with open_runtime(store="memory") as rt:
        sid = await rt.sessions.create()
        await rt.sessions.set_state(sid, "k", 1)
        supervisor = rt.control._supervisor
        cell = supervisor.resident((SESSION_KIND, sid))
        assert cell is not None and cell.actor is not None
        actor_ref = weakref.ref(cell.actor)
        del cell
        rt.control.passivate(sid)
        await _until(lambda: not supervisor.is_live(SESSION_KIND, sid))
        await anyio.sleep(0.01)
        assert actor_ref() is None
        assert await rt.sessions.get_state(sid, "k") == 1  # and it comes back when asked


async def test_the_manager_keeps_nothing_of_a_passivated_session() -> None:
    """A live session's ref is kept with its cell; once passivated nothing of it is kept,
    and any spelling of its id still reaches it."""
    async with open_runtime(store="memory") as rt:
        sid = await rt.sessions.create()
        await rt.sessions.set_state(sid, "k", 1)
        supervisor = rt.control._supervisor
        kept = supervisor.resident_ref((SESSION_KIND, sid))
        assert kept is not None and rt.sessions._ref(sid) is kept
        rt.control.passivate(sid)
        await _until(lambda: not supervisor.is_live(SESSION_KIND, sid))
        assert supervisor.resident_ref((SESSION_KIND, sid)) is None
        assert await rt.sessions.get_state(sid.upper(), "k") == 1


def test_a_trim_is_due_after_half_the_live_actors_went_and_enough_of_them() -> None:
    """The schedule waits for the live count to halve from its high-water mark by at least
    ``min_drop`` actors, then counts again from where it is."""
    schedule = TrimSchedule(min_drop=100)
    for live in range(1, 1001):
        schedule.grew(live)
    assert [schedule.due(live) for live in (999, 501, 500)] == [False, False, True]
    assert [schedule.due(live) for live in (400, 250)] == [False, True]  # from 500 now
    assert [schedule.due(live) for live in (150, 125)] == [False, True]
    tiny = TrimSchedule(min_drop=100)
    for live in range(1, 51):
        tiny.grew(live)
    assert not tiny.due(0)  # 50 actors are not worth a trim


@pytest.mark.skipif(not _heap.release_free_heap(), reason="no glibc malloc_trim here")
async def test_a_wave_of_passivations_gives_the_heap_back_once() -> None:
    """Passivating most live sessions at once trims the heap once, after the wave; a few
    more passivations do not trim again."""
    async with open_runtime(store="memory") as rt:
        supervisor = rt.control._supervisor
        ids = await _wave(rt, 60, min_drop=40)
        await _until(lambda: supervisor.statistics().heap_trims == 1)
        assert supervisor.statistics().live_actors <= 2  # the first session, a sweeper
        for sid in ids[:5]:
            await rt.sessions.get_state(sid, "k")
            rt.control.passivate(sid)
        await anyio.sleep(0.05)
        assert supervisor.statistics().heap_trims == 1


def test_the_light_event_wakes_every_waiter_and_survives_a_cancelled_one() -> None:
    """On asyncio, ``set`` wakes every waiter, a cancelled waiter leaves the others waiting,
    and a wait after ``set`` returns at once, as with ``asyncio.Event``."""

    async def main() -> None:
        event = ASYNCIO.event()
        woken: list[int] = []

        async def waiter(n: int) -> None:
            assert await event.wait()
            woken.append(n)

        tasks = [asyncio.create_task(waiter(n)) for n in range(3)]
        await asyncio.sleep(0)
        tasks[1].cancel()
        await asyncio.sleep(0)
        assert not event.is_set() and woken == []
        event.set()
        event.set()  # twice is once
        await asyncio.gather(tasks[0], tasks[2])
        assert tasks[1].cancelled()
        assert sorted(woken) == [0, 2] and event.is_set()
        await asyncio.wait_for(event.wait(), 1)

    asyncio.run(main())


def test_a_full_asyncio_mailbox_queues_senders_in_order() -> None:
    """Senders waiting on a full channel (whose queue is made only then) get in in the
    order they came, and a cancelled one passes its turn on."""

    async def main() -> None:
        send, receive = ASYNCIO.channel(1)
        send.send_nowait(0)
        senders = [asyncio.create_task(send.send(n)) for n in (1, 2, 3)]
        await asyncio.sleep(0)
        senders[1].cancel()
        got = [await receive.receive() for _ in range(3)]
        assert got == [0, 1, 3]
        assert senders[1].cancelled()

    asyncio.run(main())


async def test_a_failed_trim_turns_trimming_off_and_harms_no_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A trim that raises (a thread refused under a process limit) is logged and turned off;
    the runtime and its sessions go on (it used to take the whole runtime down)."""

    def refused() -> bool:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(supervisor_module, "release_free_heap", refused)
    async with open_runtime(store="memory") as rt:
        supervisor = rt.control._supervisor
        ids = await _wave(rt, 40, min_drop=20)
        await _until(lambda: not supervisor.heap.enabled)
        await rt.sessions.set_state(ids[0], "k", 1)
        assert await rt.sessions.get_state(ids[1], "k") == 0
        assert supervisor.statistics().heap_trims == 0


async def test_a_trickle_of_passivations_does_not_put_the_trim_off_forever(
    autojump_clock: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a wave, passivations that keep coming every few milliseconds delay the trim by
    half a second at most."""
    trims: list[float] = []

    def counted() -> bool:
        trims.append(0.0)
        return True

    monkeypatch.setattr(supervisor_module, "release_free_heap", counted)
    async with open_runtime(store="memory") as rt:
        ids = await _wave(rt, 60, min_drop=40)
        for n in range(300):  # 1.5 s of one passivation every 5 ms
            sid = ids[1 + n % 10]
            await rt.sessions.get_state(sid, "k")
            rt.control.passivate(sid)
            await anyio.sleep(0.005)
        assert trims, "no trim during a second and a half of passivations"


async def test_a_session_key_is_not_taken_for_a_cell_that_is_still_starting() -> None:
    """A raw message to an actor named by a session's key (not its canonical id) makes a cell
    that will refuse that name; a manager call by the key meanwhile still reaches the
    session the key names."""
    async with open_runtime(store="memory") as rt:
        sid = await rt.sessions.create(key="my-key")
        await rt.sessions.set_state(sid, "k", 42)
        rt.control.passivate(sid)
        await _until(lambda: not rt.control._supervisor.is_live(SESSION_KIND, sid))
        found: dict[str, object] = {}

        async def raw() -> None:
            with pytest.raises(Exception):  # noqa: B017, PT011 (the actor refuses the name)
                await rt.supervisor.ref(SESSION_KIND, "my-key").tell("x")

        async def by_key() -> None:
            found["value"] = await rt.sessions.get_state("my-key", "k")

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(raw)
            tasks.start_soon(by_key)
        assert found == {"value": 42}


@given(
    capacity=st.integers(1, 300),
    ops=st.lists(st.tuples(st.booleans(), st.integers(1, 150)), max_size=40),
)
def test_the_asyncio_channel_is_first_in_first_out_at_any_depth(
    capacity: int, ops: list[tuple[bool, int]]
) -> None:
    """Runs of sends and takes without waiting behave as a bounded deque: same items, same
    order, full and empty at the same points (the list with a moving head included)."""
    send, receive = ASYNCIO.channel(capacity)
    model: collections.deque[int] = collections.deque()
    counter = 0
    for sending, count in ops:
        for _ in range(count):
            if sending:
                if len(model) >= capacity:
                    with pytest.raises(anyio.WouldBlock):
                        send.send_nowait(-1)
                    break
                send.send_nowait(counter)
                model.append(counter)
                counter += 1
            else:
                if not model:
                    with pytest.raises(anyio.WouldBlock):
                        receive.receive_nowait()
                    break
                assert receive.receive_nowait() == model.popleft()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_task_that_ran_lent_turns_is_freed_without_the_collector(
    no_collector: None,
) -> None:
    """A task that asked a session (its turn lent to the task) is freed by reference
    counting when it ends: the cooperative budget in its context named the task, a cycle
    that only the collector broke (a server's request tasks, one each)."""
    async with open_runtime(store="memory") as rt:
        sid = await rt.sessions.create()
        await rt.sessions.set_state(sid, "k", 0)

        async def ask() -> None:
            for n in range(3):
                await rt.sessions.set_state(sid, "k", n)

        task = asyncio.ensure_future(ask())
        await task
        task_ref = weakref.ref(task)
        del task
        for _ in range(3):  # the loop's handles of its end go first
            await asyncio.sleep(0)
        assert task_ref() is None


@pytest.mark.skipif(not _heap.release_free_heap(), reason="no glibc malloc_trim here")
async def test_the_table_of_live_actors_shrinks_after_a_wave_of_passivations() -> None:
    """After a wave of passivations the supervisor's table of live actors is no larger than a
    new one holding the actors left (a dict keeps the size it grew to as entries go)."""
    async with open_runtime(store="memory") as rt:
        supervisor = rt.control._supervisor
        await _wave(rt, 200, min_drop=100)
        await _until(lambda: supervisor.statistics().heap_trims == 1)
        cells = supervisor._cells
        assert sys.getsizeof(collections.OrderedDict(cells)) == sys.getsizeof(cells)
        assert supervisor.statistics().live_actors == len(cells) <= 2
