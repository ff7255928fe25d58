"""Reads verify each chunk's stored bytes against the digest its record keeps; records
written before those digests existed are still read, verified by the content hash."""

from __future__ import annotations

import os
from typing import Any

import attrs
import lz4.frame
import pytest

from satchel import IntegrityError, ValidationError
from satchel.storage import BLOBS, Batch, RecordCodec, Store
from satchel.storage._blob_uploads import Upload
from satchel.storage._blobformat import chunk_key, digest_of, encode_chunk
from satchel.storage._blobmeta import META_CODEC, BlobMeta
from satchel.storage._keys import blob_key

from .conftest import SMALL_CHUNKS
from .test_blobs import TEXT, chunk_keys, store_blob

ONE_CHUNK = TEXT[:3000] + bytes(1000)  # compresses, one 4 KiB chunk
CHUNKS = TEXT * 3  # compresses, several chunks


def meta_of(store: Store, blob: str) -> BlobMeta:
    data = store.kv.get(blob_key(bytes.fromhex(blob)))
    assert data is not None
    return META_CODEC.decode(data)


def swap_chunk(store: Store, meta: BlobMeta, index: int, content: bytes) -> None:
    """Replace chunk ``index`` with ``content``'s compressed form: it decodes cleanly to as
    many bytes, but not to the bytes stored."""
    stored, compressed = encode_chunk(content, SMALL_CHUNKS)
    assert compressed
    batch = Batch()
    batch.put(chunk_key(meta.data_id, index), stored, BLOBS)
    store.kv.write(batch)


def other(content: bytes) -> bytes:
    return content.replace(b"quick", b"QUICK")


async def read_all(store: Store, blob: str) -> bytes:
    return b"".join([chunk async for chunk in await store.blobs.stream(blob)])


@pytest.mark.parametrize("content", [ONE_CHUNK, CHUNKS], ids=["one chunk", "chunks"])
async def test_every_stored_chunk_has_its_digest(store: Store, content: bytes) -> None:
    """A new blob's record holds the digest of each chunk's stored bytes, and reads match."""
    blob = await store_blob(store, content, b"t\x00a")
    meta = meta_of(store, blob)
    assert len(meta.stored_digests) == 32 * meta.chunk_count
    for index in range(meta.chunk_count):
        stored = store.kv.get(chunk_key(meta.data_id, index), BLOBS)
        assert stored is not None
        assert meta.stored_digests[32 * index : 32 * (index + 1)] == digest_of(stored)
    assert await store.blobs.read(blob) == content
    assert await read_all(store, blob) == content


@pytest.mark.parametrize("content", [ONE_CHUNK, CHUNKS], ids=["one chunk", "chunks"])
async def test_a_chunk_that_decodes_to_other_bytes_is_refused(store: Store, content: bytes) -> None:
    """A stored chunk replaced by another valid compressed chunk of the same size is caught
    by its stored digest, on a whole read and on a streamed one."""
    blob = await store_blob(store, content, b"t\x00a")
    meta = meta_of(store, blob)
    first = content[: SMALL_CHUNKS.chunk_size]
    swap_chunk(store, meta, 0, other(first))
    assert len(lz4.frame.decompress(store.kv.get(chunk_key(meta.data_id, 0), BLOBS) or b"")) == len(
        first
    )
    with pytest.raises(IntegrityError):
        await store.blobs.read(blob)
    with pytest.raises(IntegrityError):
        await read_all(store, blob)


@pytest.mark.parametrize("content", [ONE_CHUNK, CHUNKS], ids=["one chunk", "chunks"])
async def test_a_record_without_stored_digests_is_verified_by_content(
    store: Store, content: bytes
) -> None:
    """A blob whose record predates stored digests reads as before, and a swapped chunk is
    still caught, by the content hash."""
    blob = await store_blob(store, content, b"t\x00a")
    meta = meta_of(store, blob)
    old = attrs.evolve(meta, stored_digests=b"")
    batch = Batch()
    batch.put(blob_key(bytes.fromhex(blob)), META_CODEC.encode(old))
    store.kv.write(batch)
    assert await store.blobs.read(blob) == content
    assert await read_all(store, blob) == content
    swap_chunk(store, meta, 0, other(content[: SMALL_CHUNKS.chunk_size]))
    with pytest.raises(IntegrityError):
        await store.blobs.read(blob)
    with pytest.raises(IntegrityError):
        await read_all(store, blob)


@attrs.frozen
class _BlobMetaV1:
    size: int
    stored_size: int
    chunk_size: int
    chunk_count: int
    data_id: bytes
    lz4_map: bytes
    chunk_digests: bytes
    refcount: int = 0


def test_a_version_1_record_decodes_without_stored_digests() -> None:
    """A blob record of schema version 1 decodes, with no stored digests."""
    old = _BlobMetaV1(10, 10, 4096, 1, b"\x01" * 16, b"", b"", 2)
    data = RecordCodec(_BlobMetaV1, kind="blob", version=1).encode(old)
    meta = META_CODEC.decode(data)
    assert meta == BlobMeta(10, 10, 4096, 1, b"\x01" * 16, b"", b"", 2, b"")


async def test_a_buffer_changed_while_it_is_stored_is_refused(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bytearray the caller changes while its chunks are written is refused, not stored
    under the digest of what it held before (reads check stored bytes, not the name)."""
    original = os.urandom(4096) + b"A" * 4096 + os.urandom(4096)
    buffer = bytearray(original)
    add = Upload.add

    async def add_then_change(self: Upload, chunk: Any) -> None:
        await add(self, chunk)
        buffer[8192:8200] = b"EVILEVIL"  # after the first chunk, as another task could

    monkeypatch.setattr(Upload, "add", add_then_change)
    with pytest.raises(ValidationError, match="changed while"):
        await store.blobs.put(buffer)
    assert chunk_keys(store) == []
    assert (await store.check()).clean


async def test_a_deep_check_hashes_content_against_its_name(store: Store) -> None:
    """check(deep=True) finds a blob whose stored bytes match their digests but whose
    content does not match its name."""
    blob = await store_blob(store, CHUNKS, b"t\x00a")
    meta = meta_of(store, blob)
    swap_chunk(store, meta, 0, other(CHUNKS[: SMALL_CHUNKS.chunk_size]))
    forged = attrs.evolve(
        meta,
        stored_digests=digest_of(store.kv.get(chunk_key(meta.data_id, 0), BLOBS) or b"")
        + meta.stored_digests[32:],
    )
    batch = Batch()
    batch.put(blob_key(bytes.fromhex(blob)), META_CODEC.encode(forged))
    store.kv.write(batch)
    report = await store.check(deep=True)
    assert any("does not match its hash" in problem for problem in report.corrupt_blobs), report
