"""The by-update index: buckets of a 64th of a second, and entries an earlier layout left
behind."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given
from hypothesis import strategies as st

from satchel import (
    IntegrityError,
    Runtime,
    StoreWriteFailedError,
    WriteConflictError,
    open_runtime,
)
from satchel.actors import export_session, import_session
from satchel.actors.sessions import _session_layout as layout
from satchel.actors.sessions._layout_upgrade import move_earlier_update_entries
from satchel.actors.sessions._session_records import SessionRecords
from satchel.storage import Batch

#: The last microsecond a stored time may hold (the end of the year 9999).
_LAST_US = 253_402_300_799_999_999
_SID = bytes(range(16))


@given(
    legacy=st.integers(min_value=0, max_value=_LAST_US),
    now=st.integers(min_value=0, max_value=_LAST_US),
)
def test_every_entry_sorts_after_every_entry_of_the_earlier_layout(legacy: int, now: int) -> None:
    """An entry bucketed by the second sorts before any entry of the finer buckets."""
    assert layout.legacy_updated_key(_SID, legacy) < layout.updated_key(_SID, now)


@given(
    a=st.integers(min_value=0, max_value=_LAST_US), b=st.integers(min_value=0, max_value=_LAST_US)
)
def test_entries_sort_by_time(a: int, b: int) -> None:
    """By-update keys sort as their 64ths of a second do, and share a key within one."""
    ka, kb = layout.updated_key(_SID, a), layout.updated_key(_SID, b)
    assert (ka == kb) == layout.same_update_bucket(a, b) == (a * 64 // 10**6 == b * 64 // 10**6)
    if a * 64 // 10**6 < b * 64 // 10**6:
        assert ka < kb


async def _updated_us(rt: Runtime, sid: str) -> int:
    raw = rt.store.kv.get(layout.counters_key(layout.bytes_of(sid)))
    assert raw is not None
    return layout.Counters.decode(raw).updated_us


async def test_a_newest_first_query_ranks_only_the_buckets_it_reaches(
    autojump_clock: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six hundred sessions updated within one second: a newest-first query of five reads
    the update times of the sessions of the 64ths of a second it reaches, not of the whole
    second."""
    asked: list[int] = []
    update_times = SessionRecords.update_times

    async def counted(self: SessionRecords, sids: list[bytes]) -> list[int]:
        asked.append(len(sids))
        return await update_times(self, sids)

    async with open_runtime(store="memory") as rt:
        first = await rt.sessions.create()
        start = await _updated_us(rt, first)
        await anyio.sleep((1_000_000 - start % 1_000_000) / 1e6 + 0.01)  # a new second
        ids = []
        for _ in range(600):
            ids.append(await rt.sessions.create())
            await anyio.sleep(0.001)
        seconds = {await _updated_us(rt, sid) // 1_000_000 for sid in ids}
        assert len(seconds) == 1  # the earlier layout would rank all 600 together
        monkeypatch.setattr(SessionRecords, "update_times", counted)
        newest = await rt.sessions.list(order_by="updated_at", descending=True, limit=5)
        assert [s.id for s in newest] == ids[::-1][:5]
        assert 0 < sum(asked) <= 100, asked  # what a page reads ahead, not the 600


def _to_earlier_layout(rt: Runtime, sids: list[str], updated: dict[str, int]) -> None:
    """Put the sessions' by-update entries back in the layout of earlier versions."""
    kv = rt.store.kv
    batch = Batch()
    for sid in sids:
        key = layout.updated_key(layout.bytes_of(sid), updated[sid])
        value = kv.get(key)
        assert value is not None
        batch.delete(key)
        batch.put(layout.legacy_updated_key(layout.bytes_of(sid), updated[sid]), value)
    kv.write(batch)


def _entries(rt: Runtime) -> list[tuple[str, str]]:
    """Each by-update entry as (layout, session id), in key order."""
    found = []
    for key, _ in rt.store.kv.scan(layout.BY_UPDATED, layout.BY_UPDATED + b"\xff"):
        bucket = int.from_bytes(key[len(layout.BY_UPDATED) : len(layout.BY_UPDATED) + 8], "big")
        found.append(("now" if bucket >= layout.FINE_BUCKETS else "earlier", key[-16:]))
    return [(kind, layout.text_of(sid)) for kind, sid in found]


async def _newest_first(rt: Runtime) -> list[str]:
    return [s.id for s in await rt.sessions.list(order_by="updated_at", descending=True)]


async def test_entries_of_the_earlier_layout_are_read_then_moved_when_the_folder_opens(
    tmp_path: Path, autojump_clock: None
) -> None:
    """By-update entries an earlier version wrote: queries order their sessions, ``check``
    finds them clean, and the next open moves every one into the current layout, after which
    writes and deletes move and remove them as any other."""
    async with open_runtime(tmp_path) as rt:
        old = []
        for i in range(5):
            old.append(await rt.sessions.create(name=f"old {i}"))
            await anyio.sleep(0.3)
        await rt.sessions.set_state(old[1], "k", 1)
        updated = {sid: await _updated_us(rt, sid) for sid in old}
        _to_earlier_layout(rt, old, updated)
        by_time = sorted(old, key=lambda sid: updated[sid], reverse=True)
        assert {kind for kind, _ in _entries(rt)} == {"earlier"}
        assert (await rt.sessions.check()).clean
        assert await _newest_first(rt) == by_time
    async with open_runtime(tmp_path) as rt:
        assert sorted(_entries(rt)) == sorted(("now", sid) for sid in old)
        assert await _newest_first(rt) == by_time
        await anyio.sleep(1)
        fresh = await rt.sessions.create(name="fresh")
        await anyio.sleep(1)
        await rt.sessions.set_state(old[3], "k", 2)
        await rt.sessions.delete(old[0])
        rest = [s for s in by_time if s not in (old[3], old[0])]
        assert await _newest_first(rt) == [old[3], fresh, *rest]
        assert len(_entries(rt)) == 5
        assert (await rt.sessions.check()).clean


async def test_an_imported_session_is_ordered_among_sessions_of_an_earlier_version(
    tmp_path: Path,
) -> None:
    """An archive brings a session with its own, older update time: it is listed after a
    session an earlier version updated since, once the folder was opened again."""
    async with open_runtime(tmp_path) as rt:
        older = await rt.sessions.create(name="older")
        sink = io.BytesIO()
        await export_session(rt.sessions, rt.artifacts, rt.store, older, sink)
        await rt.sessions.delete(older)
        await anyio.sleep(1.1)
        newer = await rt.sessions.create(name="newer")
        _to_earlier_layout(rt, [newer], {newer: await _updated_us(rt, newer)})
    async with open_runtime(tmp_path) as rt:
        await import_session(rt.sessions, rt.artifacts, rt.store, io.BytesIO(sink.getvalue()))
        assert await _newest_first(rt) == [newer, older]
        assert await rt.sessions.restore_recent(1) == [newer]


async def test_moving_the_earlier_entries_reads_again_a_session_written_meanwhile(
    autojump_clock: None,
) -> None:
    """The move expects each session as it read it: a page with a session written since
    fails whole, and its entries are then moved one by one, each read again."""
    async with open_runtime(store="memory") as rt:
        sids = [await rt.sessions.create(name=f"s{i}") for i in range(5)]
        updated = {sid: await _updated_us(rt, sid) for sid in sids}
        _to_earlier_layout(rt, sids, updated)
        records = rt.store.records
        written = []

        class WrittenBetween:
            """The store, with a session written between the first read and the move."""

            scan, get, write = records.scan, records.get, records.write

            async def get_many(self, keys: list[bytes]) -> list[bytes | None]:
                found = await records.get_many(keys)
                if not written:
                    await anyio.sleep(1)
                    await rt.sessions.set_state(sids[2], "k", 1)
                    written.append(sids[2])
                return found

        assert await move_earlier_update_entries(cast(Any, WrittenBetween())) == 5
        assert sorted(_entries(rt)) == sorted(("now", sid) for sid in sids)
        assert (await rt.sessions.check()).clean
        assert (await _newest_first(rt))[0] == sids[2]


async def test_an_entry_that_keeps_changing_is_left_to_the_next_open(
    autojump_clock: None, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry whose every move conflicts is left as it is, with a warning, and still
    reads right."""
    async with open_runtime(store="memory") as rt:
        sids = [await rt.sessions.create(name=f"s{i}") for i in range(2)]
        _to_earlier_layout(rt, sids, {sid: await _updated_us(rt, sid) for sid in sids})
        records = rt.store.records

        class Contended:
            """The store, every write of it losing to another writer."""

            scan, get, get_many = records.scan, records.get, records.get_many

            async def write(self, batch: Batch) -> None:
                raise WriteConflictError("another writer got there first")

        assert await move_earlier_update_entries(cast(Any, Contended())) == 0
        assert "kept changing" in caplog.text
        assert {kind for kind, _ in _entries(rt)} == {"earlier"}
        assert (await rt.sessions.check()).clean
        assert len(await _newest_first(rt)) == 2


async def test_a_write_failed_with_its_group_leaves_one_by_update_entry(tmp_path: Path) -> None:
    """At machine durability, a session's write that fails with its group while a second
    write waits leaves one by-update entry, where the second write put it."""
    async with open_runtime(tmp_path, durability="machine") as rt:
        other = await rt.sessions.create(name="other")
        sid = await rt.sessions.create(name="s")
        kv = rt.store.kv
        write = kv.write
        failures = [OSError("disk full")]

        def failing(batch: Batch, *, sync: bool | None = None) -> None:
            if sync and failures:
                raise failures.pop()
            write(batch, sync=sync)

        kv.write = failing  # type: ignore[method-assign]
        outcomes: list[str] = []

        async def set_k(value: int) -> None:
            try:
                await rt.sessions.set_state(sid, "k", value)
                outcomes.append("written")
            except StoreWriteFailedError:
                outcomes.append("failed")

        async with anyio.create_task_group() as tg:
            tg.start_soon(set_k, 1)
            await anyio.lowlevel.checkpoint()
            tg.start_soon(set_k, 2)
        kv.write = write  # type: ignore[method-assign]
        assert sorted(outcomes) == ["failed", "written"]
        assert [entry for entry in _entries(rt) if entry[1] == sid] == [("now", sid)]
        assert [s.id for s in await rt.sessions.list(order_by="updated_at")] == [other, sid]
        assert (await rt.sessions.check()).clean


async def test_check_fix_keeps_the_current_entry_of_a_session_with_both(tmp_path: Path) -> None:
    """A session with a by-update entry in each layout: ``check`` names the earlier one, and
    ``fix`` removes it, not the current one."""
    async with open_runtime(tmp_path) as rt:
        sid = await rt.sessions.create(name="s")
        sid_bytes = layout.bytes_of(sid)
        updated = await _updated_us(rt, sid)
        value = rt.store.kv.get(layout.updated_key(sid_bytes, updated))
        assert value is not None
        batch = Batch()
        batch.put(layout.legacy_updated_key(sid_bytes, updated), value)
        rt.store.kv.write(batch)
        assert _entries(rt) == [("earlier", sid), ("now", sid)]
        assert len((await rt.sessions.check(fix=True)).problems) == 1
        assert _entries(rt) == [("now", sid)]
        assert (await rt.sessions.check()).clean


async def test_empty_counters_met_while_ranking_by_update_time_are_an_integrity_error(
    autojump_clock: None,
) -> None:
    """Counters stored with no bytes, met while ranking sessions updated together, are an
    ``IntegrityError``, as anywhere else they are read, not a time of 0."""
    async with open_runtime(store="memory") as rt:
        sids = [await rt.sessions.create() for _ in range(3)]
        batch = Batch()
        batch.put(layout.counters_key(layout.bytes_of(sids[1])), b"")
        rt.store.kv.write(batch)
        with pytest.raises(IntegrityError, match="counters"):
            await rt.sessions.list(order_by="updated_at", descending=True, limit=1)


async def test_damaged_counters_of_an_entry_to_move_leave_the_folder_openable(
    tmp_path: Path,
) -> None:
    """A session whose by-update entry is of the earlier layout and whose counters are
    damaged: the folder still opens (its entry is left), and ``check`` names the damage."""
    async with open_runtime(tmp_path) as rt:
        sid = await rt.sessions.create(name="s")
        other = await rt.sessions.create(name="other")
        _to_earlier_layout(rt, [sid], {sid: await _updated_us(rt, sid)})
        counters = layout.counters_key(layout.bytes_of(sid))
        raw = rt.store.kv.get(counters)
        assert raw is not None
        batch = Batch()
        batch.put(counters, raw[:-1])
        rt.store.kv.write(batch)
    async with open_runtime(tmp_path) as rt:
        found = await rt.sessions.check()
        assert any("counters are 39 bytes" in p for p in found.problems), found
        assert (await rt.sessions.get(other)).id == other
