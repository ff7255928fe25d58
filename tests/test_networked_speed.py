"""The shortcuts of the networked paths read and write what the general paths would."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from satchel import SessionNotFoundError, WriteConflictError, open_runtime
from satchel.storage import ABSENT, BLOBS, INDEX, Batch, Equals, LocalRecords

from .ports import drop_table, networked_place, open_records

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("count", [1, 3, 16, 17, 40])
async def test_plain_puts_write_each_key_once_the_last_put_winning(
    tmp_path: Path, count: int
) -> None:
    """A batch of unconditional puts (sent as one upsert: VALUES rows or arrays by size)
    writes every key of both spaces, a key put twice holding the later value, over
    values already there."""
    async with open_records("postgresql", tmp_path) as records:
        before = Batch()
        before.put(b"k0", b"old")
        await records.write(before)
        batch = Batch()
        for i in range(count):
            batch.put(f"k{i}".encode(), b"first")
            batch.put(f"k{i}".encode(), f"v{i}".encode())
        batch.put(b"blob", b"chunk", BLOBS)
        await records.write(batch)
        keys = [f"k{i}".encode() for i in range(count)]
        assert await records.get_many(keys) == [f"v{i}".encode() for i in range(count)]
        assert await records.get(b"blob", BLOBS) == b"chunk"
        assert await records.get(b"blob", INDEX) is None


@pytest.mark.parametrize("count", [1, 2, 8, 9, 30])
async def test_get_many_answers_in_order_with_missing_keys(tmp_path: Path, count: int) -> None:
    """get_many (an IN list up to eight keys, an array beyond) answers each key in the
    order asked, None for a missing one, a key asked twice twice."""
    async with open_records("postgresql", tmp_path) as records:
        batch = Batch()
        for i in range(0, count, 2):
            batch.put(f"k{i}".encode(), f"v{i}".encode())
        await records.write(batch)
        keys = [f"k{i}".encode() for i in reversed(range(count))] + [b"k0"]
        expected = [None if i % 2 else f"v{i}".encode() for i in reversed(range(count))]
        assert await records.get_many(keys) == [*expected, b"v0"]


async def test_a_get_after_deletes_and_new_versions_reads_the_latest() -> None:
    """Reads that remember the version they found latest read the right one after a newer
    version is stored, after the latest is deleted, and after the session is deleted."""
    store, objects, table = networked_place()
    try:
        async with open_runtime(store=store, objects=objects) as rt:
            sid = await rt.sessions.create(name="reads")
            await rt.artifacts.store(sid, "doc", b"one", type="file")
            assert (await rt.artifacts.get(sid, "doc")).content == b"one"
            await rt.artifacts.store(sid, "doc", b"two", type="file")
            assert (await rt.artifacts.get(sid, "doc")).content == b"two"
            await rt.artifacts.delete(sid, "doc", 2)
            got = await rt.artifacts.get(sid, "doc")
            assert (got.content, got.metadata.version) == (b"one", 1)
            await rt.artifacts.store(sid, "doc", b"three", type="file")
            got = await rt.artifacts.get(sid, "doc")
            assert (got.content, got.metadata.version) == (b"three", 3)
            await rt.sessions.delete(sid)
            with pytest.raises(SessionNotFoundError):
                await rt.artifacts.get(sid, "doc")
    finally:
        await drop_table(table)


async def test_a_conditional_batch_in_one_statement_is_all_or_nothing(tmp_path: Path) -> None:
    """A batch of plain and conditional puts and deletes (one statement on PostgreSQL)
    writes nothing when any condition fails, and everything when they all hold."""
    async with open_records("postgresql", tmp_path) as records:
        start = Batch()
        for key in (b"kept", b"gone", b"counted", b"dropped"):
            start.put(key, b"1")
        await records.write(start)

        def batch(expected: bytes) -> Batch:
            made = Batch()
            made.put(b"new", b"n")
            made.delete(b"gone")
            made.put(b"counted", b"2", expect=Equals(expected))
            made.delete(b"dropped", expect=Equals(b"1"))
            made.put(b"fresh", b"f", expect=ABSENT)
            made.put(b"chunk", b"c", BLOBS)
            return made

        with pytest.raises(WriteConflictError, match="nothing of the transaction"):
            await records.write(batch(b"stale"))
        everything = [b"kept", b"gone", b"counted", b"dropped", b"new", b"fresh"]
        assert await records.get_many(everything) == [b"1", b"1", b"1", b"1", None, None]
        assert await records.get(b"chunk", BLOBS) is None
        await records.write(batch(b"1"))
        assert await records.get_many(everything) == [b"1", None, b"2", None, b"n", b"f"]
        assert await records.get(b"chunk", BLOBS) == b"c"


@pytest.mark.parametrize("failing", range(6))
async def test_one_failed_condition_among_several_of_its_kind_fails_the_batch(
    tmp_path: Path, failing: int
) -> None:
    """A batch with two conditional operations of each kind (sent as one part per kind)
    writes nothing when any one of the six fails, and all of them when none does."""
    async with open_records("postgresql", tmp_path) as records:
        start = Batch()
        for key in (b"u0", b"u1", b"e0", b"e1"):
            start.put(key, b"1")
        if failing < 2:
            start.put(f"a{failing}".encode(), b"1")  # not absent: its put fails
        await records.write(start)

        def batch(wrong: int | None) -> Batch:
            made = Batch()
            made.put(b"plain", b"p")
            for key in (b"a0", b"a1"):
                made.put(key, b"a", expect=ABSENT)
            for n, key in enumerate((b"u0", b"u1"), start=2):
                made.put(key, b"2", expect=Equals(b"0" if wrong == n else b"1"))
            for n, key in enumerate((b"e0", b"e1"), start=4):
                made.delete(key, expect=Equals(b"0" if wrong == n else b"1"))
            return made

        keys = [b"plain", b"a0", b"a1", b"u0", b"u1", b"e0", b"e1"]
        with pytest.raises(WriteConflictError):
            await records.write(batch(failing))
        before = [None, b"1" if failing == 0 else None, b"1" if failing == 1 else None]
        assert await records.get_many(keys) == [*before, b"1", b"1", b"1", b"1"]
        undo = Batch()
        undo.delete(b"a0")
        undo.delete(b"a1")
        await records.write(undo)
        await records.write(batch(None))
        assert await records.get_many(keys) == [b"p", b"a", b"a", b"2", b"2", None, None]


async def test_a_long_conditional_batch_goes_to_the_commit_function(tmp_path: Path) -> None:
    """A conditional batch too long for one statement is written whole by the function,
    and refused whole by it when its condition fails."""
    async with open_records("postgresql", tmp_path) as records:
        batch = Batch()
        for i in range(50):
            batch.put(f"k{i}".encode(), b"v")
        batch.put(b"head", b"1", expect=ABSENT)
        await records.write(batch)
        with pytest.raises(WriteConflictError):
            await records.write(batch)
        keys = [f"k{i}".encode() for i in range(50)] + [b"head"]
        assert await records.get_many(keys) == [b"v"] * 50 + [b"1"]


def count_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The record port's reads and writes (each a round trip on PostgreSQL), named as made."""
    calls: list[str] = []
    for name in ("get", "get_many", "scan", "write"):
        original = getattr(LocalRecords, name)

        def counted(self: Any, *args: Any, _name: str = name, _f: Any = original, **kw: Any) -> Any:
            calls.append(_name)
            return _f(self, *args, **kw)

        monkeypatch.setattr(LocalRecords, name, counted)
    return calls


async def test_a_small_artifact_store_is_one_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storing 1 KiB as a new name, or as a new version of a name, makes one write of the
    record port and no read (one round trip on PostgreSQL): the session actor keeps its
    names' heads, the blob's count and reference are guessed (new content), and all are
    written on the condition that they are as kept or guessed."""
    calls = count_calls(monkeypatch)
    async with open_runtime(tmp_path / "data", store="memory") as rt:
        session_id = await rt.sessions.create()
        handle = rt.session(session_id)
        await handle.store_artifact("notes", os.urandom(1024), type="text/plain")
        calls.clear()
        await handle.store_artifact("notes", os.urandom(1024), type="text/plain")
        assert calls == ["write"]
        calls.clear()
        await handle.store_artifact("other", os.urandom(1024), type="text/plain")
        assert calls == ["write"]


async def test_a_runtime_started_again_loads_the_heads_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session actor started again reads its session (one ``get_many``; on a local store a
    ``get`` of its counters before it, which finds that the session exists before an actor
    is started for it) and, at its first store, loads its names' heads and retired names
    (two scans); then it stores an existing name, and one deleted whole, with one write
    each, numbering their versions on."""
    async with open_runtime(tmp_path / "data") as rt:
        session_id = await rt.sessions.create()
        await rt.artifacts.store(session_id, "notes", b"one", type="file")
        await rt.artifacts.store(session_id, "gone", b"two", type="file")
        await rt.artifacts.delete(session_id, "gone")
    calls = count_calls(monkeypatch)
    async with open_runtime(tmp_path / "data") as rt:
        calls.clear()  # what opening reads and writes
        ref = await rt.artifacts.store(session_id, "notes", b"three", type="file")
        assert (ref.version, calls) == (2, ["get", "get_many", "scan", "scan", "write"])
        calls.clear()
        ref = await rt.artifacts.store(session_id, "gone", b"four", type="file")
        assert (ref.version, calls) == (2, ["write"])


@pytest.mark.parametrize(("puts", "deletes"), [(0, 1), (0, 8), (3, 1), (16, 8), (3, 9), (17, 2)])
async def test_plain_puts_and_deletes_apply_the_later_operation_on_each_key(
    tmp_path: Path, puts: int, deletes: int
) -> None:
    """A batch of unconditional puts and deletes (one statement where it is small) deletes
    and writes each key as the batch's later operation on it says, in both spaces."""
    async with open_records("postgresql", tmp_path) as records:
        before = Batch()
        for i in range(deletes):
            before.put(f"d{i}".encode(), b"old")
        before.put(b"revived", b"old")
        before.put(b"blob", b"chunk", BLOBS)
        await records.write(before)
        batch = Batch()
        batch.put(b"gone", b"briefly")
        for i in range(deletes):
            batch.delete(f"d{i}".encode())
        batch.delete(b"revived")
        for i in range(puts):
            batch.put(f"p{i}".encode(), f"v{i}".encode())
        batch.put(b"revived", b"new")
        batch.delete(b"gone")
        batch.delete(b"blob", BLOBS)
        await records.write(batch)
        assert (
            await records.get_many([f"d{i}".encode() for i in range(deletes)]) == [None] * deletes
        )
        assert await records.get_many([f"p{i}".encode() for i in range(puts)]) == [
            f"v{i}".encode() for i in range(puts)
        ]
        assert await records.get(b"revived") == b"new"
        assert await records.get(b"gone") is None
        assert await records.get(b"blob", BLOBS) is None
