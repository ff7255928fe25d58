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

from satchel import BlobNotFoundError, IntegrityError, StoreUnavailableError
from satchel.storage import Batch, BlobStore, Store
from satchel.storage._blobformat import chunk_key, split_chunk_key
from satchel.storage._kv import BLOBS, INDEX, Space

from .test_blob_referenced_reads import CONTENT, released, stored

pytestmark = pytest.mark.anyio

#: Ten chunks of the test store's 4 KiB, incompressible.
TEN_CHUNKS = os.urandom(10 * 4096 - 7)


class Tracking:
    """A record store that notes each chunk read, its start and end, and how many reads of
    chunks after the first were in flight at most (each read yields to the loop a few times,
    as a server's would)."""

    def __init__(self, records: Any, events: list[str] | None = None) -> None:
        self._records = records
        self.keys: list[bytes] = []
        self.in_flight = 0
        self.most = 0
        self.events = [] if events is None else events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._records, name)

    async def get(self, key: bytes, space: Space = INDEX) -> Any:
        if space is not BLOBS:
            return await self._records.get(key, space)
        self.keys.append(key)
        self.events.append(f"start {key.hex()}")
        first = split_chunk_key(key)[1] == 0  # chunk 0, read alone before the others
        self.in_flight += not first
        self.most = max(self.most, self.in_flight)
        try:
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
            return await self._records.get(key, space)
        except anyio.get_cancelled_exc_class():
            self.events.append(f"cancelled {key.hex()}")
            raise
        except Exception:
            self.events.append(f"fail {key.hex()}")
            raise
        finally:
            self.events.append(f"end {key.hex()}")
            self.in_flight -= not first


class Gate:
    """A record store whose chunk reads after the first wait until ``width`` of them are
    waiting; the last to arrive runs ``act`` (another process changing the blob), then all
    of them read."""

    def __init__(self, records: Any, width: int, act: Callable[[], Awaitable[None]]) -> None:
        self._records = records
        self._width = width
        self._act = act
        self._reads = 0
        self._open = anyio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._records, name)

    async def get(self, key: bytes, space: Space = INDEX) -> Any:
        if space is BLOBS:
            self._reads += 1
            if self._reads == self._width + 1:
                await self._act()
                self._open.set()
            if self._reads > 1:
                await self._open.wait()
        return await self._records.get(key, space)


class Stop(BaseException):
    """Not an ``Exception``: what a chunk read raises in a test of such failures."""


class Raising:
    """A record store whose read of the chunk ``key`` raises ``error``."""

    def __init__(self, records: Any, key: bytes, error: BaseException) -> None:
        self._records = records
        self._key = key
        self._error = error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._records, name)

    async def get(self, key: bytes, space: Space = INDEX) -> Any:
        if key == self._key:
            raise self._error
        return await self._records.get(key, space)


async def store_ten_chunks(store: Store) -> str:
    staged = await store.blobs.put(TEN_CHUNKS)
    batch = Batch()
    batch.put(b"t\x00a", b"record")
    await store.blobs.commit(batch, add=[(staged, b"t\x00a")])
    return staged.ref.hash


def parallel(blobs: BlobStore, records: Any, width: int) -> BlobStore:
    """A view of ``blobs`` through ``records`` reading ``width`` chunks at once, with a
    limiter of its own (views made from it share it)."""
    view = blobs.through(records)
    view.parallel_reads = width
    view._read_limiter = []
    return view


@pytest.mark.parametrize("referenced", [False, True])
async def test_a_parallel_read_returns_the_content_with_at_most_its_width_in_flight(
    store: Store, referenced: bool
) -> None:
    """Ten chunks read three at a time (after the first, alone) come back as the content,
    each chunk read once, and never more than three reads in flight."""
    blob = await store_ten_chunks(store)
    tracking = Tracking(store.records)
    reading = parallel(store.blobs, tracking, 3)
    assert await reading.read(blob, referenced=referenced) == TEN_CHUNKS
    assert len(tracking.keys) == len(set(tracking.keys)) == 10
    assert tracking.most == 3


async def test_a_blob_released_before_a_parallel_read_fails_at_its_first_chunk(
    store: Store,
) -> None:
    """A referenced read of a blob released since is ``BlobNotFoundError`` after one chunk
    read: the first chunk is read alone, so the others are never asked for."""
    blob = await store_ten_chunks(store)
    await released(BlobStore(store.records, store.blobs.limits), blob, b"t\x00a")
    tracking = Tracking(store.records)
    with pytest.raises(BlobNotFoundError):
        await parallel(store.blobs, tracking, 3).read(blob, referenced=True)
    assert len(tracking.keys) == 1


async def test_a_damaged_chunk_fails_a_parallel_read_with_integrity_error(store: Store) -> None:
    """A chunk whose bytes were changed fails the read with ``IntegrityError`` itself (not an
    exception group)."""
    blob = await store_ten_chunks(store)
    meta = await store.blobs.load_meta(bytes.fromhex(blob))
    assert meta is not None and meta.chunk_count == 10
    key = chunk_key(meta.data_id, 1)
    damaged = bytearray(await store.records.get(key, BLOBS) or b"")
    damaged[-1] ^= 0xFF
    batch = Batch()
    batch.put(key, bytes(damaged), BLOBS)
    await store.records.write(batch)
    with pytest.raises(IntegrityError, match="chunk 1"):
        await parallel(store.blobs, store.records, 2).read(blob)


async def test_after_a_failed_chunk_read_no_other_read_starts(store: Store) -> None:
    """Once a chunk read fails, the reads not started yet are skipped (those under way
    finish: cancelled, a PostgreSQL query would cost its connection), and the failure is
    the read's error."""
    blob = await store_ten_chunks(store)
    meta = await store.blobs.load_meta(bytes.fromhex(blob))
    assert meta is not None
    bad = chunk_key(meta.data_id, 5)
    raising = Raising(store.records, bad, StoreUnavailableError("the server went away"))
    events: list[str] = []
    tracking = Tracking(raising, events)
    with pytest.raises(StoreUnavailableError):
        await parallel(store.blobs, tracking, 2).read(blob)
    failed_at = events.index(f"fail {bad.hex()}")
    assert not [event for event in events[failed_at:] if event.startswith("start")]
    assert events.count("start " + bad.hex()) == 1
    started = [event.split()[1] for event in events if event.startswith("start")]
    ended = [event.split()[1] for event in events if event.startswith("end")]
    assert sorted(started) == sorted(ended)  # the reads under way finished
    assert not [event for event in events if event.startswith("cancelled")]


async def test_reads_of_two_blobs_share_the_store_limit_and_take_turns(store: Store) -> None:
    """Two whole reads at once keep within the store's limit together, and the small one
    is not queued behind every chunk of the large one."""
    big = await store_ten_chunks(store)
    small = await stored(store.blobs, b"t\x00b")
    tracking = Tracking(store.records)
    first = parallel(store.blobs, tracking, 2)
    second = first.through(tracking)  # the same store: the same limiter
    found: dict[str, bytes] = {}

    async def read(view: BlobStore, blob: str) -> None:
        found[blob] = await view.read(blob)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(read, first, big)
            tasks.start_soon(read, second, small)
    assert found == {big: TEN_CHUNKS, small: CONTENT}
    assert tracking.most == 2
    data_ids = {}
    for blob in (big, small):
        meta = await store.blobs.load_meta(bytes.fromhex(blob))
        assert meta is not None
        data_ids[blob] = meta.data_id.hex()
    starts = [event.split()[1] for event in tracking.events if event.startswith("start")]
    last_of = {
        blob: max(i for i, key in enumerate(starts) if key.startswith(d))
        for blob, d in data_ids.items()
    }
    assert last_of[small] < last_of[big]


async def test_a_base_exception_in_a_chunk_read_is_raised_as_itself(store: Store) -> None:
    """A chunk read that raises something other than an ``Exception`` fails the whole read
    with it, not with an exception group around it."""
    blob = await store_ten_chunks(store)
    meta = await store.blobs.load_meta(bytes.fromhex(blob))
    assert meta is not None
    raising = Raising(store.records, chunk_key(meta.data_id, 4), Stop())
    with pytest.raises(Stop):
        await parallel(store.blobs, raising, 3).read(blob)


@pytest.mark.parametrize("referenced", [False, True])
async def test_a_blob_released_while_its_chunks_are_read_at_once_is_not_found(
    store: Store, referenced: bool
) -> None:
    """A blob another process releases while its chunk reads after the first are all in
    flight is ``BlobNotFoundError``, as when they are read one at a time."""
    blob = await stored(store.blobs, b"t\x00a")
    other = BlobStore(store.records, store.blobs.limits)
    gate = Gate(store.records, 2, lambda: released(other, blob, b"t\x00a"))
    with anyio.fail_after(5), pytest.raises(BlobNotFoundError):
        await parallel(store.blobs, gate, 2).read(blob, referenced=referenced)


@pytest.mark.parametrize("referenced", [False, True])
async def test_a_blob_stored_again_while_its_chunks_are_read_at_once_is_read_whole(
    store: Store, referenced: bool
) -> None:
    """A blob another process releases and stores again while its chunk reads after the
    first are all in flight is read whole, from its new chunks."""
    blob = await stored(store.blobs, b"t\x00a")
    other = BlobStore(store.records, store.blobs.limits)

    async def again() -> None:
        await released(other, blob, b"t\x00a")
        await stored(other, b"t\x00b")

    gate = Gate(store.records, 2, again)
    with anyio.fail_after(5):
        assert await parallel(store.blobs, gate, 2).read(blob, referenced=referenced) == CONTENT


async def test_a_networked_store_reads_chunks_in_parallel_and_a_local_one_does_not(
    store: Store,
) -> None:
    """Only a store whose reads wait on a server reads a blob's chunks several at a time."""
    assert store.blobs.parallel_reads == 1
    networked = Store(None, None, store.blobs.limits, records=store.records)
    assert networked.blobs.parallel_reads > 1
