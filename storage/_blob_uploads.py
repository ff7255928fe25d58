"""What names a blob, and an upload in progress: the chunks of one blob written as they
arrive under a fresh upload id, marked pending until a commit adopts them (``_blobs``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import attrs

from satchel.runtime._errors import InvalidArgumentError, ValidationError

from . import _keys
from ._blobformat import (
    DIGEST_SIZE,
    BlobLimits,
    Buffer,
    chunk_key,
    digest_of,
    encode_chunk,
    new_data_id,
    new_hasher,
    set_bit,
)
from ._blobmeta import BlobMeta
from ._kv import BLOBS, Batch, prefix_upper_bound
from ._ports import RecordStore

if TYPE_CHECKING:
    from ._blobs import BlobStore


@attrs.frozen
class BlobRef:
    """A stored blob: its BLAKE3 hash (hex), sizes, and how it is kept."""

    hash: str
    size: int
    stored_size: int
    compressed: bool
    chunk_count: int

    @property
    def digest(self) -> bytes:
        """The raw 32-byte BLAKE3 digest."""
        return bytes.fromhex(self.hash)


def ref_for(digest: bytes, meta: BlobMeta) -> BlobRef:
    return BlobRef(
        hash=digest.hex(),
        size=meta.size,
        stored_size=meta.stored_size,
        compressed=any(meta.lz4_map),
        chunk_count=meta.chunk_count,
    )


@attrs.frozen(eq=False)
class StagedBlob:
    """Content that ``put`` hashed (and, when large, wrote) but no record references yet.

    Hand it to ``BlobStore.commit`` to take a reference, or to ``discard`` to drop it.
    """

    ref: BlobRef
    _layout: BlobMeta | None = attrs.field(repr=False)
    _chunks: tuple[bytes, ...] | None = attrs.field(repr=False)
    _content: Buffer | None = attrs.field(repr=False)


BlobLike = StagedBlob | BlobRef | str


def parse_digest(blob: BlobLike) -> bytes:
    """The raw digest named by a staged blob, a ref, or a 64-character hex string."""
    if isinstance(blob, StagedBlob):
        return blob.ref.digest
    if isinstance(blob, BlobRef):
        return blob.digest
    if not isinstance(blob, str):
        raise InvalidArgumentError(f"a blob is named by its hex hash, not {type(blob).__name__}")
    try:
        digest = bytes.fromhex(blob)
    except ValueError:
        digest = b""
    if len(digest) != DIGEST_SIZE:
        raise ValidationError(f"{blob!r} is not a 64-digit hex BLAKE3 hash")
    return digest


class Upload:
    """Chunks of one blob written as they arrive, under a pending upload id."""

    def __init__(
        self,
        records: RecordStore,
        limits: BlobLimits,
        *,
        whole_digest: bytes | None,
        verify: bool = False,
    ):
        """``whole_digest``: the content's digest if already known; with ``verify`` the
        chunks are hashed as they are written anyway and ``finish`` refuses content that
        no longer has that digest (a mutable buffer changed while it was written: reads
        check the stored bytes, not the name, so nothing else would notice)."""
        self.records = records
        self.limits = limits
        self.data_id = new_data_id()
        self.count = 0
        self.size = 0
        self.stored_size = 0
        self.lz4_map = bytearray()
        self.digests = bytearray()
        self.stored_digests = bytearray()
        self.whole_digest = whole_digest
        hashing = whole_digest is None or verify
        self.hasher = new_hasher(limits.chunk_size) if hashing else None

    async def add(self, chunk: Buffer) -> None:
        stored, compressed = encode_chunk(chunk, self.limits)
        batch = Batch()
        if self.count == 0:
            batch.put(_keys.pending_key(self.data_id), _keys.pending_since())
        batch.put(chunk_key(self.data_id, self.count), stored, BLOBS)
        # Not synced: the synced commit that makes the blob live makes its chunks durable too
        # (one write-ahead log), and an upload cut short is only orphan chunks.
        await self.records.write(batch, sync=False)
        if self.hasher is not None:
            self.hasher.update(chunk)
        chunk_digest = digest_of(chunk)
        self.digests += chunk_digest
        # A chunk stored raw is its own stored form: its digest is the one just taken.
        self.stored_digests += digest_of(stored) if compressed else chunk_digest
        if compressed:
            set_bit(self.lz4_map, self.count)
        self.count += 1
        self.size += len(chunk)
        self.stored_size += len(stored)

    async def finish(self) -> tuple[bytes, BlobMeta]:
        if self.count == 0:
            await self.add(b"")
        digest = self.whole_digest if self.hasher is None else self.hasher.digest()
        assert digest is not None
        if self.whole_digest is not None and digest != self.whole_digest:
            raise ValidationError("the content changed while it was being stored")
        meta = BlobMeta(
            size=self.size,
            stored_size=self.stored_size,
            chunk_size=self.limits.chunk_size,
            chunk_count=self.count,
            data_id=self.data_id,
            lz4_map=bytes(self.lz4_map),
            chunk_digests=bytes(self.digests) if self.count > 1 else b"",
            stored_digests=bytes(self.stored_digests),
        )
        return digest, meta


@final
class BlobWriter:
    """One upload in progress; get it from ``BlobStore.writer``."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        self._upload: Upload | None = Upload(store.records, store.limits, whole_digest=None)
        store._uploads.add(self._upload.data_id)
        self._pending = bytearray()

    def _open(self) -> Upload:
        if self._upload is None:
            raise ValidationError("this upload is finished or aborted")
        return self._upload

    @property
    def size(self) -> int:
        """Bytes added so far."""
        upload = self._open()
        return upload.size + len(self._pending)

    async def add(self, piece: Buffer) -> None:
        """Append ``piece``; full chunks are encoded and written now."""
        upload = self._open()
        given: object = piece  # callers outside the type checker pass anything
        if not isinstance(given, bytes | bytearray | memoryview):
            kind = type(given).__name__
            raise InvalidArgumentError(f"a content stream yielded {kind}, not bytes")
        self._store._check_size(self.size + memoryview(piece).nbytes)
        chunk = self._store.limits.chunk_size
        self._pending += piece
        while len(self._pending) >= chunk:
            await upload.add(bytes(self._pending[:chunk]))
            del self._pending[:chunk]

    async def finish(self) -> StagedBlob:
        """The staged blob of everything added, for ``BlobStore.commit`` or ``discard``."""
        upload = self._open()
        if self._pending or upload.count == 0:
            await upload.add(bytes(self._pending))
            self._pending.clear()
        digest, layout = await upload.finish()
        self._upload = None
        return StagedBlob(ref_for(digest, layout), layout=layout, chunks=None, content=None)

    async def abort(self) -> None:
        """Drop what was written (nothing happens if already finished or aborted)."""
        if self._upload is not None:
            await self._store._abort(self._upload.data_id)
            self._upload = None


def free_chunks(batch: Batch, data_id: bytes) -> None:
    """Add to ``batch`` the deletion of every chunk of ``data_id`` and its pending mark."""
    batch.delete_range(chunk_key(data_id, 0), prefix_upper_bound(data_id), BLOBS)
    batch.delete(_keys.pending_key(data_id))
