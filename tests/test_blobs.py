"""The content-addressed blob store: round trips, dedup, references, limits, integrity."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.lowlevel
import blake3
import lz4.frame
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satchel import BlobNotFoundError, IntegrityError, InvalidArgumentError, ValidationError
from satchel.storage import BLOBS, Batch, BlobLimits, BlobStore, Store, open_store
from satchel.storage._blobformat import decode_chunk, encode_chunk

from .conftest import SMALL_CHUNKS

TEXT = b'{"role": "tool", "content": "the quick brown fox jumps over the lazy dog"}\n' * 200


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    """Yield ``data`` in pieces of ``size`` bytes, checkpointing between them."""
    for start in range(0, len(data), size):
        await anyio.lowlevel.checkpoint()
        yield data[start : start + size]


async def store_blob(store: Store, content: bytes | AsyncIterator[bytes], owner: bytes) -> str:
    """Put content and commit one reference owned by a record at ``owner``; return its hash."""
    staged = await store.blobs.put(content)
    batch = Batch()
    batch.put(owner, b"record")
    await store.blobs.commit(batch, add=[(staged, owner)])
    return staged.ref.hash


def chunk_keys(store: Store) -> list[bytes]:
    """Every key in the blob space."""
    return [key for key, _ in store.kv.scan(b"", b"\xff" * 32, space=BLOBS)]


async def drop(store: Store, blob: str, owner: bytes) -> None:
    """Delete the record at ``owner`` together with its reference to ``blob``."""
    batch = Batch()
    batch.delete(owner)
    await store.blobs.commit(batch, drop=[(blob, owner)])


async def test_round_trip_small_compressible(store: Store) -> None:
    """Text under one chunk is compressed, hashed with BLAKE3 and read back intact."""
    data = TEXT[:4000]
    staged = await store.blobs.put(data)
    assert staged.ref.hash == blake3.blake3(data).hexdigest()
    assert (staged.ref.size, staged.ref.compressed, staged.ref.chunk_count) == (4000, True, 1)
    assert staged.ref.stored_size < 4000 * 0.9
    batch = Batch()
    batch.put(b"t\x00a", b"")
    await store.blobs.commit(batch, add=[(staged, b"t\x00a")])
    assert await store.blobs.read(staged.ref) == data
    assert (await store.check()).clean


async def test_random_bytes_are_stored_raw(store: Store) -> None:
    """Content that LZ4 cannot shrink by 10% is kept uncompressed."""
    data = os.urandom(3000)
    blob = await store_blob(store, data, b"t\x00r")
    ref = await store.blobs.info(blob)
    assert ref is not None
    assert (ref.compressed, ref.stored_size) == (False, 3000)
    assert await store.blobs.read(blob) == data


async def test_below_threshold_is_not_compressed(tmp_path: Path) -> None:
    """Content under compress_min is stored raw even when it would compress."""
    with open_store(backend="memory", limits=BlobLimits(compress_min=4096)) as store:
        blob = await store_blob(store, b"a" * 4095, b"t\x00x")
        assert (await store.blobs.info(blob)).compressed is False  # type: ignore[union-attr]


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096, 5 * 4096 + 17])
async def test_sizes_round_trip_as_bytes_and_stream(store: Store, size: int) -> None:
    """Bytes and streams of any size around the chunk boundaries read back identical."""
    data = (TEXT * 2)[: size // 2] + os.urandom(size - size // 2)
    from_bytes = await store_blob(store, data, b"t\x00b")
    from_stream = await store_blob(store, pieces(data, 1000), b"t\x00s")
    assert from_bytes == from_stream == blake3.blake3(data).hexdigest()
    assert (await store.blobs.info(from_bytes)).chunk_count == max(1, -(-size // 4096))  # type: ignore[union-attr]
    assert await store.blobs.read(from_bytes) == data
    assert b"".join([c async for c in await store.blobs.stream(from_bytes)]) == data
    assert (await store.check()).clean


async def test_same_bytes_twice_are_one_blob(store: Store) -> None:
    """Storing the same bytes under two owners keeps one blob with two references."""
    data = TEXT * 3
    first = await store_blob(store, data, b"t\x00one")
    keys_after_first = chunk_keys(store)
    second = await store_blob(store, pieces(data, 777), b"t\x00two")
    assert first == second
    assert chunk_keys(store) == keys_after_first
    assert sorted(await store.blobs.references(first)) == [b"t\x00one", b"t\x00two"]
    assert (await store.blobs.load_meta(bytes.fromhex(first))).refcount == 2  # type: ignore[union-attr]
    assert (await store.check()).clean


async def test_concurrent_streams_of_same_bytes_dedup(store: Store) -> None:
    """Two concurrent uploads of the same bytes end as one blob; the loser's chunks go."""
    data = os.urandom(6 * 4096)
    hashes: list[str] = []

    async def upload(owner: bytes) -> None:
        hashes.append(await store_blob(store, pieces(data, 1500), owner))

    async with anyio.create_task_group() as nursery:
        nursery.start_soon(upload, b"t\x00a")
        nursery.start_soon(upload, b"t\x00b")
    assert hashes[0] == hashes[1]
    assert len(chunk_keys(store)) == 6
    assert (await store.blobs.load_meta(bytes.fromhex(hashes[0]))).refcount == 2  # type: ignore[union-attr]
    assert (await store.check()).clean


async def test_last_reference_deletes_the_blob(store: Store) -> None:
    """Dropping references counts down; the last drop deletes metadata and chunks."""
    data = TEXT * 2
    blob = await store_blob(store, data, b"t\x00a")
    await store_blob(store, data, b"t\x00b")
    await drop(store, blob, b"t\x00a")
    assert (await store.blobs.load_meta(bytes.fromhex(blob))).refcount == 1  # type: ignore[union-attr]
    assert await store.blobs.read(blob) == data
    await drop(store, blob, b"t\x00b")
    assert (await store.blobs.info(blob), chunk_keys(store)) == (None, [])
    with pytest.raises(BlobNotFoundError, match=blob):
        await store.blobs.read(blob)
    assert (await store.check()).clean


async def test_add_and_drop_in_one_commit(store: Store) -> None:
    """A commit may move a blob from one owner to another without the blob ever going."""
    blob = await store_blob(store, TEXT, b"t\x00old")
    ref = await store.blobs.info(blob)
    assert ref is not None
    batch = Batch()
    batch.delete(b"t\x00old")
    batch.put(b"t\x00new", b"")
    await store.blobs.commit(batch, add=[(ref, b"t\x00new")], drop=[(ref, b"t\x00old")])
    assert await store.blobs.references(blob) == [b"t\x00new"]
    assert await store.blobs.read(blob) == TEXT
    assert (await store.check()).clean


async def test_owner_cannot_reference_twice(store: Store) -> None:
    """A second reference by the same owner is refused and nothing of that commit lands."""
    blob = await store_blob(store, TEXT, b"t\x00a")
    staged = await store.blobs.put(TEXT)
    batch = Batch()
    batch.put(b"t\x00marker", b"")
    with pytest.raises(ValidationError, match="already references"):
        await store.blobs.commit(batch, add=[(staged, b"t\x00a")])
    assert store.kv.get(b"t\x00marker") is None
    assert (await store.blobs.load_meta(bytes.fromhex(blob))).refcount == 1  # type: ignore[union-attr]


async def test_drop_without_reference_is_refused(store: Store) -> None:
    """Releasing a reference the owner does not hold raises and writes nothing."""
    blob = await store_blob(store, TEXT, b"t\x00a")
    batch = Batch()
    batch.put(b"t\x00marker", b"")
    with pytest.raises(BlobNotFoundError, match="holds no reference"):
        await store.blobs.commit(batch, drop=[(blob, b"t\x00b")])
    assert store.kv.get(b"t\x00marker") is None
    assert (await store.check()).clean


async def test_referencing_a_gone_blob_by_hash_fails(store: Store) -> None:
    """Taking a reference by ref to a blob that was deleted raises BlobNotFoundError."""
    blob = await store_blob(store, TEXT, b"t\x00a")
    ref = await store.blobs.info(blob)
    assert ref is not None
    await drop(store, blob, b"t\x00a")
    batch = Batch()
    batch.put(b"t\x00b", b"")
    with pytest.raises(BlobNotFoundError, match="not stored"):
        await store.blobs.commit(batch, add=[(ref, b"t\x00b")])
    assert store.kv.get(b"t\x00b") is None


async def test_staged_duplicate_survives_deletion_of_original(store: Store) -> None:
    """Content staged as a duplicate is written again if the original goes before commit."""
    data = TEXT * 5
    blob = await store_blob(store, data, b"t\x00a")
    staged = await store.blobs.put(data)
    await drop(store, blob, b"t\x00a")
    await store_blob(store, b"unrelated", b"t\x00u")
    batch = Batch()
    batch.put(b"t\x00b", b"")
    await store.blobs.commit(batch, add=[(staged, b"t\x00b")])
    assert await store.blobs.read(blob) == data
    assert (await store.check()).clean


@pytest.mark.parametrize("bad", ["text", 12, [b"a"], None])
async def test_put_rejects_wrong_types(store: Store, bad: object) -> None:
    """Content that is neither bytes nor an async iterator of bytes is a TypeError."""
    with pytest.raises(TypeError, match="must be bytes"):
        await store.blobs.put(bad)  # type: ignore[arg-type]


async def test_stream_of_wrong_type_leaves_nothing(store: Store) -> None:
    """A stream that yields a str after some chunks fails and its chunks are removed."""

    async def bad() -> AsyncIterator[object]:
        yield os.urandom(9000)
        yield "oops"

    with pytest.raises(InvalidArgumentError, match="yielded str"):
        await store.blobs.put(bad())  # type: ignore[arg-type]
    assert chunk_keys(store) == []
    assert store.blobs.uploads_in_flight == frozenset()


async def test_oversize_bytes_rejected_before_writing(store: Store) -> None:
    """Bytes over the size limit raise ValidationError and write nothing."""
    with pytest.raises(ValidationError, match="over the limit"):
        await store.blobs.put(bytes(SMALL_CHUNKS.max_size + 1))
    assert chunk_keys(store) == []


async def test_oversize_stream_cleans_up(store: Store) -> None:
    """A stream that passes the size limit fails and leaves no chunk behind."""
    with pytest.raises(ValidationError, match="over the limit"):
        await store.blobs.put(pieces(os.urandom(SMALL_CHUNKS.max_size + 10), 50_000))
    assert chunk_keys(store) == []
    assert (await store.check()).clean


async def test_cancelled_upload_cleans_up(store: Store, autojump_clock: None) -> None:
    """Cancelling a streaming put removes the chunks it had written."""
    written: list[int] = []

    async def stalls() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield os.urandom(4096)
        written.append(len(chunk_keys(store)))
        await anyio.sleep_forever()
        yield b""  # pragma: no cover

    with anyio.move_on_after(5):
        await store.blobs.put(stalls())
    assert (written, chunk_keys(store)) == ([3], [])


async def test_discard_removes_staged_upload(store: Store) -> None:
    """A discarded multi-chunk staging leaves no chunk behind."""
    staged = await store.blobs.put(os.urandom(3 * 4096))
    assert len(chunk_keys(store)) == 3
    await store.blobs.discard(staged)
    assert chunk_keys(store) == []
    assert (await store.check()).clean


async def test_corrupt_chunk_is_integrity_error(store: Store) -> None:
    """A flipped byte at rest raises IntegrityError naming the blob, and check reports it."""
    data = os.urandom(3000)
    blob = await store_blob(store, data, b"t\x00a")
    (key,) = chunk_keys(store)
    batch = Batch()
    batch.put(key, bytes([data[0] ^ 0xFF]) + data[1:], BLOBS)  # always a change
    store.kv.write(batch)
    with pytest.raises(IntegrityError, match=blob):
        await store.blobs.read(blob)
    report = await store.check()
    assert len(report.corrupt_blobs) == 1 and blob in report.corrupt_blobs[0]


async def test_corrupt_compressed_chunk_is_integrity_error(store: Store) -> None:
    """A compressed chunk with garbage bytes raises IntegrityError rather than crashing."""
    blob = await store_blob(store, TEXT[:4000], b"t\x00a")
    (key,) = chunk_keys(store)
    batch = Batch()
    batch.put(key, b"\x04\x22\x4d\x18garbage", BLOBS)
    store.kv.write(batch)
    with pytest.raises(IntegrityError, match=blob):
        await store.blobs.read(blob)


async def test_stream_stops_at_the_corrupt_chunk(store: Store) -> None:
    """A streaming read yields the good chunks and raises before yielding a corrupt one."""
    data = os.urandom(3 * 4096)
    blob = await store_blob(store, data, b"t\x00a")
    keys = chunk_keys(store)
    batch = Batch()
    batch.put(keys[1], os.urandom(4096), BLOBS)
    store.kv.write(batch)
    got: list[bytes] = []

    async def consume() -> None:
        async for chunk in await store.blobs.stream(blob):
            got.append(chunk)

    with pytest.raises(IntegrityError, match="chunk 1 is corrupt"):
        await consume()
    assert got == [data[:4096]]


async def test_missing_chunk_is_integrity_error(store: Store) -> None:
    """A chunk deleted behind the store's back is reported as missing."""
    blob = await store_blob(store, os.urandom(2 * 4096), b"t\x00a")
    batch = Batch()
    batch.delete(chunk_keys(store)[1], BLOBS)
    store.kv.write(batch)
    with pytest.raises(IntegrityError, match="chunk 1 is missing"):
        await store.blobs.read(blob)
    assert not (await store.check()).clean


@pytest.mark.parametrize("name", ["xyz", "ab" * 31, 42])
async def test_malformed_hash_is_rejected(store: Store, name: object) -> None:
    """A blob name that is not 64 hex digits is a clear error, not a lookup."""
    with pytest.raises((ValidationError, InvalidArgumentError)):
        await store.blobs.read(name)  # type: ignore[arg-type]


async def test_refcounts_survive_reopen(tmp_path: Path) -> None:
    """Blobs, reference counts and references are the same after close and reopen."""
    with open_store(tmp_path, limits=SMALL_CHUNKS) as store:
        blob = await store_blob(store, TEXT * 4, b"t\x00a")
        await store_blob(store, TEXT * 4, b"t\x00b")
    with open_store(tmp_path, limits=SMALL_CHUNKS) as store:
        assert (await store.blobs.load_meta(bytes.fromhex(blob))).refcount == 2  # type: ignore[union-attr]
        await drop(store, blob, b"t\x00a")
    with open_store(tmp_path, limits=SMALL_CHUNKS) as store:
        assert await store.blobs.references(blob) == [b"t\x00b"]
        assert await store.blobs.read(blob) == TEXT * 4
        assert (await store.check()).clean


async def test_interrupted_upload_is_recovered_on_open(tmp_path: Path) -> None:
    """Chunks of an upload never committed (the process stopped) are deleted by the
    recovery that follows the next open."""
    with open_store(tmp_path, limits=SMALL_CHUNKS) as store:
        await store.blobs.put(os.urandom(5 * 4096))
        assert len(chunk_keys(store)) == 5
    with open_store(tmp_path, limits=SMALL_CHUNKS) as store:
        await store.blobs.recover()
        assert chunk_keys(store) == []
        assert (await store.check()).clean


async def test_recovery_keeps_young_uploads_of_a_shared_store(tmp_path: Path) -> None:
    """With a grace period (a store other processes share), recovery keeps the chunks of an
    upload marked since, which may be another process's in flight, and deletes older ones."""
    with open_store(tmp_path, limits=SMALL_CHUNKS) as store:
        await store.blobs.put(os.urandom(3 * 4096))
    with open_store(tmp_path, limits=SMALL_CHUNKS) as store:
        await store.blobs.recover(grace_s=3600.0)
        assert len(chunk_keys(store)) == 3
        await store.blobs.recover(grace_s=0.0)
        assert chunk_keys(store) == []


async def test_sync_commit_reaches_the_backend(store: Store) -> None:
    """commit(sync=True) asks the backend for a synced write."""
    staged = await store.blobs.put(TEXT)
    batch = Batch()
    batch.put(b"t\x00a", b"")
    await store.blobs.commit(batch, add=[(staged, b"t\x00a")], sync=True)
    assert store.kv.sync_writes == 1  # type: ignore[attr-defined]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=20_000), piece=st.integers(1, 9000))
def test_any_content_round_trips(data: bytes, piece: int) -> None:
    """Any bytes, streamed in any piece size, read back identical with the same hash."""

    async def main() -> None:
        with open_store(backend="memory", limits=SMALL_CHUNKS) as store:
            first = await store_blob(store, pieces(data, piece), b"t\x00a")
            second = await store_blob(store, data, b"t\x00b")
            assert first == second == blake3.blake3(data).hexdigest()
            assert await store.blobs.read(first) == data
            assert (await store.check()).clean

    trio.run(main)


async def test_streaming_keeps_memory_bounded(tmp_path: Path) -> None:
    """A 48 MiB stream goes in and out with Python allocations bounded by a few chunks."""
    import tracemalloc

    limits = BlobLimits(chunk_size=1 << 20, max_size=64 << 20)
    piece = os.urandom(1 << 20)

    async def source() -> AsyncIterator[bytes]:
        for index in range(48):
            yield index.to_bytes(4, "big") + piece[4:]

    with open_store(tmp_path, limits=limits) as store:
        tracemalloc.start()
        try:
            blob = await store_blob(store, source(), b"t\x00big")
            _, put_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            total = 0
            async for chunk in await store.blobs.stream(blob):
                total += len(chunk)
            _, get_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert total == 48 << 20
        assert (put_peak < 8 << 20, get_peak < 8 << 20) == (True, True), (put_peak, get_peak)


async def test_reused_buffer_cannot_change_a_staged_duplicate(store: Store) -> None:
    """A bytearray changed after put still commits the bytes that were hashed."""
    data = bytearray(TEXT)
    blob = await store_blob(store, bytes(data), b"t\x00a")
    staged = await store.blobs.put(data)
    await drop(store, blob, b"t\x00a")
    data[:5] = b"XXXXX"
    batch = Batch()
    batch.put(b"t\x00b", b"")
    await store.blobs.commit(batch, add=[(staged, b"t\x00b")])
    assert await store.blobs.read(blob) == TEXT


async def test_put_inline_stages_one_chunk_without_writing(store: Store) -> None:
    """``put_inline`` hashes and encodes up to one chunk in memory, writes nothing before
    ``commit``, and dedups against what is stored."""
    data = TEXT[:3000]
    staged = await store.blobs.put_inline(data)
    assert chunk_keys(store) == []
    batch = Batch()
    batch.put(b"t\x00one", b"record")
    await store.blobs.commit(batch, add=[(staged, b"t\x00one")])
    again = await store.blobs.put_inline(bytearray(data))
    assert again.ref == staged.ref
    batch = Batch()
    batch.put(b"t\x00two", b"record")
    await store.blobs.commit(batch, add=[(again, b"t\x00two")])
    meta = await store.blobs.load_meta(bytes.fromhex(staged.ref.hash))
    assert meta is not None and meta.refcount == 2
    assert (await store.check()).clean
    with pytest.raises(InvalidArgumentError):
        await store.blobs.put_inline(b"x" * (SMALL_CHUNKS.chunk_size + 1))
    tight = BlobStore(store.records, BlobLimits(chunk_size=4096, max_size=100))
    with pytest.raises(ValidationError):
        await tight.put_inline(b"x" * 101)


_MIB = 1 << 20


@pytest.mark.parametrize(
    ("content", "one_block"),
    [
        # Every part compresses: 64 KiB blocks (quick to compress, no scratch memory on read).
        (b"".join(b'{"id": %d, "text": "output"}\n' % i for i in range(40_000))[:_MIB], False),
        # A random head, then text: one block (raw blocks decode through scratch memory).
        ((os.urandom(_MIB // 2) + b"a line of an agent's output\n" * (_MIB // 40))[:_MIB], True),
    ],
    ids=["uniform", "mixed"],
)
def test_chunk_framing_follows_its_content(content: bytes, one_block: bool) -> None:
    """A chunk whose samples all compress is framed in 64 KiB blocks, a mixed one in one
    block; both are compressed (the random head no longer hides the text) and decode back."""
    stored, compressed = encode_chunk(content, BlobLimits())
    assert compressed and len(stored) < 0.9 * len(content)
    block_size = lz4.frame.get_frame_info(stored)["block_size"]
    assert block_size >= len(content) if one_block else block_size == 64 << 10
    assert decode_chunk(stored, compressed, len(content), "x") == content
