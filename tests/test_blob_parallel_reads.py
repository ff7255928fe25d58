"""Whole reads of a blob's chunks several at a time (what a networked store does): the content
in order, at most that many reads in flight, and the same answers as one at a time when a
chunk is damaged or the blob changes during the read."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from satchel import BlobNotFoundError, IntegrityError
from satchel.storage import Batch, BlobStore, Store
from satchel.storage._blobformat import chunk_key
from satchel.storage._kv import BLOBS, INDEX, Space

from .test_blob_referenced_reads import CONTENT, released, stored

pytestmark = pytest.mark.anyio

#: Ten chunks of the test store's 4 KiB, incompressible.
TEN_CHUNKS = os.urandom(10 * 4096 - 7)


class Tracking:
    """A record store that notes each chunk read and how many were in flight at most (each
    read yields to the loop a few times, as a server's would)."""

    def __init__(self, records: Any) -> None:
        self._records = records
        self.keys: list[bytes] = []
        self.in_flight = 0
        self.most = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._records, name)

    async def get(self, key: bytes, space: Space = INDEX) -> Any:
        if space is not BLOBS:
            return await self._records.get(key, space)
        self.keys.append(key)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
            return await self._records.get(key, space)
        finally:
            self.in_flight -= 1


class Gate:
    """A record store whose chunk reads wait until ``width`` of them are waiting; the last
    to arrive runs ``act`` (another process changing the blob), then all of them read."""

    def __init__(self, records: Any, width: int, act: Callable[[], Awaitable[None]]) -> None:
        self._records = records
        self._width = width
        self._act = act
        self._waiting = 0
        self._open = anyio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._records, name)

    async def get(self, key: bytes, space: Space = INDEX) -> Any:
        if space is BLOBS:
            self._waiting += 1
            if self._waiting == self._width:
                await self._act()
                self._open.set()
            await self._open.wait()
        return await self._records.get(key, space)


def parallel(blobs: BlobStore, records: Any, width: int) -> BlobStore:
    view = blobs.through(records)
    view.parallel_reads = width
    return view


@pytest.mark.parametrize("referenced", [False, True])
async def test_a_parallel_read_returns_the_content_with_at_most_its_width_in_flight(
    store: Store, referenced: bool
) -> None:
    """Ten chunks read three at a time come back as the content, each chunk read once, and
    never more than three reads in flight."""
    staged = await store.blobs.put(TEN_CHUNKS)
    batch = Batch()
    batch.put(b"t\x00a", b"record")
    await store.blobs.commit(batch, add=[(staged, b"t\x00a")])
    tracking = Tracking(store.records)
    assert await parallel(store.blobs, tracking, 3).read(
        staged.ref.hash, referenced=referenced
    ) == (TEN_CHUNKS)
    assert len(tracking.keys) == len(set(tracking.keys)) == 10
    assert tracking.most == 3


async def test_a_damaged_chunk_fails_a_parallel_read_with_integrity_error(store: Store) -> None:
    """A chunk whose bytes were changed fails the read with ``IntegrityError`` itself (not an
    exception group), and the blob's other reads are stopped."""
    blob = await stored(store.blobs, b"t\x00a")
    meta = await store.blobs.load_meta(bytes.fromhex(blob))
    assert meta is not None and meta.chunk_count == 3
    batch = Batch()
    key = chunk_key(meta.data_id, 1)
    damaged = bytearray(await store.records.get(key, BLOBS) or b"")
    damaged[-1] ^= 0xFF
    batch.put(key, bytes(damaged), BLOBS)
    await store.records.write(batch)
    with pytest.raises(IntegrityError):
        await parallel(store.blobs, store.records, 3).read(blob)


@pytest.mark.parametrize("referenced", [False, True])
async def test_a_blob_released_while_its_chunks_are_read_at_once_is_not_found(
    store: Store, referenced: bool
) -> None:
    """A blob another process releases while all its chunk reads are in flight is
    ``BlobNotFoundError``, as when they are read one at a time."""
    blob = await stored(store.blobs, b"t\x00a")
    other = BlobStore(store.records, store.blobs.limits)
    gate = Gate(store.records, 3, lambda: released(other, blob, b"t\x00a"))
    with pytest.raises(BlobNotFoundError):
        await parallel(store.blobs, gate, 3).read(blob, referenced=referenced)


@pytest.mark.parametrize("referenced", [False, True])
async def test_a_blob_stored_again_while_its_chunks_are_read_at_once_is_read_whole(
    store: Store, referenced: bool
) -> None:
    """A blob another process releases and stores again while all its chunk reads are in
    flight is read whole, from its new chunks."""
    blob = await stored(store.blobs, b"t\x00a")
    other = BlobStore(store.records, store.blobs.limits)

    async def again() -> None:
        await released(other, blob, b"t\x00a")
        await stored(other, b"t\x00b")

    gate = Gate(store.records, 3, again)
    assert await parallel(store.blobs, gate, 3).read(blob, referenced=referenced) == CONTENT


async def test_a_networked_store_reads_chunks_in_parallel_and_a_local_one_does_not(
    store: Store,
) -> None:
    """Only a store whose reads wait on a server reads a blob's chunks several at a time."""
    assert store.blobs.parallel_reads == 1
    networked = Store(None, None, store.blobs.limits, records=store.records)
    assert networked.blobs.parallel_reads > 1
