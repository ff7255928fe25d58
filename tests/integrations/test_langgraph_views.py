"""What ``SatchelSaver`` keeps of a thread between calls (its view): a put and a put_writes are
one runtime call each, and another writer on the thread meanwhile is noticed (the append
expects the log unchanged) instead of overwritten."""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

import satchel
import satchel.sync
from satchel.integrations._langgraph_calls import TRIES
from satchel.integrations.langgraph import SatchelSaver

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """LangGraph runs on asyncio only (the conftest would run Trio too)."""
    return "asyncio"


def counting(rt: Any) -> collections.Counter[str]:
    """Count the calls made on ``rt.sessions``."""
    counts: collections.Counter[str] = collections.Counter()
    for name in ("append_events", "get_state", "state", "list_state", "last_event_position"):
        method = getattr(rt.sessions, name)

        def counted(*args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            counts[_name] += 1
            return _method(*args, **kwargs)

        setattr(rt.sessions, name, counted)
    return counts


def checkpoint(checkpoint_id: str, value: Any, version: int) -> Any:
    made = empty_checkpoint()
    made["id"] = checkpoint_id
    made["channel_values"] = {"x": value}
    made["channel_versions"] = {"x": version}
    return made


def config(thread: str, checkpoint_id: str | None = None) -> Any:
    conf = {"thread_id": thread, "checkpoint_ns": ""}
    return {"configurable": conf | ({"checkpoint_id": checkpoint_id} if checkpoint_id else {})}


class Count(TypedDict):
    n: int


def ten_steps(saver: SatchelSaver) -> Any:
    builder: Any = StateGraph(Count)
    previous = START
    for i in range(10):
        builder.add_node(f"step{i}", lambda s: {"n": s["n"] + 1})
        builder.add_edge(previous, f"step{i}")
        previous = f"step{i}"
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=saver)


async def test_a_put_and_a_put_writes_are_one_call_each(tmp_path: Path) -> None:
    """On a thread the saver made, each put and each put_writes is one append and nothing
    else: the head, the parent's channels and the checkpoint's writes are known."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        saver = SatchelSaver(rt)
        conf = await saver.aput(config("t"), checkpoint("001", 0, 1), {"step": 0}, {"x": 1})
        counts = counting(rt)
        for step in range(1, 21):
            made = checkpoint(f"{step + 1:03}", step, step + 1)
            made["channel_values"]["y"] = "same"  # y is unchanged: its value is the parent's
            made["channel_versions"]["y"] = 1
            if step == 1:
                await saver.aput(conf, made, {"step": step}, {"x": step + 1, "y": 1})
                conf = config("t", made["id"])
                counts.clear()  # y first stored here; from now on it comes from the parent
                continue
            conf = await saver.aput(conf, made, {"step": step}, {"x": step + 1})
            await saver.aput_writes(conf, [("x", step), ("y", "w")], f"task-{step}")
        assert counts == {"append_events": 38}
        found = await saver.aget_tuple(config("t"))
        assert found is not None and found.checkpoint["id"] == "021"
        assert found.checkpoint["channel_values"] == {"x": 20, "y": "same"}
        assert [w[2] for w in found.pending_writes or []] == [20, "w"]


async def test_a_graph_run_makes_no_call_twice(tmp_path: Path) -> None:
    """A 10-step graph (puts and writes in flight at once: LangGraph does not wait for a
    put before the writes of the next step) appends once per put and per put_writes, and
    none is refused: the saver waits for its own appends instead of racing them."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        saver = SatchelSaver(rt)
        graph = ten_steps(saver)
        counts = counting(rt)
        out = await graph.ainvoke({"n": 0}, {"configurable": {"thread_id": "g"}})
        assert out["n"] == 10
        events = await rt.sessions.events("langgraph:g")
        assert counts["append_events"] == len(events)
        assert counts["get_state"] + counts["state"] <= 3  # the first get_tuple and writes
        assert saver.conflicts == 0


async def test_another_writer_between_puts_keeps_the_newest_head(tmp_path: Path) -> None:
    """A put after another saver wrote the thread does not trust what it knew: the newest
    checkpoint stays the head although this saver's last put was older."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        mine, other = SatchelSaver(rt), SatchelSaver(rt)
        await mine.aput(config("t"), checkpoint("3", "a", 1), {}, {"x": 1})
        await other.aput(config("t", "3"), checkpoint("5", "b", 2), {}, {"x": 2})
        await mine.aput(config("t", "3"), checkpoint("4", "c", 3), {}, {"x": 3})
        found = await mine.aget_tuple(config("t"))
        assert found is not None and found.checkpoint["id"] == "5"
        assert mine.conflicts == 1


async def test_a_write_another_writer_made_first_is_kept(tmp_path: Path) -> None:
    """A task's regular write another saver stored first is kept, though this saver put the
    checkpoint and knew it had no writes then."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        mine, other = SatchelSaver(rt), SatchelSaver(rt)
        conf = await mine.aput(config("t"), checkpoint("1", 0, 1), {}, {"x": 1})
        await other.aput_writes(conf, [("x", "first")], "task")
        await mine.aput_writes(conf, [("x", "second")], "task")
        found = await mine.aget_tuple(conf)
        assert found is not None and found.pending_writes == [("task", "x", "first")]


async def test_a_thread_written_before_is_read_once(tmp_path: Path) -> None:
    """A saver meeting a thread another one wrote reads its position and heads once, then
    appends with one call per put."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        first = SatchelSaver(rt)
        conf = await first.aput(config("t"), checkpoint("1", 0, 1), {}, {"x": 1})
        later = SatchelSaver(rt)
        counts = counting(rt)
        conf = await later.aput(conf, checkpoint("2", 1, 2), {}, {"x": 2})
        conf = await later.aput(conf, checkpoint("3", 2, 3), {}, {"x": 3})
        assert counts == {"last_event_position": 1, "state": 1, "append_events": 2}
        found = await first.aget_tuple(config("t"))
        assert found is not None and found.checkpoint["channel_values"] == {"x": 2}


async def test_a_cancelled_put_leaves_nothing_in_flight(tmp_path: Path) -> None:
    """A put cancelled while its append is in flight does not leave the thread counted busy
    (the next put would wait for it forever)."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        saver = SatchelSaver(rt)
        conf = await saver.aput(config("t"), checkpoint("1", 0, 1), {}, {"x": 1})
        started = asyncio.Event()
        append = rt.sessions.append_events

        async def stalled(*args: Any, **kwargs: Any) -> Any:
            started.set()
            await asyncio.sleep(3600)
            return await append(*args, **kwargs)

        rt.sessions.append_events = stalled
        task = asyncio.ensure_future(saver.aput(conf, checkpoint("2", 1, 2), {}, {"x": 2}))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        rt.sessions.append_events = append
        assert not saver._inflight
        await asyncio.wait_for(saver.aput(conf, checkpoint("3", 2, 3), {}, {"x": 3}), 10)


async def beside_a_looping_writer(
    saver: SatchelSaver, at: Any, put: Coroutine[Any, Any, Any]
) -> tuple[Any, int]:
    """Run ``put`` while a task calls ``aput_writes`` on ``at`` in a loop until the put is
    done (at most 2,000 writes); the put's result and the writes made."""
    writes = 0
    task: asyncio.Task[Any] | None = None

    async def writer() -> None:
        nonlocal writes
        while writes < 2000 and not (task is not None and task.done()):
            await saver.aput_writes(at, [("x", writes)], f"task-{writes}")
            writes += 1

    looping = asyncio.create_task(writer())
    await asyncio.sleep(0)
    task = asyncio.create_task(put)
    await looping
    assert task.done(), writes
    return await task, writes


@pytest.mark.parametrize("durability", ["process", "machine"])
async def test_a_writer_in_a_loop_does_not_keep_a_put_waiting(
    tmp_path: Path, durability: str
) -> None:
    """A put waiting for the saver's appends in flight on a thread goes before the next
    append of a task writing there in a loop (which found the thread free again before the
    waiting put could run, and kept it waiting for ever)."""
    async with satchel.open_runtime(tmp_path / "data", durability=durability) as rt:
        saver = SatchelSaver(rt)
        first = await saver.aput(config("t"), checkpoint("001", 0, 1), {}, {"x": 1})
        last = await saver.aput(first, checkpoint("002", 1, 2), {}, {"x": 2})
        # A fork of the first checkpoint: its parent is not the saver's last put, so the put
        # runs its plan, which waits for the thread.
        put = saver.aput(first, checkpoint("003", 2, 3), {}, {"x": 3})
        done, writes = await beside_a_looping_writer(saver, last, put)
        assert done["configurable"]["checkpoint_id"] == "003" and writes < 200, writes
        assert not saver._queued and not saver._inflight


async def test_a_writer_in_a_loop_cannot_slip_between_a_puts_reads_and_its_append(
    tmp_path: Path,
) -> None:
    """A put that reads its parent keeps its turn on the thread through that read: a task
    writing in a loop waits behind it rather than appending meanwhile (which refused the
    put's append on every try when the read suspended, as reads over a network do)."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        saver = SatchelSaver(rt)
        first = await saver.aput(config("t"), checkpoint("001", 0, 1), {}, {"x": 1})
        last = await saver.aput(first, checkpoint("002", 1, 2), {}, {"x": 2})
        get_state = rt.sessions.get_state

        async def suspending(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            return await get_state(*args, **kwargs)

        rt.sessions.get_state = suspending  # type: ignore[method-assign]
        # A fork of the first checkpoint with a channel it does not set: the put reads the
        # first checkpoint for that channel's value.
        fork = checkpoint("003", 2, 3)
        fork["channel_values"] = {}
        done, writes = await beside_a_looping_writer(saver, last, saver.aput(first, fork, {}, {}))
        assert done["configurable"]["checkpoint_id"] == "003"
        assert saver.conflicts == 0 and writes < 200, (saver.conflicts, writes)
        assert not saver._queued and not saver._inflight


async def test_writes_to_a_thread_read_first_read_it_side_by_side(tmp_path: Path) -> None:
    """The writes of a step on a thread the saver did not make each read the thread, then
    append expecting no position: their reads overlap (holding a turn through them made a
    fan-out's writes read one after another), and every write lands."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        conf = await SatchelSaver(rt).aput(config("t"), checkpoint("001", 0, 1), {}, {"x": 1})
        saver = SatchelSaver(rt)  # has not seen the thread
        state = rt.sessions.state
        reading = [0, 0]  # now, most at once

        async def slow(*args: Any, **kwargs: Any) -> Any:
            reading[0] += 1
            reading[1] = max(reading)
            await asyncio.sleep(0.001)
            reading[0] -= 1
            return await state(*args, **kwargs)

        rt.sessions.state = slow  # type: ignore[method-assign]
        await asyncio.gather(*(saver.aput_writes(conf, [("x", n)], f"task-{n}") for n in range(10)))
        assert reading[1] > 1
        found = await saver.aget_tuple(conf)
        assert found is not None and len(found.pending_writes or []) == 10
        assert not saver._queued and not saver._inflight


async def test_reading_the_thread_again_does_not_count_as_a_try(tmp_path: Path) -> None:
    """A put refused because another writer keeps appending reads the thread again and
    retries until TRIES appends were refused; the reads between do not count (they took
    half the tries, so it gave up after TRIES / 2 refusals)."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        saver = SatchelSaver(rt)
        conf = await saver.aput(config("t"), checkpoint("001", 0, 1), {}, {"x": 1})
        position = rt.sessions.last_event_position
        left = TRIES - 4

        async def moved(session_id: str) -> int:
            nonlocal left
            found: int = await position(session_id)
            if left:  # another writer appends right after each read of the thread
                left -= 1
                await rt.sessions.append_events(session_id, [{"other": left}])
            return found

        rt.sessions.last_event_position = moved  # type: ignore[method-assign]
        await rt.sessions.append_events("langgraph:t", [{"other": "first"}])
        put = await saver.aput(conf, checkpoint("002", 1, 2), {}, {"x": 2})
        assert put["configurable"]["checkpoint_id"] == "002"
        assert saver.conflicts == TRIES - 3  # the view's own append, then one a read


def test_sync_writers_in_threads_all_land(tmp_path: Path) -> None:
    """The sync methods on a ``satchel.sync`` background runtime, from many threads at once:
    writes and puts on one thread all land, waiting for each other in the runtime's loop
    rather than racing (a put could be refused 64 times, and raise, before)."""

    with satchel.sync.open_runtime(tmp_path / "data", background=True) as rt:
        saver = SatchelSaver(rt)
        conf = saver.put(config("t"), checkpoint("100", 0, 1), {}, {"x": 1})
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                saver.put_writes(conf, [("x", n)], f"task-{n}")
                saver.put(conf, checkpoint(f"{200 + n}", n, n + 2), {}, {"x": n + 2})
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert saver.conflicts == 0
        found = saver.get_tuple(conf)
        assert found is not None and len(found.pending_writes or []) == 8
        newest = saver.get_tuple(config("t"))
        assert newest is not None and newest.checkpoint["id"] == "207"


async def test_a_retried_write_is_read_not_trusted_to_the_view(tmp_path: Path) -> None:
    """A task's write the view knows of is looked for again before it is skipped: another
    saver may have deleted the thread meanwhile, and the write must land again."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        mine, other = SatchelSaver(rt), SatchelSaver(rt)
        conf = await mine.aput(config("t"), checkpoint("1", 0, 1), {}, {"x": 1})
        await mine.aput_writes(conf, [("x", "before")], "task")
        await other.adelete_thread("t")
        await mine.aput_writes(conf, [("x", "after")], "task")
        written = await rt.sessions.state("langgraph:t", prefix="w:")
        assert [w["task"] for w in written.values()] == ["task"]


async def test_the_writes_of_a_step_cost_what_one_write_does(tmp_path: Path) -> None:
    """The view adds a checkpoint's writes to one set in place (a copy per write made a
    step of n tasks cost n squared)."""
    from satchel.integrations import _langgraph_layout as lay

    view = lay.new_view(0, {}, whole=True, created=None)
    view = lay.after_writes(view, 1, "", "c1", ["w:a"])
    names = view.slots[""]
    for n in range(2, 50):
        view = lay.after_writes(view, n, "", "c1", [f"w:{n}"])
    assert view.slots[""] is names and len(names) == 49
    newer = lay.after_writes(view, 50, "", "c2", ["w:z"])
    assert newer.slots[""] == {"w:z"} and view.slots[""] is names


async def test_a_cancelled_writer_does_not_cancel_the_others_waiting(tmp_path: Path) -> None:
    """Writes waiting for the saver's own append in flight on a thread share one wait;
    cancelling one of them (as LangGraph cancels a step's other tasks when one fails) leaves
    the others to land."""
    async with satchel.open_runtime(tmp_path / "data", durability="machine") as rt:
        saver = SatchelSaver(rt)
        await saver.aput(config("t"), checkpoint("001", 0, 1), {"step": 0}, {"x": 1})
        at = config("t", "001")
        tasks = {
            name: asyncio.create_task(saver.aput_writes(at, [("x", i)], f"task-{name}"))
            for i, name in enumerate("abc")
        }

        async def cancel_b() -> None:
            tasks["b"].cancel()

        await asyncio.create_task(cancel_b())
        outcomes = await asyncio.gather(*tasks.values(), return_exceptions=True)
        assert outcomes[0] is None and outcomes[2] is None, outcomes
        found = await saver.aget_tuple(at)
        assert found is not None
        assert {w[0] for w in found.pending_writes or []} >= {"task-a", "task-c"}


async def test_a_thread_made_again_elsewhere_is_read_again(tmp_path: Path) -> None:
    """A thread deleted and made again by another saver, up to the same log position, is
    not taken for the one this saver knew: its put reads the thread again and carries the
    new parent's values, not the old thread's."""

    def put_of(checkpoint_id: str, value: Any) -> Any:
        made = empty_checkpoint()
        made["id"] = checkpoint_id
        made["channel_values"] = {} if value is None else {"x": value}
        made["channel_versions"] = {"x": 1}
        return made

    async with satchel.open_runtime(tmp_path / "data") as rt:
        first, second = SatchelSaver(rt), SatchelSaver(rt)
        await first.aput(config("t"), put_of("001", "old value"), {"step": 0}, {"x": 1})
        await second.adelete_thread("t")
        await second.aput(config("t"), put_of("001", "new value"), {"step": 0}, {"x": 1})
        # x is unchanged at 002: its value comes from the parent, 001.
        await first.aput(config("t", "001"), put_of("002", None), {"step": 1}, {})
        found = await second.aget_tuple(config("t", "002"))
        assert found is not None
        assert found.checkpoint["channel_values"]["x"] == "new value"
        assert first.conflicts == 1


@pytest.mark.parametrize("upkeep", ["prune", "delete_for_runs"])
async def test_upkeep_while_a_put_lands_keeps_the_newest_head(tmp_path: Path, upkeep: str) -> None:
    """A put that lands between prune's (or delete_for_runs') read of the thread's names
    and its append stays the head (the upkeep's append expects the log where it read the
    names; it set the newest head among them, an older checkpoint's)."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        saver = SatchelSaver(rt)
        conf = await saver.aput(config("t"), checkpoint("001", 1, 1), {"run_id": "old"}, {"x": 1})
        conf = await saver.aput(conf, checkpoint("002", 2, 2), {"run_id": "old"}, {"x": 2})
        conf = await saver.aput(conf, checkpoint("003", 3, 3), {"run_id": "keep"}, {"x": 3})
        names = rt.sessions.list_state
        landed: list[Any] = []

        async def then_a_put(*args: Any, **kwargs: Any) -> Any:
            read = await names(*args, **kwargs)
            if not landed:  # a graph step's put, landing while the upkeep is under way
                landed.append(
                    await saver.aput(conf, checkpoint("004", 4, 4), {"run_id": "new"}, {"x": 4})
                )
            return read

        rt.sessions.list_state = then_a_put
        if upkeep == "prune":
            await saver.aprune(["t"], strategy="keep_latest")
        else:
            await saver.adelete_for_runs(["old"])
        rt.sessions.list_state = names
        assert landed
        listed = [t.checkpoint["id"] async for t in saver.alist(config("t"))]
        assert "004" in listed
        latest = await saver.aget_tuple(config("t"))
        assert latest is not None and latest.checkpoint["id"] == "004", listed
