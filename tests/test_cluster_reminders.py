"""Reminders and scheduled replays on a cluster: kept in PostgreSQL and taken by whichever
node is up, each period fired once across the nodes; the deadline sweepers' reminders are
each node's own."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from satchel import Node, Runtime, open_runtime
from satchel.runtime import Actor, ActorSpec, Reminder, ReminderFired, open_supervisor
from satchel.storage import PostgresReminders, split_table

from .ports import drop_table, networked_place

pytestmark = pytest.mark.anyio

#: Short leases: a dead node's reminders are taken again after a second.
TTL_S = 1.0


@pytest.fixture
async def store_url() -> AsyncIterator[str]:
    """A PostgreSQL store URL naming a table of its own (dropped afterwards, with its
    reminder table)."""
    store, _, table = networked_place()
    yield store
    reminders = await _reminders(store, "dropper")
    await reminders.drop()
    await reminders.aclose()
    await drop_table(table)


async def _reminders(store: str, node: str, **options: Any) -> PostgresReminders:
    conninfo, table = split_table(store)
    return await PostgresReminders.open(conninfo, table=table, node=node, mark_s=TTL_S, **options)


def _node(name: str, store: str) -> Any:
    return open_runtime(store=store, node=Node(name, lease_ttl_s=TTL_S), min_replay_interval_s=0.1)


async def _eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait until ``check`` holds (failing after about 10 s)."""
    for _ in range(200):
        if await check():
            return
        await anyio.sleep(0.05)
    raise AssertionError("not within 10 s")


async def _runs(rt: Runtime, schedule: str, at_least: int) -> int:
    """The number of kept runs of ``schedule`` once there are ``at_least``."""

    async def enough() -> bool:
        return len(await rt.replays.results(schedule)) >= at_least

    await _eventually(enough)
    return len(await rt.replays.results(schedule))


async def test_a_schedule_made_on_a_node_runs_after_that_node_closed(store_url: str) -> None:
    """A one-shot replay scheduled on node a, which closes before it is due, is run by node b
    (which was open before the schedule was made), once."""
    async with _node("b", store_url) as b:
        async with _node("a", store_url) as a:
            sid = await a.sessions.create()
            await a.sessions.set_state(sid, "k", 1)
            schedule = await a.replays.schedule(sid, when=time.time() + 0.5, mode="exact")
        assert await _runs(b, schedule, 1) == 1
        (run,) = await b.replays.results(schedule)
        assert (run.events_replayed, run.error) == (2, None)
        await anyio.sleep(1.5)  # another second of polls: not run again
        assert len(await b.replays.results(schedule)) == 1


async def test_a_repeating_schedule_runs_once_a_period_across_the_nodes(store_url: str) -> None:
    """Three nodes, two opened after the schedule was made: it runs about once a period,
    not once a period on each node."""
    every_s, seconds = 0.3, 3.0
    async with _node("a", store_url) as a:
        sid = await a.sessions.create()
        schedule = await a.replays.schedule(sid, every_s=every_s)
        started = time.monotonic()
        async with _node("b", store_url), _node("c", store_url):
            await anyio.sleep(seconds)
        elapsed = time.monotonic() - started
        runs = len(await a.replays.results(schedule))
    # Once a node fires the periods without the others: at most one run a period (+ the
    # first at once); coalesced periods make fewer, never more.
    assert 3 <= runs <= elapsed / every_s + 2, (runs, elapsed)


class _Counter(Actor[Any]):
    def __init__(self, fired: list[ReminderFired]) -> None:
        self._fired = fired

    async def receive(self, message: Any) -> None:
        self._fired.append(message)


async def test_a_period_taken_by_a_node_that_died_fires_again(store_url: str) -> None:
    """A due reminder taken by a node that never finishes it (it died) is taken by another
    node once the dead node's mark expires, and fired there once."""
    dead = await _reminders(store_url, "dead")
    live = await _reminders(store_url, "live")
    try:
        await dead.save_reminder(Reminder("counter", "x", "once", time.time()))
        (taken,) = await dead.take_due(["counter"], 10)
        assert taken.reminder.name == "once"
        fired: list[ReminderFired] = []
        async with open_supervisor(reminder_store=live) as sup:
            sup.register(ActorSpec("counter", lambda _: _Counter(fired)))
            await anyio.sleep(0.3)
            assert fired == []  # marked as the dead node's still

            async def any_fired() -> bool:
                await anyio.lowlevel.checkpoint()
                return bool(fired)

            await _eventually(any_fired)
            await anyio.sleep(1.5)
        assert [f.name for f in fired] == ["once"]
        assert await live.load_reminders() == []  # a one-shot is gone once fired
    finally:
        await dead.aclose()
        await live.aclose()


async def test_a_period_is_taken_by_one_node_at_a_time(store_url: str) -> None:
    """Two nodes polling at once: one takes the due reminder, the other nothing; a finished
    period is not taken again, and a finish of a period saved over since is ignored."""
    a = await _reminders(store_url, "a")
    b = await _reminders(store_url, "b")
    try:
        await a.save_reminder(Reminder("k", "x", "r", time.time() - 1, 3600))
        async with anyio.create_task_group() as tg:
            found: list[Any] = []

            async def take(store: PostgresReminders) -> None:
                found.extend(await store.take_due(["k"], 10))

            tg.start_soon(take, a)
            tg.start_soon(take, b)
        (taken,) = found
        assert await a.take_due(["k"], 10) == [] and await b.take_due(["k"], 10) == []
        await a.save_reminder(Reminder("k", "x", "r", time.time() - 1))  # replaced while in flight
        await a.finish(taken, None)  # the old period's finish leaves the new one
        (again,) = await b.take_due(["k"], 10)
        assert again.period != taken.period and again.reminder.every is None
        await b.finish(again, None)
        assert await a.load_reminders() == []
    finally:
        await a.aclose()
        await b.aclose()


async def test_the_deadline_sweepers_of_two_nodes_keep_their_own_reminders(
    store_url: str,
) -> None:
    """Each node's sweeper keeps its reminder for the next deadline in a row of its own."""
    async with _node("a", store_url) as a:
        await a.sessions.create(config={"idle_timeout_s": 3600})
        async with _node("b", store_url):
            view = await _reminders(store_url, "view")
            try:

                async def both() -> bool:
                    return len(await _sweeper_rows(view)) >= 2

                await _eventually(both)
                rows = await _sweeper_rows(view)
            finally:
                await view.aclose()
    assert sorted(node for node, _ in rows) == ["a", "b"]


async def _sweeper_rows(view: PostgresReminders) -> list[tuple[str, float]]:
    rows = await view._run(
        f"SELECT node, due FROM {view.table}_reminders WHERE kind = 'deadlines'", ()
    )
    return [(node, due) for node, due in rows]


async def test_a_schedule_made_before_the_store_was_a_cluster_runs_on_a_node(
    store_url: str,
) -> None:
    """A schedule made by a runtime on the store without a node (its reminder kept in the
    records) moves to the nodes' table when a node opens, and runs there."""
    async with open_runtime(store=store_url) as single:
        sid = await single.sessions.create()
        schedule = await single.replays.schedule(sid, when=time.time() + 0.5)
    async with _node("a", store_url) as a:
        assert await _runs(a, schedule, 1) == 1
