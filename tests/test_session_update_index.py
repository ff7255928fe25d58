"""The by-update index: buckets of a 64th of a second, and entries an earlier layout left
behind."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from satchel import Runtime, open_runtime
from satchel.actors.sessions import _session_layout as layout
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


async def _newest_first(rt: Runtime) -> list[str]:
    return [s.id for s in await rt.sessions.list(order_by="updated_at", descending=True)]


async def test_entries_of_the_earlier_layout_are_read_and_moved_out_of_it(
    tmp_path: Path, autojump_clock: None
) -> None:
    """A data folder whose by-update entries an earlier version wrote: queries order its
    sessions among new ones, ``check`` finds it clean, and a write or a delete of a session
    takes its old entry away."""
    async with open_runtime(tmp_path) as rt:
        old = []
        for i in range(5):
            old.append(await rt.sessions.create(name=f"old {i}"))
            await anyio.sleep(0.3)
        await rt.sessions.set_state(old[1], "k", 1)
        updated = {sid: await _updated_us(rt, sid) for sid in old}
        _to_earlier_layout(rt, old, updated)
    by_time = sorted(old, key=lambda sid: updated[sid], reverse=True)
    async with open_runtime(tmp_path) as rt:
        assert (await rt.sessions.check()).clean
        assert await _newest_first(rt) == by_time
        await anyio.sleep(1)
        fresh = await rt.sessions.create(name="fresh")
        await anyio.sleep(1)
        await rt.sessions.set_state(old[3], "k", 2)
        assert await _newest_first(rt) == [old[3], fresh] + [s for s in by_time if s != old[3]]
        kv = rt.store.kv
        sid3 = layout.bytes_of(old[3])
        assert kv.get(layout.legacy_updated_key(sid3, updated[old[3]])) is None
        assert kv.get(layout.updated_key(sid3, await _updated_us(rt, old[3]))) is not None
        await rt.sessions.delete(old[0])
        assert kv.get(layout.legacy_updated_key(layout.bytes_of(old[0]), updated[old[0]])) is None
        assert (await rt.sessions.check()).clean
        ascending = await rt.sessions.list(order_by="updated_at")
        assert [s.id for s in ascending] == (await _newest_first(rt))[::-1]
        assert len(ascending) == 5
