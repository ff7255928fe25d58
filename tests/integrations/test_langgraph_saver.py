"""``SatchelSaver``'s own behaviour beyond the conformance suite: thread ids that do not fit
a session key, concurrent writes to one checkpoint, and the artifacts it collects."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint

import satchel
from satchel.integrations.langgraph import SatchelSaver

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """LangGraph runs on asyncio only (the conftest would run Trio too)."""
    return "asyncio"


async def put(saver: SatchelSaver, thread: str, values: dict[str, Any]) -> Any:
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = values
    versions = {c: saver.get_next_version(None, None) for c in values}
    checkpoint["channel_versions"] = versions
    config: Any = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    return await saver.aput(config, checkpoint, {"source": "input", "step": -1}, versions)


async def test_thread_ids_that_do_not_fit_a_key(tmp_path: Path) -> None:
    """A thread id over 246 bytes or holding NUL is hashed into the key and still listed,
    copied and deleted by its own id."""
    async with SatchelSaver.from_path(tmp_path / "data") as saver:
        long_id, nul_id = "t" * 300, "a\0b"
        for thread in (long_id, nul_id):
            config = await put(saver, thread, {"x": thread})
            found = await saver.aget_tuple(config)
            assert found is not None and found.checkpoint["channel_values"] == {"x": thread}
        listed = [t.config["configurable"]["thread_id"] async for t in saver.alist(None)]
        assert sorted(listed) == sorted([long_id, nul_id])
        await saver.acopy_thread(long_id, "u" * 300)
        copied = [t async for t in saver.alist({"configurable": {"thread_id": "u" * 300}})]
        assert [t.checkpoint["channel_values"] for t in copied] == [{"x": long_id}]
        await saver.adelete_thread(long_id)
        assert await saver.aget_tuple({"configurable": {"thread_id": long_id}}) is None


async def test_concurrent_writes_to_one_checkpoint_all_kept(tmp_path: Path) -> None:
    """Fifty tasks saving their writes to one checkpoint at once each keep theirs (the
    writes record is merged, with a retry when another writer came first)."""
    async with SatchelSaver.from_path(tmp_path / "data", durability="machine") as saver:
        config = await put(saver, "t", {"x": 1})
        await asyncio.gather(
            *(saver.aput_writes(config, [("log", n), ("n", n)], f"task-{n}") for n in range(50))
        )
        found = await saver.aget_tuple(config)
        assert found is not None and found.pending_writes is not None
        assert sorted(w[0] for w in found.pending_writes if w[1] == "log") == sorted(
            f"task-{n}" for n in range(50)
        )
        assert len(found.pending_writes) == 100


async def test_unreferenced_value_artifacts_are_collected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large value stored by a put that never wrote its record (a stopped process) is
    removed by collect_garbage once it is older than a put takes; values a checkpoint names
    stay, and so does a value that new (its put may be writing the record that names it)."""
    from satchel.integrations import _langgraph_upkeep

    async with satchel.open_runtime(tmp_path / "data") as rt:
        saver = SatchelSaver(rt)
        config = await put(saver, "t", {"big": "b" * 10_000})
        await rt.artifacts.store(
            "langgraph:t", "lgc-orphan", b"o" * 10_000, type="langgraph_channel"
        )
        assert await saver.collect_garbage("t") == 0  # too new to be garbage yet
        monkeypatch.setattr(_langgraph_upkeep, "_COLLECT_GRACE", timedelta(0))
        assert await saver.collect_garbage("t") == 1
        assert [b.channel for b in await saver.stored_channel_blobs("t")] == ["big"]
        found = await saver.aget_tuple(config)
        assert found is not None and found.checkpoint["channel_values"]["big"] == "b" * 10_000


def test_sync_opened_saver_serves_async_methods_from_another_loop(tmp_path: Path) -> None:
    """A saver opened with ``with`` (its runtime on a loop of its own) answers the async
    methods awaited on the caller's loop, and the sync ones, with the same checkpoints."""
    with SatchelSaver.from_path(tmp_path / "data") as saver:
        config = asyncio.run(put(saver, "t", {"x": 1}))
        found = saver.get_tuple(config)
        assert found is not None and found.checkpoint["channel_values"] == {"x": 1}

        async def listed() -> list[Any]:
            return [t.config async for t in saver.alist({"configurable": {"thread_id": "t"}})]

        assert asyncio.run(listed()) == [config]


async def test_a_finished_thread_refuses_writes_plainly(tmp_path: Path) -> None:
    """A put or put_writes on a thread whose session completed raises SessionNotActive at
    once (a suspended one is resumed); it does not retry as if another writer came first."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        saver = SatchelSaver(rt)
        config = await put(saver, "t", {"x": 1})
        await rt.sessions.suspend("langgraph:t")
        config = await put(saver, "t", {"x": 2})  # resumed
        await rt.sessions.complete("langgraph:t")
        with pytest.raises(satchel.SessionNotActiveError):
            await put(saver, "t", {"x": 3})
        with pytest.raises(satchel.SessionNotActiveError):
            await saver.aput_writes(config, [("x", 4)], "task-1")


async def test_a_suspended_thread_takes_values_kept_as_artifacts(tmp_path: Path) -> None:
    """A put or put_writes with a value large enough to be kept as an artifact resumes a
    suspended thread, as a small one does (the artifact's store was refused before)."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        saver = SatchelSaver(rt)
        await put(saver, "t", {"x": 1})
        await rt.sessions.suspend("langgraph:t")
        config = await put(saver, "t", {"big": "b" * 10_000})
        await rt.sessions.suspend("langgraph:t")
        await saver.aput_writes(config, [("big", "c" * 10_000)], "task-1")
        found = await saver.aget_tuple(config)
        assert found is not None and found.checkpoint["channel_values"] == {"big": "b" * 10_000}
        assert found.pending_writes == [("task-1", "big", "c" * 10_000)]


async def test_writers_on_a_suspended_thread_resume_it_once_between_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many put_writes at once from two savers on a suspended thread all land, its reads
    slowed as over a network: the first resume is enough for the others, whose own resume
    finds the thread active (it raised before)."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        savers = [SatchelSaver(rt), SatchelSaver(rt)]
        config = await put(savers[0], "t", {"x": 1})
        get = rt.sessions.get

        async def slow_get(session_id: str) -> Any:
            await asyncio.sleep(0.01)
            return await get(session_id)

        monkeypatch.setattr(rt.sessions, "get", slow_get)
        await rt.sessions.suspend("langgraph:t")
        await asyncio.gather(
            *(savers[n % 2].aput_writes(config, [("n", n)], f"task-{n}") for n in range(20))
        )
        found = await savers[1].aget_tuple(config)
        assert found is not None
        assert sorted(w[2] for w in found.pending_writes) == list(range(20))


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("kind", ["put", "put_writes"])
async def test_a_thread_deleted_while_it_is_resumed_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, big: bool, kind: str
) -> None:
    """A put or put_writes refused on a suspended thread that is deleted before it is looked
    at again makes the thread again and lands, as on any thread deleted meanwhile (it raised
    SessionNotFoundError)."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        saver = SatchelSaver(rt)
        value = "b" * 10_000 if big else "b"
        config = await put(saver, "t", {"x": 1})
        get = rt.sessions.get

        async def deleted_first(session_id: str) -> Any:
            monkeypatch.setattr(rt.sessions, "get", get)
            await rt.sessions.delete(session_id)
            return await get(session_id)

        await rt.sessions.suspend("langgraph:t")
        monkeypatch.setattr(rt.sessions, "get", deleted_first)
        if kind == "put":
            config = await put(saver, "t", {"x": value})
            found = await saver.aget_tuple(config)
            assert found is not None and found.checkpoint["channel_values"] == {"x": value}
        else:
            await saver.aput_writes(config, [("x", value)], "task-1")
            assert (await rt.sessions.get("langgraph:t")).status == "active"
        assert rt.sessions.get is get  # the thread was deleted, and made again


async def test_a_lost_value_is_an_error_not_a_missing_channel(tmp_path: Path) -> None:
    """A checkpoint whose large value artifact is gone fails to load (IntegrityError)
    rather than coming back without that channel."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        saver = SatchelSaver(rt)
        config = await put(saver, "t", {"big": "b" * 10_000})
        for blob in await saver.stored_channel_blobs("t"):
            await rt.artifacts.delete("langgraph:t", blob.name)
        with pytest.raises(satchel.IntegrityError):
            await saver.aget_tuple(config)


async def test_each_pending_write_is_written_once(tmp_path: Path) -> None:
    """A task's write is a variable of its own: each put_writes journals only its own writes
    (the whole checkpoint's writes rewritten each time grew the journal with the square of
    the tasks and failed past ~1 MiB), and every write reads back."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        saver = SatchelSaver(rt)
        config = await put(saver, "t", {"x": 1})
        for n in range(300):
            await saver.aput_writes(config, [("ch", n)], f"task-{n}", task_path=f"p{n}")
        last = (await rt.sessions.timeline("langgraph:t"))[-1]
        assert last.kind == "events_appended" and len(last.data["state"]) == 1
        (journaled,) = last.data["state"].values()
        assert journaled["task"] == "task-299"  # this write alone, not the 299 before it
        found = await saver.aget_tuple(config)
        assert found is not None and len(found.pending_writes) == 300
        assert (await rt.check()).clean


async def test_a_channel_never_stored_is_looked_for_once(tmp_path: Path) -> None:
    """A channel version no put ever stored is searched for once, then recorded as missing:
    later puts find it in their parent instead of reading every record of the thread again,
    and it reads back as no value."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        saver = SatchelSaver(rt)
        config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        reads = 0
        get_state = rt.sessions.get_state

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal reads
            reads += 1
            return await get_state(*args, **kwargs)

        rt.sessions.get_state = counted  # type: ignore[method-assign]
        per_put = []
        for step in range(40):
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = {"x": step}
            checkpoint["channel_versions"] = {"x": step + 1, "never": 1}
            before = reads
            config = await saver.aput(config, checkpoint, {"step": step}, {"x": step + 1})
            per_put.append(reads - before)
        assert max(per_put[5:]) == min(per_put[5:])  # constant, not growing with the thread
        found = await saver.aget_tuple(config)
        assert found is not None and found.checkpoint["channel_values"] == {"x": 39}


async def test_prune_keeps_only_the_latest_when_a_channel_was_never_stored(
    tmp_path: Path,
) -> None:
    """A channel no put stored does not make prune keep the thread's whole history."""
    async with satchel.open_runtime(tmp_path / "data") as rt:
        saver = SatchelSaver(rt)
        config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        for step in range(5):
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = {"x": step}
            checkpoint["channel_versions"] = {"x": step + 1, "never": 1}
            config = await saver.aput(config, checkpoint, {"step": step}, {"x": step + 1})
        await saver.aprune(["t"], strategy="keep_latest")
        listed = [c async for c in saver.alist({"configurable": {"thread_id": "t"}})]
        assert len(listed) == 1 and listed[0].checkpoint["channel_values"] == {"x": 4}
