"""check(): every kind of damage is found, and fix=True repairs what can be repaired."""

from __future__ import annotations

import os

import attrs

from satchel.storage import BLOBS, Batch, Store
from satchel.storage._blobmeta import META_CODEC
from satchel.storage._keys import blob_key

from .test_blobs import TEXT, chunk_keys, store_blob


async def test_clean_store_is_clean(store: Store) -> None:
    """A store used only through its API checks clean and counts blobs and references."""
    await store_blob(store, TEXT, b"t\x00a")
    await store_blob(store, TEXT, b"t\x00b")
    await store_blob(store, os.urandom(9000), b"t\x00c")
    report = await store.check()
    assert (report.clean, report.blobs, report.references) == (True, 2, 3)


async def test_owner_deleted_behind_the_back(store: Store) -> None:
    """A reference whose owner record is gone is dangling; fix frees the blob it held."""
    blob = await store_blob(store, TEXT, b"t\x00a")
    batch = Batch()
    batch.delete(b"t\x00a")
    store.kv.write(batch)
    report = await store.check(fix=True)
    assert len(report.dangling_references) == 1 and blob in report.dangling_references[0]
    assert len(report.refcount_mismatches) == 1
    assert (await store.blobs.info(blob), chunk_keys(store)) == (None, [])
    assert (await store.check()).clean


async def test_wrong_refcount_is_recounted(store: Store) -> None:
    """A blob whose stored count is off is reported and recounted by fix."""
    blob = await store_blob(store, TEXT, b"t\x00a")
    digest = bytes.fromhex(blob)
    meta = await store.blobs.load_meta(digest)
    assert meta is not None
    batch = Batch()
    batch.put(blob_key(digest), META_CODEC.encode(attrs.evolve(meta, refcount=5)))
    store.kv.write(batch)
    report = await store.check()
    assert report.refcount_mismatches == (f"blob {blob} counts 5, has 1",)
    assert not report.fixed
    await store.check(fix=True)
    assert (await store.blobs.load_meta(digest)).refcount == 1  # type: ignore[union-attr]
    assert (await store.check()).clean


async def test_orphan_chunks_are_deleted(store: Store) -> None:
    """Chunks that no blob owns are reported and deleted by fix, and live blobs stay."""
    blob = await store_blob(store, TEXT, b"t\x00a")
    live = chunk_keys(store)
    batch = Batch()
    batch.put(os.urandom(16) + b"\x00\x00\x00\x00", b"stray", BLOBS)
    store.kv.write(batch)
    report = await store.check(fix=True)
    assert len(report.orphan_chunks) == 1
    assert chunk_keys(store) == live
    assert await store.blobs.read(blob) == TEXT
    assert (await store.check()).clean


async def test_corruption_is_reported_not_hidden(store: Store) -> None:
    """A corrupt blob stays reported after fix: check never deletes evidence silently."""
    blob = await store_blob(store, os.urandom(5000), b"t\x00a")
    batch = Batch()
    batch.put(chunk_keys(store)[0], os.urandom(4096), BLOBS)
    store.kv.write(batch)
    assert (await store.check(deep=False)).clean
    first = await store.check(fix=True)
    second = await store.check()
    assert [blob in p for p in first.corrupt_blobs + second.corrupt_blobs] == [True, True]


async def test_upload_in_flight_is_not_an_orphan(store: Store) -> None:
    """Chunks of a staged upload not yet committed are not orphans while it is live."""
    staged = await store.blobs.put(os.urandom(3 * 4096))
    report = await store.check(fix=True)
    assert report.clean
    batch = Batch()
    batch.put(b"t\x00a", b"")
    await store.blobs.commit(batch, add=[(staged, b"t\x00a")])
    assert (await store.check()).clean
