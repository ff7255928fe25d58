"""Shared fixtures: both event loops, every storage backend, and stores on each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio.testing
from satchel.storage import BlobLimits, KeyValueStore, MemoryStore, RocksStore, Store, open_store

from satchel import Runtime, open_runtime

from .autojump import AutojumpLoop

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


@pytest.fixture(params=[*BACKENDS, "rocksdb-machine"])
async def rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    """An open runtime on each backend, and on RocksDB in machine durability (group commit)."""
    backend, _, durability = request.param.partition("-")
    async with open_runtime(
        tmp_path / "data", store=backend, durability=durability or "process"
    ) as runtime:
        yield runtime
