"""Writes that overlap on a store that suspends (PostgreSQL): budgets hold and paged queries
meet each session once (each test failed before its fix)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from satchel.runtime._errors import QuotaExceededError

from .conftest import open_test_runtime

pytestmark = pytest.mark.anyio


async def _concurrent_creates(rt: Any, holder: str, n: int) -> int:
    made = 0

    async def one() -> None:
        nonlocal made
        try:
            await rt.sessions.create(budget_of=holder)
            made += 1
        except QuotaExceededError:
            pass

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return made


@pytest.mark.parametrize("name", ["memory", "rocksdb-machine", "postgresql+s3"])
async def test_budget_quota_holds_under_concurrent_creates(name: str, tmp_path: Path) -> None:
    """A holder with max_operations=3 admits as many sharers concurrently as one by one."""
    async with open_test_runtime(name, tmp_path / "a") as rt:
        holder = await rt.sessions.create(config={"max_operations": 3})
        sequential = 0
        for _ in range(10):
            try:
                await rt.sessions.create(budget_of=holder)
                sequential += 1
            except QuotaExceededError:
                pass
    async with open_test_runtime(name, tmp_path / "b") as rt:
        holder = await rt.sessions.create(config={"max_operations": 3})
        concurrent = await _concurrent_creates(rt, holder, 10)
    assert concurrent == sequential, (concurrent, sequential)


class _BetweenPages:
    """The runtime's records, with ``between`` run after the first scan of ``prefix``:
    what another task's commit does between two pages of a query on PostgreSQL."""

    def __init__(self, records: Any, prefix: bytes, between: Any) -> None:
        self._records, self._prefix, self._between = records, prefix, between
        self.scans = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._records, name)

    async def scan(self, lower: bytes, upper: bytes, **kw: Any) -> Any:
        found = await self._records.scan(lower, upper, **kw)
        if lower.startswith(self._prefix):
            self.scans += 1
            if self.scans == 1:
                await self._between()
        return found


async def test_a_name_ordered_query_meets_a_session_renamed_between_pages_once(
    tmp_path: Path,
) -> None:
    from satchel.actors.sessions import _session_layout as layout
    from satchel.actors.sessions._manager import _query
    from satchel.actors.sessions._query import run_query

    async with open_test_runtime("memory", tmp_path) as rt:
        ids = {}
        for i in range(60):
            hit = i in (0, 1, 40)
            ids[i] = await rt.sessions.create(
                name=f"n{i:02d}", description="hit" if hit else "miss"
            )
        before = [s.name for s in await rt.sessions.list(order_by="name", search="hit", limit=4)]
        assert before == ["n00", "n01", "n40"]

        async def rename() -> None:
            await rt.sessions.update(ids[0], name="z00")

        records = _BetweenPages(rt.sessions._records, layout.BY_NAME, rename)
        found = await run_query(records, _query({"order_by": "name", "search": "hit", "limit": 4}))
        got = [s.id for s in found]
        assert len(got) == len(set(got)), [s.name for s in found]


@pytest.mark.parametrize("name", ["memory", "postgresql+s3"])
async def test_budget_quota_holds_under_concurrent_sharer_writes(name: str, tmp_path: Path) -> None:
    """Two sharers of one holder (max_operations=6) writing at once: the holder's budget
    admits no more operations in all than it has left."""
    async with open_test_runtime(name, tmp_path) as rt:
        holder = await rt.sessions.create(config={"max_operations": 6})
        sharers = [await rt.sessions.create(budget_of=holder) for _ in range(2)]
        used = 0
        for s in sharers:
            used += (await rt.sessions.get(s)).operation_count
        done = 0

        async def writes(sid: str) -> None:
            nonlocal done
            for i in range(10):
                try:
                    await rt.sessions.set_state(sid, f"k{i}", i)
                    done += 1
                except QuotaExceededError:
                    return

        async with anyio.create_task_group() as tg:
            for s in sharers:
                tg.start_soon(writes, s)
        # 6 in all: the two creations (one each) and at most 4 writes.
        assert done <= 4, done


@pytest.mark.parametrize("name", ["memory", "rocksdb-machine", "postgresql+s3"])
async def test_sessions_storing_one_content_at_once_count_every_reference(
    name: str, tmp_path: Path
) -> None:
    """Forty sessions storing the same bytes at once all succeed, leaving one blob whose count
    is its references."""
    content = b'{"role": "tool", "content": "shared"}\n' * 40
    async with open_test_runtime(name, tmp_path) as rt:
        first = rt.session(await rt.sessions.create())
        await first.store_artifact("seed", content, type="application/json")
        handles = [rt.session(await rt.sessions.create()) for _ in range(40)]

        async def store(handle: Any) -> None:
            await handle.store_artifact("same", content, type="application/json")

        async with anyio.create_task_group() as tg:
            for handle in handles:
                tg.start_soon(store, handle)
        report = await rt.check()
    assert report.clean, report
