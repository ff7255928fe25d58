"""The session actor keeps its artifact names' heads (``actors/artifacts/_artifact_heads``):
versions stay numbered on whatever it kept, loaded, forgot or found stale."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from satchel import Runtime, StoreUnavailableError, open_runtime
from satchel.actors.artifacts import _artifact_heads as heads
from satchel.actors.artifacts import _artifact_layout as layout
from satchel.actors.sessions import _session_layout as session_layout
from satchel.storage import Batch, LocalRecords

from .conftest import NETWORKED_RUNTIMES, open_test_runtime

pytestmark = pytest.mark.anyio


@pytest.fixture(params=NETWORKED_RUNTIMES)
async def rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with open_test_runtime(request.param, tmp_path) as runtime:
        yield runtime


async def versions(rt: Runtime, session_id: str, name: str) -> list[int]:
    return [info.version for info in await rt.artifacts.versions(session_id, name)]


async def test_a_head_written_behind_the_actors_back_is_read_again(rt: Runtime) -> None:
    """A head the actor kept and another writer moved on fails the store's condition; the
    store is planned again from a read and numbers after the head it finds."""
    session_id = await rt.sessions.create()
    await rt.artifacts.store(session_id, "doc", b"one", type="file")
    sid = session_layout.bytes_of(session_id)
    key = layout.name_key(sid, b"doc")
    head = await rt.store.records.get(key)
    assert head is not None
    _, first, latest = layout.decode_name_value(head)
    batch = Batch()
    batch.put(key, layout.encode_name_value(7, first, latest))
    await rt.store.records.write(batch)
    ref = await rt.artifacts.store(session_id, "doc", b"two", type="file")
    assert ref.version == 8
    assert await versions(rt, session_id, "doc") == [1, 8]
    assert (await rt.sessions.check()).clean


async def test_a_name_deleted_whole_numbers_on_in_the_same_actor(rt: Runtime) -> None:
    """Deleting every version of a name keeps its last number for the next store (the
    retired key the actor keeps), and deleting the latest keeps the head's number too."""
    session_id = await rt.sessions.create()
    for content in (b"one", b"two"):
        await rt.artifacts.store(session_id, "doc", content, type="file")
    await rt.artifacts.delete(session_id, "doc", 2)
    assert (await rt.artifacts.store(session_id, "doc", b"three", type="file")).version == 3
    await rt.artifacts.delete(session_id, "doc")
    assert (await rt.artifacts.store(session_id, "doc", b"four", type="file")).version == 4
    await rt.artifacts.delete(session_id, "doc")
    assert (await rt.artifacts.store(session_id, "doc", b"five", type="file")).version == 5
    assert await versions(rt, session_id, "doc") == [5]
    assert (await rt.sessions.check()).clean


async def test_more_names_than_loaded_or_kept_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session with more names than an actor loads, or keeps, reads the heads it does not
    hold: every name numbers on, after a restart too."""
    monkeypatch.setattr(heads, "LOAD_MAX", 2)
    monkeypatch.setattr(heads, "KEEP_MAX", 3)
    names = [f"n{i}" for i in range(6)]
    async with open_runtime(tmp_path / "data") as rt:
        session_id = await rt.sessions.create()
        for name in names:
            await rt.artifacts.store(session_id, name, name.encode(), type="file")
        await rt.artifacts.delete(session_id, "n5")
        for name in names:
            await rt.artifacts.store(session_id, name, b"again", type="file")
    async with open_runtime(tmp_path / "data") as rt:
        for name in reversed(names):
            ref = await rt.artifacts.store(session_id, name, b"third", type="file")
            assert ref.version == 3, name
        assert (await rt.sessions.check()).clean


def lose_answers(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """While the list returned holds an item, the next write of a local store lands and
    then raises ``StoreUnavailableError`` (as a connection dropped after the commit)."""
    failing: list[bool] = []
    original = LocalRecords.write

    async def write(self: Any, batch: Batch, **kw: Any) -> None:
        await original(self, batch, **kw)
        if failing:
            failing.clear()
            raise StoreUnavailableError("the answer was lost")

    monkeypatch.setattr(LocalRecords, "write", write)
    return failing


async def test_a_store_that_failed_after_it_landed_is_not_numbered_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store or delete whose write landed but answered an error leaves the actor not
    knowing its heads: it forgets them, and the next store of that name numbers after
    what landed."""
    failing = lose_answers(monkeypatch)
    async with open_runtime(tmp_path / "data") as rt:
        session_id = await rt.sessions.create()
        await rt.artifacts.store(session_id, "doc", b"one", type="file")
        failing.append(True)
        with pytest.raises(StoreUnavailableError):
            await rt.artifacts.store(session_id, "doc", b"two", type="file")
        failing.append(True)
        with pytest.raises(StoreUnavailableError):
            await rt.artifacts.store(session_id, "new", b"first", type="file")
        assert (await rt.artifacts.store(session_id, "doc", b"three", type="file")).version == 3
        assert (await rt.artifacts.store(session_id, "new", b"second", type="file")).version == 2
        failing.append(True)
        with pytest.raises(StoreUnavailableError):
            await rt.artifacts.delete(session_id, "new")
        assert (await rt.artifacts.store(session_id, "new", b"third", type="file")).version == 3
        assert await versions(rt, session_id, "doc") == [1, 2, 3]


async def test_a_write_that_failed_after_it_landed_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session's write that landed but answered an error (a connection dropped after the
    commit) is counted by the next one: the actor reads its counters again instead of
    counting on from what it held (which overwrote the journal entry that landed and left
    the artifact counters behind what is stored)."""
    failing = lose_answers(monkeypatch)
    async with open_runtime(tmp_path / "data") as rt:
        session_id = await rt.sessions.create()
        await rt.artifacts.store(session_id, "doc", b"one", type="file")
        failing.append(True)
        with pytest.raises(StoreUnavailableError):
            await rt.artifacts.store(session_id, "doc", b"two", type="file")
        await rt.artifacts.store(session_id, "other", b"three", type="file")
        failing.append(True)
        with pytest.raises(StoreUnavailableError):
            await rt.sessions.set_state(session_id, "k", 1)
        await rt.sessions.set_state(session_id, "k", 2)
        kinds = [entry.kind for entry in await rt.sessions.timeline(session_id)]
        assert kinds.count("artifact_stored") == 3
        assert kinds.count("state_set") == 2
        assert (await rt.sessions.check()).clean
