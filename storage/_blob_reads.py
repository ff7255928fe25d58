"""Reading a blob's chunks as its record names them: each chunk verified (against its stored
digest where the record keeps them, else the whole content against its hash) before any of
its bytes are given out whole, or, streamed, as each chunk is yielded."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

import anyio
import anyio.lowlevel

from satchel.runtime._errors import IntegrityError

from ._blobformat import DIGEST_SIZE, chunk_key, decode_chunk, digest_of, has_bit, new_hasher
from ._blobmeta import BlobMeta
from ._kv import BLOBS
from ._ports import RecordStore

#: What reads chunk ``index`` of a blob (digest, record, index, guessed): ``read_chunk``, or
#: a store's method calling it.
ChunkReader = Callable[..., Awaitable[bytes]]


class ChunkGone(Exception):
    """A chunk a blob record named is gone: the record must be read again to tell why."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


async def read_chunk(
    records: RecordStore, digest: bytes, meta: BlobMeta, index: int, guessed: bool = False
) -> bytes:
    """Chunk ``index`` decoded; in a record that keeps stored digests, its stored bytes are
    checked against theirs before they are decoded. ``guessed``: ``meta`` may be out of date,
    and a chunk gone is ``ChunkGone`` (not yet damage)."""
    stored = await records.get(chunk_key(meta.data_id, index), BLOBS)
    if stored is None:
        if guessed:
            raise ChunkGone(index)
        raise IntegrityError(f"blob {digest.hex()}: chunk {index} is missing")
    if meta.stored_digests:
        expected = meta.stored_digests[index * DIGEST_SIZE : (index + 1) * DIGEST_SIZE]
        if digest_of(stored) != expected:
            what = (
                f"chunk {index} is corrupt"
                if meta.chunk_count > 1
                else "content does not match its hash"
            )
            raise IntegrityError(f"blob {digest.hex()}: {what}")
    size = min(meta.chunk_size, meta.size - index * meta.chunk_size)
    return decode_chunk(stored, has_bit(meta.lz4_map, index), size, digest.hex())


async def read_content(
    read: ChunkReader,
    digest: bytes,
    meta: BlobMeta,
    guessed: bool = False,
    *,
    limiter: anyio.CapacityLimiter | None = None,
) -> bytes:
    """The whole content ``meta`` names, each chunk read by ``read``; with ``limiter`` (a
    networked store's: each read waits on a server), the chunks after the first several at
    a time, as many as the limiter lets all reads of the store run at once."""
    pieces = await _read_chunks(read, digest, meta, guessed, limiter)
    if meta.stored_digests:  # each chunk was checked as it was read
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)
    # Nothing is returned before the whole hash is checked, so per-chunk digests (which
    # protect what ``stream`` yields early) would only hash every byte twice here.
    if len(pieces) == 1:
        if digest_of(pieces[0]) != digest:
            raise IntegrityError(f"blob {digest.hex()}: content does not match its hash")
        return pieces[0]
    hasher = new_hasher(meta.size)
    for piece in pieces:
        hasher.update(piece)
    if hasher.digest() != digest:
        raise IntegrityError(f"blob {digest.hex()}: content does not match its hash")
    return b"".join(pieces)


async def _read_chunks(
    read: ChunkReader,
    digest: bytes,
    meta: BlobMeta,
    guessed: bool,
    limiter: anyio.CapacityLimiter | None,
) -> list[bytes]:
    """Every chunk of ``meta``, in order.

    The first is read alone: a blob released since its record was read fails there (the
    usual ``ChunkGone``) with one read, as one at a time. The others, with ``limiter`` (the
    store's, shared by all its reads), are read by as many workers as it has tokens, each
    taking the next chunk while it holds a token: reads of several blobs take turns, and a
    small one is not queued behind every chunk of a large one. After a failure no further
    chunk is taken and the reads under way finish (cancelled, a PostgreSQL query would cost
    its connection). The first failure is raised as itself, never in an exception group."""
    pieces = [await read(digest, meta, 0, guessed)]
    count = meta.chunk_count
    if limiter is None or count <= 2:
        for index in range(1, count):
            await anyio.lowlevel.checkpoint()
            pieces.append(await read(digest, meta, index, guessed))
        return pieces
    pieces.extend([b""] * (count - 1))
    failed: list[Exception] = []
    left = iter(range(1, count))

    async def worker() -> None:
        while True:
            async with limiter:
                index = None if failed else next(left, None)
                if index is None:
                    return
                try:
                    pieces[index] = await read(digest, meta, index, guessed)
                except Exception as error:
                    failed.append(error)
                    return

    try:
        async with anyio.create_task_group() as tasks:
            for _ in range(min(int(limiter.total_tokens), count - 1)):
                tasks.start_soon(worker)
    except BaseExceptionGroup as group:  # a KeyboardInterrupt, say: raised as itself
        cancelled = anyio.get_cancelled_exc_class()
        first = next((e for e in group.exceptions if not isinstance(e, cancelled)), None)
        if first is None:
            raise
        raise first from None
    if failed:
        raise failed[0]
    return pieces


async def stream_chunks(
    read: ChunkReader, digest: bytes, meta: BlobMeta
) -> AsyncGenerator[bytes, None]:
    """The content ``meta`` names chunk by chunk, each verified before it is yielded."""
    if meta.stored_digests:
        for index in range(meta.chunk_count):
            await anyio.lowlevel.checkpoint()
            yield await read(digest, meta, index)
        return
    hasher = new_hasher(meta.size)
    for index in range(meta.chunk_count):
        await anyio.lowlevel.checkpoint()
        raw = await read(digest, meta, index)
        hasher.update(raw)
        if meta.chunk_count > 1:
            expected = meta.chunk_digests[index * DIGEST_SIZE : (index + 1) * DIGEST_SIZE]
            if digest_of(raw) != expected:
                raise IntegrityError(f"blob {digest.hex()}: chunk {index} is corrupt")
        elif hasher.digest() != digest:
            raise IntegrityError(f"blob {digest.hex()}: content does not match its hash")
        yield raw
    if hasher.digest() != digest:
        raise IntegrityError(f"blob {digest.hex()}: content does not match its hash")
