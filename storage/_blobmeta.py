"""The index record of a blob, and a cache of decoded records."""

from __future__ import annotations

from typing import Any

import attrs

from ._codec import RecordCodec


@attrs.frozen
class BlobMeta:
    """What the index holds for one blob (keyed by its digest)."""

    size: int
    stored_size: int
    chunk_size: int
    chunk_count: int
    data_id: bytes
    lz4_map: bytes
    chunk_digests: bytes
    refcount: int = 0
    #: The BLAKE3 digest of each chunk's stored bytes, 32 bytes a chunk (empty in records
    #: written before version 2). A read verifies these instead of hashing what it
    #: decompressed: LZ4 decoding is deterministic, so stored bytes that match give exactly
    #: the content stored, and compressed bytes are a third of JSON-like content to hash.
    stored_digests: bytes = b""


_INTS = ("size", "stored_size", "chunk_size", "chunk_count", "refcount")
_BYTES = ("data_id", "lz4_map", "chunk_digests", "stored_digests")


def _structure_meta(raw: Any) -> BlobMeta:
    """What cattrs' structure gives for a record of the usual shape (every field there, of
    its exact type), in a fifth of its time: a blob's every read and commit decodes one.
    Raises on anything else, so the codec lets cattrs decide."""
    for name in _INTS:
        if type(raw[name]) is not int:
            raise TypeError(name)
    for name in _BYTES:
        if type(raw[name]) is not bytes:
            raise TypeError(name)
    return BlobMeta(
        raw["size"],
        raw["stored_size"],
        raw["chunk_size"],
        raw["chunk_count"],
        raw["data_id"],
        raw["lz4_map"],
        raw["chunk_digests"],
        raw["refcount"],
        raw["stored_digests"],
    )


META_CODEC = RecordCodec(
    BlobMeta,
    kind="blob",
    version=2,
    upgrades={1: lambda old: {**old, "stored_digests": b""}},
    fast=_structure_meta,
)


class MetaCache:
    """Decoded blob records by their bytes. A dedup store reads a blob's record when it
    stages and when it commits, and the next one reads what that commit wrote: keeping
    what was written (``prime``) and read saves decoding it again."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._decoded: dict[bytes, BlobMeta] = {}

    def decode(self, data: bytes) -> BlobMeta:
        meta = self._decoded.get(data)
        if meta is None:
            meta = META_CODEC.decode(data)
            self.prime(data, meta)
        return meta

    def prime(self, data: bytes, meta: BlobMeta) -> None:
        if len(self._decoded) >= self._size:
            self._decoded.clear()  # cheaper than LRU bookkeeping, and rare
        self._decoded[data] = meta


def with_refcount(meta: BlobMeta, count: int) -> BlobMeta:
    """``meta`` with another reference count (built directly: faster than ``evolve``)."""
    return BlobMeta(
        meta.size,
        meta.stored_size,
        meta.chunk_size,
        meta.chunk_count,
        meta.data_id,
        meta.lz4_map,
        meta.chunk_digests,
        count,
        meta.stored_digests,
    )
