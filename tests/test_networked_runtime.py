"""Runtimes in several processes on one PostgreSQL store: what their writes must not break."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from satchel import SessionExistsError, StoreUnavailableError, open_runtime
from satchel.storage import Batch, SplitRecords

from .ports import drop_table, networked_place

pytestmark = pytest.mark.anyio


@pytest.fixture
async def place() -> AsyncIterator[tuple[str, str]]:
    """A PostgreSQL store URL naming a table of its own (dropped afterwards), and an S3 URL
    naming a bucket folder of its own."""
    store, objects, table = networked_place()
    yield store, objects
    await drop_table(table)


async def test_two_runtimes_creating_one_key_make_one_session(place: tuple[str, str]) -> None:
    """Two runtimes on one store creating the same session key at once: one creates it, the
    other gets SessionExistsError, and the session is whole."""
    outcomes: list[str] = []
    store_url = place[0]
    async with open_runtime(store=store_url) as first, open_runtime(store=store_url) as second:

        async def create(rt: object, name: str) -> None:
            try:
                await rt.sessions.create(key="the-one", name=name)  # type: ignore[attr-defined]
                outcomes.append("created")
            except SessionExistsError:
                outcomes.append("exists")

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(create, first, "first")
            tasks.start_soon(create, second, "second")
        assert sorted(outcomes) == ["created", "exists"]
        info = await first.sessions.get("the-one")
        assert info.name in ("first", "second")
        assert (await second.sessions.check()).clean


async def test_gc_sweeps_objects_no_record_names(place: tuple[str, str]) -> None:
    """gc on PostgreSQL with S3 deletes an object left behind (no record names it, older than
    an hour) and keeps the objects of stored artifacts."""
    async with open_runtime(store=place[0], objects=place[1]) as rt:
        sid = await rt.sessions.create(name="gc")
        content = os.urandom(200_000)
        await rt.artifacts.store(sid, "big.bin", content, type="file")
        split = rt.store.records
        assert isinstance(split, SplitRecords)
        named = [name async for name in split.objects.list()]
        assert named  # the artifact's chunk is an object
        await split.objects.put(f"{split.namespace}/{b'gone'.hex()}.{0:016x}.00000000", b"x")
        report = await rt.control.gc()
        assert report.orphan_objects_freed == 1
        assert [name async for name in split.objects.list()] == named
        assert (await rt.artifacts.get(sid, "big.bin")).content == content


class _FailingPuts:
    """An object store whose puts fail, as S3 going away mid-store (reads still work)."""

    def __init__(self, objects: Any) -> None:
        self._objects = objects

    async def put(self, key: str, data: bytes) -> None:
        raise StoreUnavailableError("the object store did not answer")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._objects, name)


async def test_an_s3_failure_mid_store_fails_it_and_names_no_missing_object(
    place: tuple[str, str],
) -> None:
    """An artifact store whose large chunk cannot reach S3 fails with StoreUnavailableError;
    no record names a missing object, the store checks clean, and once S3 is back the same
    runtime stores and reads it."""
    async with open_runtime(store=place[0], objects=place[1]) as rt:
        sid = await rt.sessions.create(name="s3 down")
        split = rt.store.records
        assert isinstance(split, SplitRecords)
        working = split.objects
        split.objects = _FailingPuts(working)  # type: ignore[assignment]
        content = os.urandom(200_000)
        with pytest.raises(StoreUnavailableError):
            await rt.artifacts.store(sid, "big.bin", content, type="file")
        assert await rt.artifacts.list(sid) == []
        assert (await rt.check()).clean
        split.objects = working
        await rt.artifacts.store(sid, "big.bin", content, type="file")
        assert (await rt.artifacts.get(sid, "big.bin")).content == content
        assert (await rt.check()).clean


async def test_two_runtimes_sharing_one_content_keep_its_count(place: tuple[str, str]) -> None:
    """Two runtimes on one store storing and deleting sessions that hold the same content at
    once: the blob's count stays its references, to zero and back, and check is clean."""
    store_url, objects = place
    content = b'{"role": "tool", "content": "shared across runtimes"}\n' * 30
    async with (
        open_runtime(store=store_url, objects=objects) as first,
        open_runtime(store=store_url, objects=objects) as second,
    ):

        async def churn(rt: Any, rounds: int) -> None:
            for _ in range(rounds):
                made = [await rt.sessions.create() for _ in range(3)]
                for session_id in made:
                    await rt.session(session_id).store_artifact("same", content, type="text/plain")
                for session_id in made:
                    await rt.sessions.delete(session_id)

        async with anyio.create_task_group() as tasks:
            for rt in (first, second, first, second):
                tasks.start_soon(churn, rt, 4)
        kept = await first.sessions.create()
        ref = await first.session(kept).store_artifact("same", content, type="text/plain")
        assert (await first.check()).clean
        assert (await second.check()).clean
        meta = await first.store.blobs.load_meta(bytes.fromhex(ref.content_hash))
        assert meta is not None and meta.refcount == 1


async def test_check_leaves_another_process_upload_in_flight_alone(place: tuple[str, str]) -> None:
    """On a shared store, chunks another process is uploading (marked pending, not yet
    committed) are not orphans to check, and check(fix=True) does not delete them."""
    store_url, objects = place
    async with (
        open_runtime(store=store_url, objects=objects) as first,
        open_runtime(store=store_url, objects=objects) as second,
    ):
        staged = await second.store.blobs.put(os.urandom(3 << 20))  # chunks written, pending
        report = await first.check()
        assert report.clean, report
        await first.check(fix=True)
        batch = Batch()
        batch.put(b"demo\x00owner", b"")
        await second.store.blobs.commit(batch, add=[(staged, b"demo\x00owner")])
        assert await second.store.blobs.read(staged.ref) is not None
        assert (await second.check()).clean


async def test_an_asker_cancelled_mid_write_does_not_cut_the_sessions_turn(
    place: tuple[str, str],
) -> None:
    """On PostgreSQL, where a session's write waits on the network, askers whose deadline
    passes during the write leave the turn to finish: no actor restarts, and each write
    either landed whole or not at all."""
    async with open_runtime(store=place[0]) as rt:
        sid = await rt.sessions.create()
        await rt.sessions.set_state(sid, "k", 0)  # live and idle: its turns may be lent
        restarts = rt.control.statistics().supervisor.restarts
        cut = 0
        for i in range(1, 41):
            with anyio.move_on_after(0.00005 * (i % 8)) as scope:
                await rt.sessions.append_events(sid, [{"i": i}], state={"k": i})
            cut += scope.cancelled_caught
        assert cut  # the deadlines did pass mid-call
        # A write queues behind a turn its asker left (queued on asyncio, still writing).
        await rt.sessions.set_state(sid, "done", True)
        state = await rt.sessions.state(sid)
        events = await rt.sessions.events(sid)
        assert rt.control.statistics().supervisor.restarts == restarts
        assert [e.position for e in events] == list(range(1, len(events) + 1))
        assert state["k"] == (events[-1].data["i"] if events else 0)
        assert (await rt.sessions.check()).clean
        for i in range(1, 41):  # reads cut by their deadlines neither (a few would fail it)
            with anyio.move_on_after(0.00005 * (i % 8)):
                await rt.sessions.get_state(sid, "k")
        assert rt.control.statistics().supervisor.restarts == restarts
        assert await rt.sessions.get_state(sid, "k") == state["k"]
