"""Shared fixtures: both event loops, every storage backend, and stores on each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio.testing

from satchel import Runtime, open_runtime
from satchel.storage import (
    BlobLimits,
    KeyValueStore,
    MemoryStore,
    RocksStore,
    Store,
    open_store,
)

from .autojump import AutojumpLoop
from .ports import drop_table, networked_place

#: Every async test runs on each event loop.
LOOPS = ["trio", "asyncio"]


@pytest.fixture(params=LOOPS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """The event loop an async test runs on; a test that asks for ``autojump_clock`` runs
    on a clock that jumps ahead whenever every task waits."""
    if "autojump_clock" not in request.fixturenames:
        return (request.param, {})
    if request.param == "trio":
        return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})
    return ("asyncio", {"loop_factory": AutojumpLoop})


@pytest.fixture
def autojump_clock() -> None:
    """Asked for by a test whose time jumps ahead whenever every task waits (see
    ``anyio_backend``): nothing sleeps in real time."""


BACKENDS = ["memory", "rocksdb"]
#: Also RocksDB with every non-empty blob-space value in a file (64 KiB and up otherwise).
KV_BACKENDS = [*BACKENDS, "rocksdb-files"]


def make_kv(backend: str, folder: Path) -> KeyValueStore:
    """A fresh key-value backend of the named kind."""
    if backend == "memory":
        return MemoryStore()
    if backend == "rocksdb-files":
        return RocksStore(folder / "db", file_values_from=1)
    return RocksStore(folder / "db")


@pytest.fixture(params=KV_BACKENDS)
def kv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyValueStore]:
    """A fresh backend; the contract suite runs once per backend."""
    store = make_kv(request.param, tmp_path)
    yield store
    store.close()


SMALL_CHUNKS = BlobLimits(chunk_size=4096, compress_min=64, max_size=1 << 20)


@pytest.fixture(params=KV_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store with 4 KiB chunks, so multi-chunk paths run on small content."""
    if request.param == "rocksdb-files":
        folder = tmp_path / "data"
        opened = Store(RocksStore(folder, file_values_from=1), folder, SMALL_CHUNKS)
    else:
        opened = open_store(tmp_path / "data", backend=request.param, limits=SMALL_CHUNKS)
    yield opened
    opened.close()


#: The runtimes most suites run on: each local backend, and RocksDB in machine durability.
RUNTIMES = [*BACKENDS, "rocksdb-machine"]
#: And the session and artifact suites on PostgreSQL with S3 too (see ``networked_rt``).
NETWORKED_RUNTIMES = [*RUNTIMES, "postgresql+s3"]


@asynccontextmanager
async def open_test_runtime(name: str, folder: Path) -> AsyncIterator[Runtime]:
    """A fresh runtime named by one of ``NETWORKED_RUNTIMES``; on PostgreSQL with S3, in a
    table and a bucket folder of its own, dropped afterwards."""
    if name != "postgresql+s3":
        backend, _, durability = name.partition("-")
        async with open_runtime(
            folder / "data", store=backend, durability=durability or "process"
        ) as runtime:
            yield runtime
        return
    store, objects, table = networked_place()
    try:
        async with open_runtime(store=store, objects=objects) as runtime:
            yield runtime
    finally:
        await drop_table(table)


@pytest.fixture
async def store_url() -> AsyncIterator[str]:
    """A PostgreSQL store URL naming a table of its own (dropped afterwards): the cluster
    tests' store."""
    store, _, table = networked_place()
    yield store
    await drop_table(table)


@pytest.fixture(params=RUNTIMES)
async def rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    """An open runtime on each backend, and on RocksDB in machine durability (group commit)."""
    async with open_test_runtime(request.param, tmp_path) as runtime:
        yield runtime


@pytest.fixture(params=NETWORKED_RUNTIMES)
async def networked_rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    """``rt``, and also on PostgreSQL with S3: a suite that asks for it as ``rt`` (its own
    ``rt`` fixture returning this one) runs on the networked store too."""
    async with open_test_runtime(request.param, tmp_path) as runtime:
        yield runtime
