"""SplitRecords: large blob-space values as objects, named by records, swept when orphaned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from satchel import StoreUnavailableError, WriteConflictError
from satchel.storage import (
    ABSENT,
    BLOBS,
    Batch,
    LocalObjects,
    LocalRecords,
    MemoryStore,
    ObjectStore,
    SplitRecords,
)

from .ports import SPLIT_LARGE, open_records

pytestmark = pytest.mark.anyio

BIG = bytes(range(256)) * 4  # past SPLIT_LARGE: an object
SMALL = b"tiny"  # under it: kept in the record


@pytest.fixture(params=["split", "postgresql+s3"])
async def split(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SplitRecords]:
    """A SplitRecords over memory, and over PostgreSQL with S3."""
    async with open_records(request.param, tmp_path) as records:
        assert isinstance(records, SplitRecords)
        yield records


async def names(objects: ObjectStore) -> list[str]:
    return [name async for name in objects.list()]


async def put_blobs(split: SplitRecords, *pairs: tuple[bytes, bytes]) -> None:
    batch = Batch()
    for key, value in pairs:
        batch.put(key, value, BLOBS)
    await split.write(batch)


async def test_large_values_are_objects_and_small_ones_are_not(split: SplitRecords) -> None:
    """A large blob-space value becomes one object; a small one and index records none."""
    batch = Batch()
    batch.put(b"big", BIG, BLOBS)
    batch.put(b"small", SMALL, BLOBS)
    batch.put(b"record", BIG)
    await split.write(batch)
    assert len(await names(split.objects)) == 1
    assert await split.get(b"big", BLOBS) == BIG
    assert await split.get_many([b"small", b"big", b"none"], BLOBS) == [SMALL, BIG, None]
    assert await split.scan(b"a", b"z", space=BLOBS) == [(b"big", BIG), (b"small", SMALL)]
    assert await split.get(b"record") == BIG


async def test_replaced_and_deleted_values_leave_no_objects(split: SplitRecords) -> None:
    """Overwriting or deleting a large value (one by one or by range) deletes its object."""
    await put_blobs(split, (b"a", BIG), (b"b", BIG), (b"c", BIG))
    await put_blobs(split, (b"a", BIG[::-1]))
    assert await split.get(b"a", BLOBS) == BIG[::-1]
    assert len(await names(split.objects)) == 3
    gone = Batch()
    gone.delete(b"a", BLOBS)
    gone.delete_range(b"b", b"c\x00", BLOBS)
    await split.write(gone)
    assert await names(split.objects) == []
    assert await split.scan(b"", b"\xff", space=BLOBS) == []


async def test_a_failed_commit_leaves_no_object(split: SplitRecords) -> None:
    """A write whose condition fails uploads nothing that stays: its objects are removed."""
    first = Batch()
    first.put(b"head", b"1", expect=ABSENT)
    await split.write(first)
    second = Batch()
    second.put(b"chunk", BIG, BLOBS)
    second.put(b"head", b"2", expect=ABSENT)
    with pytest.raises(WriteConflictError):
        await split.write(second)
    assert await names(split.objects) == []
    assert await split.get(b"chunk", BLOBS) is None


class FailingObjects(LocalObjects):
    """Objects whose puts fail after the first, as a store that goes away mid-write."""

    puts = 0

    async def put(self, key: str, data: bytes) -> None:
        self.puts += 1
        if self.puts > 1:
            raise StoreUnavailableError("the object store did not answer")
        await super().put(key, data)


async def test_an_object_store_failure_fails_the_write_whole() -> None:
    """When an object put fails, the write fails with the typed error, no record names a
    missing object, and the objects it did put are removed."""
    objects = FailingObjects(MemoryStore())
    split = SplitRecords(LocalRecords(MemoryStore()), objects, namespace="n", large=SPLIT_LARGE)
    batch = Batch()
    batch.put(b"one", BIG, BLOBS)
    batch.put(b"two", BIG, BLOBS)
    batch.put(b"record", b"names one and two")
    with pytest.raises(StoreUnavailableError):
        await split.write(batch)
    assert await split.records.scan(b"", b"\xff", space=BLOBS) == []
    assert await split.get(b"record") is None
    assert await names(split.objects) == []


async def test_sweep_removes_old_orphans_only() -> None:
    """sweep deletes objects no record names once older than the grace period, and keeps
    named ones and young orphans (an upload in flight)."""
    now = [10_000_000_000]
    split = SplitRecords(
        LocalRecords(MemoryStore()),
        LocalObjects(MemoryStore()),
        namespace="n",
        large=SPLIT_LARGE,
        clock=lambda: now[0],
    )
    await put_blobs(split, (b"named", BIG))
    await split.objects.put(f"n/{b'old'.hex()}.{now[0]:016x}.00000000", BIG)
    now[0] += 2_000_000
    await split.objects.put(f"n/{b'young'.hex()}.{now[0]:016x}.00000000", BIG)
    await split.objects.put("n/not-ours", b"x")
    await split.objects.put(f"other/{b'old'.hex()}.{0:016x}.00000000", BIG)  # another store's
    assert await split.sweep(grace_s=1.0) == 1
    left = await names(split.objects)
    assert len(left) == 4 and not any(name.startswith(f"n/{b'old'.hex()}") for name in left)
    assert await split.get(b"named", BLOBS) == BIG
    now[0] += 2_000_000
    assert await split.sweep(grace_s=1.0) == 1  # the young one has aged
