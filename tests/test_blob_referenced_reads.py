"""Reads by a caller holding a reference take the blob's record as this process last saw it,
on every local backend and with content of several chunks: the content is right whatever
another process did since, and damage is still damage."""

from __future__ import annotations

import os
from typing import Any

import pytest

from satchel import BlobNotFoundError, IntegrityError
from satchel.storage import Batch, BlobStore, Store
from satchel.storage._blobformat import chunk_key
from satchel.storage._kv import BLOBS, INDEX, Space

from .test_blob_guesses import FailingCleanup, counting

pytestmark = pytest.mark.anyio

#: Three chunks of the test store's 4 KiB, incompressible.
CONTENT = os.urandom(3 * 4096 - 100)


async def stored(blobs: BlobStore, owner: bytes) -> str:
    staged = await blobs.put(CONTENT)
    batch = Batch()
    batch.put(owner, b"record")
    await blobs.commit(batch, add=[(staged, owner)])
    return staged.ref.hash


async def released(blobs: BlobStore, blob: str, owner: bytes) -> None:
    batch = Batch()
    batch.delete(owner)
    await blobs.commit(batch, drop=[(blob, owner)])


async def test_a_referenced_read_reads_the_chunks_only(store: Store) -> None:
    """A referenced read of content this process stored reads its three chunks and nothing
    else; an unreferenced one reads the record first."""
    blob = await stored(store.blobs, b"t\x00a")
    calls: list[str] = []
    blobs = counting(store.blobs, calls)
    assert await blobs.read(blob, referenced=True) == CONTENT
    assert calls == ["get"] * 3
    calls.clear()
    assert await blobs.read(blob) == CONTENT
    assert calls == ["get"] * 4


async def test_content_stored_again_elsewhere_is_read_whole(store: Store) -> None:
    """After another process released the blob and stored it again (new chunks under a new
    data id), a referenced read here returns the content."""
    blob = await stored(store.blobs, b"t\x00a")
    other = BlobStore(store.records, store.blobs.limits)
    await released(other, blob, b"t\x00a")
    await stored(other, b"t\x00b")
    assert await store.blobs.read(blob, referenced=True) == CONTENT
    assert (await store.check()).clean


async def test_a_blob_released_elsewhere_is_not_read_without_a_reference(store: Store) -> None:
    """After another process released the blob, and failed to delete its chunks, a read
    without a reference raises ``BlobNotFoundError`` rather than reading the chunks it knew."""
    blob = await stored(store.blobs, b"t\x00a")
    await released(BlobStore(FailingCleanup(store.records), store.blobs.limits), blob, b"t\x00a")
    with pytest.raises(BlobNotFoundError):
        await store.blobs.read(blob)


async def test_a_chunk_lost_under_its_record_is_damage(store: Store) -> None:
    """A chunk missing while the blob's record still names it is ``IntegrityError`` for a
    referenced read too (the record read again still names it)."""
    blob = await stored(store.blobs, b"t\x00a")
    meta = await store.blobs.load_meta(bytes.fromhex(blob))
    assert meta is not None and meta.chunk_count == 3
    batch = Batch()
    batch.delete(chunk_key(meta.data_id, 1), BLOBS)
    await store.records.write(batch)
    with pytest.raises(IntegrityError, match="chunk 1"):
        await store.blobs.read(blob, referenced=True)


class ActingMidRead:
    """A record store that, after the first chunk it reads, lets ``act`` run (another process
    changing the blob while this one reads it)."""

    def __init__(self, records: Any, act: Any) -> None:
        self._records = records
        self._act = act

    def __getattr__(self, name: str) -> Any:
        return getattr(self._records, name)

    async def get(self, key: bytes, space: Space = INDEX) -> Any:
        found = await self._records.get(key, space)
        if space is BLOBS and self._act is not None:
            act, self._act = self._act, None
            await act()
        return found


@pytest.mark.parametrize("referenced", [False, True])
async def test_a_blob_released_during_a_read_is_not_found_not_damaged(
    store: Store, referenced: bool
) -> None:
    """A blob another process releases while this one reads its chunks is
    ``BlobNotFoundError``, not the ``IntegrityError`` of a damaged blob."""
    blob = await stored(store.blobs, b"t\x00a")
    other = BlobStore(store.records, store.blobs.limits)
    reading = store.blobs.through(
        ActingMidRead(store.records, lambda: released(other, blob, b"t\x00a"))
    )
    with pytest.raises(BlobNotFoundError):
        await reading.read(blob, referenced=referenced)


@pytest.mark.parametrize("referenced", [False, True])
async def test_a_blob_stored_again_during_a_read_is_read_whole(
    store: Store, referenced: bool
) -> None:
    """A blob another process releases and stores again while this one reads it is read
    whole, from its new chunks."""
    blob = await stored(store.blobs, b"t\x00a")
    other = BlobStore(store.records, store.blobs.limits)

    async def again() -> None:
        await released(other, blob, b"t\x00a")
        await stored(other, b"t\x00b")

    reading = store.blobs.through(ActingMidRead(store.records, again))
    assert await reading.read(blob, referenced=referenced) == CONTENT
