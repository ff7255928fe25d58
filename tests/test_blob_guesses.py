"""Blob commits that guess the counts they write (``storage/_blob_plan.assume``): a wrong
guess costs a read and a second write, never a count or a reference."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from satchel import BlobNotFoundError, WriteConflictError
from satchel.storage import ABSENT, Batch, BlobStore, Store, open_store

pytestmark = pytest.mark.anyio

TEXT = b"the same small content, stored by two processes " * 20


@pytest.fixture
def store() -> Iterator[Store]:
    with open_store(backend="memory") as opened:
        yield opened


class Counting:
    """A record store's reads and writes, each named in ``calls`` as it is made."""

    def __init__(self, records: Any, calls: list[str]) -> None:
        self._records = records
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._records, name)
        if name not in ("get", "get_many", "scan", "write"):
            return found

        async def counted(*args: Any, **kw: Any) -> Any:
            self._calls.append(name)
            return await found(*args, **kw)

        return counted


def counting(blobs: BlobStore, calls: list[str]) -> BlobStore:
    """``blobs``, its reads and writes named in ``calls``."""
    return blobs.through(Counting(blobs.records, calls))


async def add(blobs: BlobStore, content: bytes, owner: bytes) -> str:
    staged = await blobs.put_inline(content)
    batch = Batch()
    batch.put(owner, b"record")
    await blobs.commit(batch, add=[(staged, owner)])
    return staged.ref.hash


async def refcount(store: Store, blob: str) -> int:
    meta = await BlobStore(store.records).load_meta(bytes.fromhex(blob))
    return 0 if meta is None else meta.refcount


async def test_new_content_is_committed_without_a_read(store: Store) -> None:
    """Content staged in this process and never seen stored is taken to be new: its commit
    is one write."""
    calls: list[str] = []
    blobs = counting(store.blobs, calls)
    blob = await add(blobs, TEXT, b"t\x00a")
    assert calls == ["write"]
    calls.clear()
    await add(blobs, TEXT, b"t\x00b")  # the count this process wrote: still no read
    assert calls == ["write"]
    assert await refcount(store, blob) == 2
    assert (await store.check()).clean


async def test_content_another_process_stored_is_counted_after_one_conflict(
    store: Store,
) -> None:
    """A content the other store (another process on a shared store) has stored is guessed
    new here: the write fails whole, one read tells what is stored, and the second write
    counts both references."""
    other = BlobStore(store.records)
    blob = await add(other, TEXT, b"t\x00a")
    calls: list[str] = []
    await add(counting(store.blobs, calls), TEXT, b"t\x00b")
    assert calls == ["write", "get_many", "write"]
    assert await refcount(store, blob) == 2
    assert sorted(await store.blobs.references(blob)) == [b"t\x00a", b"t\x00b"]
    assert (await store.check()).clean


async def test_a_count_changed_by_another_process_is_read_again(store: Store) -> None:
    """The count this process last wrote is its guess; another store's commits since make
    it wrong, and the commit plans again from what is stored, losing no reference."""
    other = BlobStore(store.records)
    blob = await add(store.blobs, TEXT, b"t\x00a")
    for owner in (b"t\x00b", b"t\x00c"):
        await add(other, TEXT, owner)
    await add(store.blobs, TEXT, b"t\x00d")
    batch = Batch()
    batch.delete(b"t\x00b")
    await other.commit(batch, drop=[(blob, b"t\x00b")])
    batch = Batch()
    batch.delete(b"t\x00a")
    await store.blobs.commit(batch, drop=[(blob, b"t\x00a")])
    assert await refcount(store, blob) == 2
    assert sorted(await store.blobs.references(blob)) == [b"t\x00c", b"t\x00d"]
    assert (await store.check()).clean


async def test_a_blob_seen_deleted_but_stored_again_elsewhere_is_referenced(
    store: Store,
) -> None:
    """A blob this process saw go is not guessed gone: taking a reference to it by hash
    reads first, and finds the other process stored it again."""
    blob = await add(store.blobs, TEXT, b"t\x00a")
    batch = Batch()
    batch.delete(b"t\x00a")
    await store.blobs.commit(batch, drop=[(blob, b"t\x00a")])
    other = BlobStore(store.records)
    await add(other, TEXT, b"t\x00b")
    batch = Batch()
    batch.put(b"t\x00c", b"record")
    await store.blobs.commit(batch, add=[(blob, b"t\x00c")])
    assert await refcount(store, blob) == 2
    assert (await store.check()).clean


async def test_a_blob_gone_elsewhere_is_written_again_from_the_staging(store: Store) -> None:
    """The count this process wrote is stale once another store deleted the blob: the
    commit's condition fails, and the plan made again writes the content afresh."""
    other = BlobStore(store.records)
    blob = await add(store.blobs, TEXT, b"t\x00a")
    batch = Batch()
    batch.delete(b"t\x00a")
    await other.commit(batch, drop=[(blob, b"t\x00a")])
    await add(store.blobs, TEXT, b"t\x00b")
    assert await refcount(store, blob) == 1
    assert await store.blobs.read(blob) == TEXT
    assert (await store.check()).clean


async def test_a_guessed_reference_the_owner_holds_is_refused(store: Store) -> None:
    """An owner taking a reference it holds (the guess: it does not) is refused after the
    read that follows the failed write; nothing is written."""
    blob = await add(store.blobs, TEXT, b"t\x00a")
    staged = await store.blobs.put_inline(TEXT)
    batch = Batch()
    batch.put(b"t\x00marker", b"")
    with pytest.raises(Exception, match="already references"):
        await store.blobs.commit(batch, add=[(staged, b"t\x00a")])
    assert await store.records.get(b"t\x00marker") is None
    assert await refcount(store, blob) == 1


async def test_a_failed_condition_of_the_callers_is_raised_after_one_read(store: Store) -> None:
    """A commit whose caller's own condition fails raises ``WriteConflictError`` once the
    read after the failed write shows it, without planning again; nothing is written."""
    before = Batch()
    before.put(b"t\x00head", b"taken")
    await store.records.write(before)
    calls: list[str] = []
    blobs = counting(store.blobs, calls)
    staged = await blobs.put_inline(TEXT)
    batch = Batch()
    batch.put(b"t\x00head", b"mine", expect=ABSENT)
    batch.put(b"t\x00a", b"record")
    with pytest.raises(WriteConflictError):
        await blobs.commit(batch, add=[(staged, b"t\x00a")])
    assert calls == ["write", "get_many"]
    assert await store.records.get(b"t\x00a") is None
    assert await refcount(store, staged.ref.hash) == 0
    with pytest.raises(BlobNotFoundError):
        await store.blobs.read(staged.ref.hash)


async def test_a_referenced_blob_this_process_stored_is_read_without_its_record(
    store: Store,
) -> None:
    """Reading content this process stored, for a caller holding a reference to it, reads its
    chunk only, not the blob's record (a round trip saved on a networked store)."""
    calls: list[str] = []
    blobs = counting(store.blobs, calls)
    blob = await add(blobs, TEXT, b"t\x00a")
    calls.clear()
    assert await blobs.read(blob, referenced=True) == TEXT
    assert calls == ["get"]
    calls.clear()
    assert await blobs.read(blob) == TEXT  # without a reference: the record is read
    assert calls == ["get", "get"]


class FailingCleanup:
    """A record store whose writes that delete ranges (a released blob's chunks) fail."""

    def __init__(self, records: Any) -> None:
        self._records = records

    def __getattr__(self, name: str) -> Any:
        return getattr(self._records, name)

    async def write(self, batch: Batch, **kw: Any) -> None:
        if any(op == "delete_range" for op, *_ in batch.ops):
            raise OSError("the cleanup's write failed")
        await self._records.write(batch, **kw)


async def test_a_blob_released_elsewhere_is_not_read_while_its_chunks_wait(store: Store) -> None:
    """A blob another process released, whose chunks wait to be deleted, is not stored: a
    read without a reference raises ``BlobNotFoundError``, as ``info`` answers ``None``."""
    blob = await add(store.blobs, TEXT, b"t\x00a")
    other = BlobStore(FailingCleanup(store.records))
    batch = Batch()
    batch.delete(b"t\x00a")
    await other.commit(batch, drop=[(blob, b"t\x00a")])
    with pytest.raises(BlobNotFoundError):
        await store.blobs.read(blob)
    assert await store.blobs.info(blob) is None


async def test_a_blob_stored_again_elsewhere_is_read_from_its_new_record(store: Store) -> None:
    """A blob released and stored again by another process (under a new data id) is read
    whole through its new record, not the one this process saw."""
    blob = await add(store.blobs, TEXT, b"t\x00a")
    other = BlobStore(store.records)
    batch = Batch()
    batch.delete(b"t\x00a")
    await other.commit(batch, drop=[(blob, b"t\x00a")])
    await add(other, TEXT, b"t\x00b")
    calls: list[str] = []
    assert await counting(store.blobs, calls).read(blob, referenced=True) == TEXT
    assert calls == ["get", "get", "get"]  # the old chunk, the record, the new chunk
    assert await store.blobs.read(blob, referenced=True) == TEXT
