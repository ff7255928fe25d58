"""LangGraph's checkpointer conformance suite (``langgraph-checkpoint-conformance``) on
``SatchelSaver``: every capability detected and passing, through the async methods and,
through ``sync_bridge``, the sync ones.

The suite calls only the async methods and counts a capability it does not detect (the
saver's type does not override the async method) as neither passed nor failed, so each
report is checked here for all eight capabilities detected and passed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import (
    BASE_CAPABILITIES,
    EXTENDED_CAPABILITIES,
)
from langgraph.checkpoint.conformance.report import CapabilityReport, ProgressCallbacks

import satchel
from satchel.integrations.langgraph import SatchelSaver

pytestmark = pytest.mark.anyio

T = TypeVar("T")

#: Every capability of the installed suite: the five base ones and delete_for_runs,
#: copy_thread and prune.
ALL = {c.value for c in BASE_CAPABILITIES} | {c.value for c in EXTENDED_CAPABILITIES}

#: How many tests each capability has in the suite's pinned version (0.0.2): 81 in all.
PASSED_AT_LEAST = {
    "put": 17,
    "put_writes": 10,
    "get_tuple": 10,
    "list": 16,
    "delete_thread": 5,
    "delete_for_runs": 7,
    "copy_thread": 8,
    "prune": 8,
}


@pytest.fixture
def anyio_backend() -> str:
    """LangGraph and its suite are asyncio code (the conftest would run Trio too)."""
    return "asyncio"


# -- running the async-only suite over the sync methods -----------------------------------------

_SYNC_OF_ASYNC = {
    "aget_tuple": "get_tuple",
    "alist": "list",
    "aput": "put",
    "aput_writes": "put_writes",
    "adelete_thread": "delete_thread",
    "adelete_for_runs": "delete_for_runs",
    "acopy_thread": "copy_thread",
    "aprune": "prune",
}


class _Bridge(BaseCheckpointSaver[Any]):
    """Async methods that call a saver's sync ones in a worker thread."""

    def __init__(self, inner: BaseCheckpointSaver[Any]) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sync-saver")

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def get_next_version(self, current: Any, channel: None) -> Any:
        return self.inner.get_next_version(current, channel)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._call(self.inner.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        items = await self._call(
            lambda: list(self.inner.list(config, filter=filter, before=before, limit=limit))
        )
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._call(self.inner.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._call(self.inner.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._call(self.inner.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._call(self.inner.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._call(self.inner.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._call(self.inner.prune, thread_ids, strategy=strategy)


def sync_bridge(inner: BaseCheckpointSaver[Any]) -> _Bridge:
    """A bridge whose type overrides exactly the async methods whose sync twin ``inner``'s
    type overrides, so the suite detects what the sync API implements."""
    namespace: dict[str, Any] = {}
    for async_name, sync_name in _SYNC_OF_ASYNC.items():
        implemented = getattr(type(inner), sync_name) is not getattr(BaseCheckpointSaver, sync_name)
        owner = _Bridge if implemented else BaseCheckpointSaver
        namespace[async_name] = getattr(owner, async_name)
    bridge: _Bridge = type(f"Sync{type(inner).__name__}", (_Bridge,), namespace)(inner)
    return bridge


# -- the factories ------------------------------------------------------------------------------

Factory = Callable[[], AsyncIterator[Any]]


def folders(tmp_path: Path, store: str) -> Callable[[], Path | None]:
    """A fresh data folder per saver the suite asks for (none for the memory store)."""
    count = iter(range(1_000_000))
    return lambda: tmp_path / f"data-{next(count)}" if store == "rocksdb" else None


def async_factory(tmp_path: Path, store: str, durability: str) -> Factory:
    folder = folders(tmp_path, store)

    async def factory() -> AsyncIterator[Any]:
        opener = SatchelSaver.from_path(folder(), store=store, durability=durability)
        async with opener as saver:
            yield saver

    return factory


def sync_factory(tmp_path: Path, store: str, durability: str) -> Factory:
    folder = folders(tmp_path, store)

    async def factory() -> AsyncIterator[Any]:
        with SatchelSaver.from_path(folder(), store=store, durability=durability) as saver:
            bridge = sync_bridge(saver)
            try:
                yield bridge
            finally:
                bridge.close()

    return factory


def runtime_factory(tmp_path: Path, store: str, durability: str) -> Factory:
    """``SatchelSaver(rt)`` on a runtime the caller opened."""
    folder = folders(tmp_path, store)

    async def factory() -> AsyncIterator[Any]:
        async with satchel.open_runtime(folder(), store=store, durability=durability) as rt:
            yield SatchelSaver(rt)

    return factory


CASES = {
    f"{mode}-{store}-{durability}": (make, store, durability)
    for mode, make in (("async", async_factory), ("sync", sync_factory))
    for store, durability in (("memory", "process"), ("rocksdb", "machine"))
} | {"runtime-rocksdb-process": (runtime_factory, "rocksdb", "process")}


async def run_suite(name: str, factory: Factory) -> tuple[CapabilityReport, str]:
    registered = checkpointer_test(name=name)(factory)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        report = await validate(registered, progress=ProgressCallbacks.verbose())
        report.print_report()
    return report, out.getvalue()


@pytest.mark.parametrize("case", list(CASES))
async def test_conformance_in_full(case: str, tmp_path: Path) -> None:
    """All eight capabilities of the suite are detected and every one of their tests passes."""
    make, store, durability = CASES[case]
    report, text = await run_suite(f"SatchelSaver {case}", make(tmp_path, store, durability))
    print(text)
    assert set(report.results) == ALL
    missing = sorted(c for c, r in report.results.items() if not r.detected)
    assert not missing, f"not detected: {missing}"
    failing = {c: r.failures for c, r in report.results.items() if r.tests_failed or r.failures}
    assert not failing, json.dumps(failing, indent=2)
    skipped = sorted(c for c, r in report.results.items() if r.tests_skipped)
    assert not skipped, f"tests skipped in: {skipped}"
    assert all(r.passed is True for r in report.results.values())
    passed = {c: r.tests_passed for c, r in report.results.items()}
    assert all(n >= PASSED_AT_LEAST[c] for c, n in passed.items()), passed
    assert report.passed_all() and report.conformance_level() == "FULL"
    assert "Result: FULL (8/8)" in text
