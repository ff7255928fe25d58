"""A real LangGraph ``StateGraph`` checkpointed by ``SatchelSaver``: it runs, interrupts,
resumes and time-travels, through the sync API (``invoke``) and the async one (``ainvoke``),
on the memory store and on RocksDB; and what the saver keeps in satchel."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import operator
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
import trio
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

import satchel
import satchel.sync
from satchel._portal import ThreadPortal
from satchel.integrations.langgraph import SatchelSaver

pytestmark = pytest.mark.anyio

STORES = ["memory", "rocksdb"]


@pytest.fixture
def anyio_backend() -> str:
    """LangGraph runs on asyncio only (the conftest would run Trio too)."""
    return "asyncio"


@contextlib.contextmanager
def sync_saver(store: str, tmp_path: Path) -> Iterator[SatchelSaver]:
    """A saver for ``graph.invoke``, on a runtime of its own."""
    path = tmp_path / "data" if store == "rocksdb" else None
    with SatchelSaver.from_path(path, store=store) as saver:
        yield saver


@contextlib.asynccontextmanager
async def async_saver(store: str, tmp_path: Path) -> AsyncIterator[SatchelSaver]:
    """A saver for ``graph.ainvoke``, on a runtime of its own."""
    path = tmp_path / "data" if store == "rocksdb" else None
    async with SatchelSaver.from_path(path, store=store) as saver:
        yield saver


# -- the graph ----------------------------------------------------------------------------------


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    approved: str
    big: str
    child: str


BIG = "x" * 300_000  # one large channel value, written once and unchanged afterwards


def child_graph() -> Any:
    """A subgraph that interrupts too: its checkpoints live in a child namespace."""

    class Child(TypedDict, total=False):
        child: str

    def ask(state: Child) -> Child:
        answer = interrupt({"question": "child?"})
        return {"child": f"child:{answer}"}

    builder = StateGraph(Child)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder.compile()


def build(saver: SatchelSaver, *, with_child: bool = False) -> Any:
    """plan -> (left, right in one step) -> review (interrupts) -> [child] -> finish."""

    def plan(state: State) -> State:
        return {"log": ["plan"], "big": BIG}

    def left(state: State) -> State:
        return {"log": ["left"]}

    def right(state: State) -> State:
        return {"log": ["right"]}

    def review(state: State) -> State:
        answer = interrupt({"question": "approve?", "log": state["log"]})
        return {"approved": answer, "log": [f"review:{answer}"]}

    def finish(state: State) -> State:
        return {"log": ["finish"]}

    builder = StateGraph(State)
    builder.add_node("plan", plan)
    builder.add_node("left", left)
    builder.add_node("right", right)
    builder.add_node("review", review)
    builder.add_node("finish", finish)
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "left")
    builder.add_edge("plan", "right")
    builder.add_edge(["left", "right"], "review")
    if with_child:
        builder.add_node("child", child_graph())
        builder.add_edge("review", "child")
        builder.add_edge("child", "finish")
    else:
        builder.add_edge("review", "finish")
    builder.add_edge("finish", END)
    return builder.compile(checkpointer=saver)


def config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def check_interrupted(result: dict[str, Any], snapshot: Any) -> None:
    assert result["log"] == ["plan", "left", "right"]
    (pending,) = result["__interrupt__"]
    assert pending.value == {"question": "approve?", "log": ["plan", "left", "right"]}
    assert snapshot.next == ("review",)
    assert snapshot.values["big"] == BIG
    assert [i.value["question"] for t in snapshot.tasks for i in t.interrupts] == ["approve?"]


def check_finished(result: dict[str, Any], answer: str) -> None:
    assert result["approved"] == answer
    assert result["log"] == ["plan", "left", "right", f"review:{answer}", "finish"]
    assert "__interrupt__" not in result


def check_history(history: list[Any]) -> Any:
    """Newest first, each one's parent the next; returns the snapshot taken before review."""
    assert [h.metadata["step"] for h in history] == list(range(len(history) - 2, -2, -1))
    for newer, older in itertools.pairwise(history):
        parent = newer.parent_config["configurable"]["checkpoint_id"]
        assert parent == older.config["configurable"]["checkpoint_id"]
    assert history[-1].metadata["source"] == "input"
    (before_review,) = [h for h in history if h.next == ("review",)]
    return before_review


# -- sync ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
def test_run_interrupt_resume_time_travel_sync(store: str, tmp_path: Path) -> None:
    """With invoke: a run interrupts, resumes, lists its history, replays from an earlier
    checkpoint to a new answer, forks with update_state and is deleted."""
    with sync_saver(store, tmp_path) as saver:
        graph = build(saver)
        cfg = config("thread-sync")

        result = graph.invoke({"log": []}, cfg)
        check_interrupted(result, graph.get_state(cfg))

        check_finished(graph.invoke(Command(resume="yes"), cfg), "yes")
        final = graph.get_state(cfg)
        assert final.next == () and final.values["approved"] == "yes"

        history = list(graph.get_state_history(cfg))
        before_review = check_history(history)
        assert len(list(graph.get_state_history(cfg, limit=2))) == 2
        inputs = graph.get_state_history(cfg, filter={"source": "input"})
        assert [h.metadata["source"] for h in inputs] == ["input"]

        # Time travel: replay from before review, which interrupts again; answer differently.
        replayed = graph.invoke(None, before_review.config)
        assert replayed["__interrupt__"][0].value["question"] == "approve?"
        check_finished(graph.invoke(Command(resume="no"), cfg), "no")
        assert graph.get_state(cfg).values["approved"] == "no"
        assert graph.get_state(final.config).values["approved"] == "yes"  # the first branch
        assert len(list(graph.get_state_history(cfg))) > len(history)

        # A fork by update_state on the old checkpoint: a new head whose parent is that one.
        forked = graph.update_state(before_review.config, {"log": ["edited"]}, as_node="right")
        fork_state = graph.get_state(forked)
        assert fork_state.values["log"][-1] == "edited"
        parent = fork_state.parent_config["configurable"]["checkpoint_id"]
        assert parent == before_review.config["configurable"]["checkpoint_id"]
        assert fork_state.metadata["source"] == "update"

        # Another thread is untouched; deleting this one leaves nothing behind.
        graph.invoke({"log": []}, config("thread-other"))
        saver.delete_thread("thread-sync")
        assert graph.get_state(cfg).values == {}
        assert list(graph.get_state_history(cfg)) == []
        assert graph.get_state(config("thread-other")).next == ("review",)


@pytest.mark.parametrize("store", STORES)
def test_subgraph_interrupt_sync(store: str, tmp_path: Path) -> None:
    """A subgraph's interrupt is checkpointed in its own namespace, listed there, and resumed."""
    with sync_saver(store, tmp_path) as saver:
        graph = build(saver, with_child=True)
        cfg = config("thread-child")
        graph.invoke({"log": []}, cfg)
        result = graph.invoke(Command(resume="yes"), cfg)
        (pending,) = result["__interrupt__"]
        assert pending.value == {"question": "child?"}
        state = graph.get_state(cfg, subgraphs=True)
        assert state.next == ("child",)
        (task,) = state.tasks
        child_ns = task.state.config["configurable"]["checkpoint_ns"]
        assert child_ns.startswith("child:")
        children = list(
            saver.list({"configurable": {"thread_id": "thread-child", "checkpoint_ns": child_ns}})
        )
        assert children
        assert all(c.config["configurable"]["checkpoint_ns"] == child_ns for c in children)
        result = graph.invoke(Command(resume="ok"), cfg)
        assert result["child"] == "child:ok"
        assert result["log"][-1] == "finish"


def test_on_a_sync_runtime_of_the_caller(tmp_path: Path) -> None:
    """SatchelSaver(rt) on satchel.sync's background runtime runs a graph with invoke, and
    with ainvoke from a loop of the caller's."""
    with satchel.sync.open_runtime(tmp_path / "data", background=True) as rt:
        graph = build(SatchelSaver(rt))
        check_interrupted(graph.invoke({"log": []}, config("t")), graph.get_state(config("t")))
        check_finished(graph.invoke(Command(resume="ok"), config("t")), "ok")

        async def run_async() -> None:
            first = await graph.ainvoke({"log": []}, config("u"))
            check_interrupted(first, await graph.aget_state(config("u")))
            check_finished(await graph.ainvoke(Command(resume="ok"), config("u")), "ok")

        asyncio.run(run_async())


@pytest.mark.parametrize("opened", ["sync runtime", "from_path"])
def test_calls_made_while_the_runtime_closes_end_closed(tmp_path: Path, opened: str) -> None:
    """Threads calling a saver whose runtime runs in a thread of its own while that runtime
    closes each end with RuntimeClosedError, none waiting for ever (a call handed to the
    stopped loop never returned before), and calls after it raise the same."""
    config_none: Any = config("none")
    for round_ in range(3):
        closed, ended = threading.Event(), collections.Counter[str]()
        with contextlib.ExitStack() as stack:
            if opened == "from_path":
                saver = stack.enter_context(SatchelSaver.from_path(tmp_path / f"{round_}"))
            else:
                runtime = satchel.sync.open_runtime(tmp_path / f"{round_}", background=True)
                saver = SatchelSaver(stack.enter_context(runtime))
            calls = (saver, closed, ended)
            threads = [
                threading.Thread(target=call_until_closed, args=calls, daemon=True)
                for _ in range(4)
            ]
            for thread in threads:
                thread.start()
            assert saver.get_tuple(config_none) is None
        closed.set()
        for thread in threads:
            thread.join(30)  # a liveness bound: every call ends within it, or it hung
        assert not any(thread.is_alive() for thread in threads)
        assert ended["closed"] >= len(threads)
        with pytest.raises(satchel.RuntimeClosedError):
            saver.put(config("t"), checkpoint_of("001"), {}, {})
        with pytest.raises(satchel.RuntimeClosedError):
            asyncio.run(saver.aget_tuple(config_none))


def test_the_async_methods_of_a_saver_on_a_sync_runtime_work_from_trio(tmp_path: Path) -> None:
    """A saver on satchel.sync's background runtime serves its async methods to a Trio
    caller too (through a worker thread), and can be made in the runtime's own thread."""
    with satchel.sync.open_runtime(tmp_path / "data", background=True) as rt:
        saver = SatchelSaver(rt)
        saver.put(config("t"), checkpoint_of("001"), {}, {})

        async def read() -> list[Any]:
            found = await saver.aget_tuple(config("t"))
            assert found is not None
            return [item.checkpoint["id"] async for item in saver.alist(config("t"))]

        assert trio.run(read) == ["001"]
        portal = rt._portal
        assert isinstance(portal, ThreadPortal)
        made = portal.start(made_in_loop(rt)).result()
        assert made.get_tuple(config("t")) is not None


def call_until_closed(saver: SatchelSaver, closed: threading.Event, ended: Any) -> None:
    """Read from ``saver`` until a read after ``closed`` is set finds the runtime closed."""
    while True:
        try:
            saver.get_tuple(config("none"))
        except satchel.RuntimeClosedError:
            ended["closed"] += 1
            if closed.is_set():
                return


async def made_in_loop(rt: Any) -> SatchelSaver:
    return SatchelSaver(rt)


def checkpoint_of(checkpoint_id: str) -> Any:
    made = empty_checkpoint()
    made["id"] = checkpoint_id
    return made


# -- async --------------------------------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
async def test_run_interrupt_resume_time_travel_async(store: str, tmp_path: Path) -> None:
    """With ainvoke: a run interrupts, resumes, replays from an earlier checkpoint to a new
    answer (the first branch stays readable), forks with aupdate_state and is deleted."""
    async with async_saver(store, tmp_path) as saver:
        graph = build(saver)
        cfg = config("thread-async")

        result = await graph.ainvoke({"log": []}, cfg)
        check_interrupted(result, await graph.aget_state(cfg))

        check_finished(await graph.ainvoke(Command(resume="yes"), cfg), "yes")
        final = await graph.aget_state(cfg)

        history = [h async for h in graph.aget_state_history(cfg)]
        before_review = check_history(history)

        replayed = await graph.ainvoke(None, before_review.config)
        assert replayed["__interrupt__"][0].value["question"] == "approve?"
        check_finished(await graph.ainvoke(Command(resume="no"), cfg), "no")
        assert (await graph.aget_state(final.config)).values["approved"] == "yes"

        forked = await graph.aupdate_state(
            before_review.config, {"log": ["edited"]}, as_node="right"
        )
        assert (await graph.aget_state(forked)).values["log"][-1] == "edited"

        await saver.adelete_thread("thread-async")
        assert (await graph.aget_state(cfg)).values == {}


@pytest.mark.parametrize("store", STORES)
async def test_subgraph_interrupt_async(store: str, tmp_path: Path) -> None:
    """With ainvoke, a subgraph's interrupt is resumed and the parent graph finishes."""
    async with async_saver(store, tmp_path) as saver:
        graph = build(saver, with_child=True)
        cfg = config("thread-child-async")
        await graph.ainvoke({"log": []}, cfg)
        result = await graph.ainvoke(Command(resume="yes"), cfg)
        assert result["__interrupt__"][0].value == {"question": "child?"}
        result = await graph.ainvoke(Command(resume="ok"), cfg)
        assert result["child"] == "child:ok"


@pytest.mark.parametrize("store", STORES)
async def test_large_unchanged_value_stored_once(store: str, tmp_path: Path) -> None:
    """The 300 kB channel written at one step and carried by every later checkpoint is one
    artifact, and its content one blob, however many checkpoints and branches hold it."""
    async with async_saver(store, tmp_path) as saver:
        graph = build(saver)
        cfg = config("thread-big")
        await graph.ainvoke({"log": []}, cfg)
        await graph.ainvoke(Command(resume="yes"), cfg)
        history = [h async for h in graph.aget_state_history(cfg)]
        await graph.ainvoke(None, check_history(history).config)  # a second branch
        await graph.ainvoke(Command(resume="no"), cfg)
        holding = [h async for h in graph.aget_state_history(cfg) if h.values.get("big") == BIG]
        assert len(holding) >= 6
        big = [b for b in await saver.stored_channel_blobs("thread-big") if b.channel == "big"]
        assert len(big) == 1 and big[0].size >= len(BIG)
        rt = saver.rt
        assert isinstance(rt, satchel.Runtime)
        versions = await rt.artifacts.versions("langgraph:thread-big", big[0].name)
        assert len(versions) == 1


async def test_each_put_is_one_journaled_event(tmp_path: Path) -> None:
    """A thread is the session keyed langgraph:<thread_id>; each put and each task's writes
    appended one event, whose variables came in the same journal entry."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        graph = build(SatchelSaver(rt))
        await graph.ainvoke({"log": []}, config("t1"))
        info = await rt.sessions.get(satchel.session_id_for("langgraph:t1"))
        assert (info.key, info.app, info.name) == ("langgraph:t1", "langgraph", "t1")
        events = await rt.sessions.events("langgraph:t1")
        kinds = [e.data["lg"] for e in events]
        history = [h async for h in graph.aget_state_history(config("t1"))]
        assert kinds.count("put") == len(history)
        assert kinds.count("writes") >= 4  # plan, left, right, review's interrupt
        journal = await rt.sessions.timeline("langgraph:t1")
        appended = [e for e in journal if e.kind == "events_appended"]
        assert len(appended) == len(events)
        assert [s.key for s in await rt.sessions.list(app="langgraph")] == ["langgraph:t1"]


async def test_sync_call_on_the_runtime_loop_is_refused(tmp_path: Path) -> None:
    """A sync method called on the async runtime's own loop raises instead of deadlocking,
    and works from another thread."""
    async with satchel.open_runtime(store="memory") as rt:
        saver = SatchelSaver(rt)
        graph = build(saver)
        await graph.ainvoke({"log": []}, config("t"))
        with pytest.raises(asyncio.InvalidStateError, match="async methods"):
            saver.get_tuple(config("t"))
        found = await asyncio.to_thread(saver.get_tuple, config("t"))
        assert found is not None and found.checkpoint["channel_values"]["big"] == BIG
