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
from satchel.storage._kv import BLOBS

from .test_blob_guesses import FailingCleanup

pytestmark = pytest.mark.anyio

#: Three chunks of the test store's 4 KiB, incompressible.
CONTENT = os.urandom(3 * 4096 - 100)


class Counting:
    """A record store whose ``get`` calls are counted in ``gets``."""

    def __init__(self, records: Any) -> None:
        self._records = records
        self.gets = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._records, name)

    async def get(self, *args: Any, **kw: Any) -> Any:
        self.gets += 1
        return await self._records.get(*args, **kw)


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
    counting = Counting(store.records)
    blobs = store.blobs.through(counting)
    assert await blobs.read(blob, referenced=True) == CONTENT
    assert counting.gets == 3
    assert await blobs.read(blob) == CONTENT
    assert counting.gets == 3 + 4


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
