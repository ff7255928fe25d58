"""``check``: compare the blob index with the references and the chunks, and repair.

What it finds, and what ``fix=True`` does about it:

* dangling references — a reference to a blob the index lacks, or held by an owner key that no
  longer exists: the reference is deleted;
* refcount mismatches — a blob whose stored count differs from its references: the count is
  set to the references found (a blob left with none is deleted);
* orphan chunks — chunks that no blob and no upload in flight owns: deleted;
* corrupt blobs — missing chunks, chunks that fail to decode, or content that does not match
  its hash: reported, never "repaired" (the bytes are gone; the report names the blob).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import attrs

from satchel.runtime._errors import IntegrityError

from . import _keys
from ._blob_uploads import free_chunks
from ._blobformat import DATA_ID_SIZE, DIGEST_SIZE, new_hasher, split_chunk_key
from ._blobmeta import META_CODEC, BlobMeta
from ._blobs import BlobStore
from ._kv import BLOBS, Batch
from ._ports import iter_pairs, prefix_pairs

# Above every chunk key (data id + 4-byte index), so one scan covers the blob space.
_END_OF_CHUNKS = b"\xff" * (DATA_ID_SIZE + 5)
#: Chunks read per page of the blob-space scan.
_CHUNK_PAGE = 16


@attrs.frozen
class CheckReport:
    """What ``check`` found; ``fixed`` says whether it also repaired what it could."""

    blobs: int
    references: int
    dangling_references: tuple[str, ...] = ()
    refcount_mismatches: tuple[str, ...] = ()
    orphan_chunks: tuple[str, ...] = ()
    corrupt_blobs: tuple[str, ...] = ()
    fixed: bool = False

    @property
    def clean(self) -> bool:
        """True when nothing at all was found."""
        return not (
            self.dangling_references
            or self.refcount_mismatches
            or self.orphan_chunks
            or self.corrupt_blobs
        )


@attrs.define
class _Scan:
    metas: dict[bytes, BlobMeta] = attrs.Factory(dict)
    refs: Counter[bytes] = attrs.Factory(Counter)
    dangling: list[tuple[bytes, bytes]] = attrs.Factory(list)
    chunks: defaultdict[bytes, set[int]] = attrs.Factory(lambda: defaultdict(set))


async def _scan(store: BlobStore) -> _Scan:
    records = store.records
    found = _Scan()
    for key, value in await prefix_pairs(records, _keys.BLOB):
        found.metas[key[len(_keys.BLOB) :]] = META_CODEC.decode(value)
    start = len(_keys.BLOB_REF)
    for key, _ in await prefix_pairs(records, _keys.BLOB_REF):
        digest, owner = key[start : start + DIGEST_SIZE], key[start + DIGEST_SIZE :]
        if digest in found.metas and await records.get(owner) is not None:
            found.refs[digest] += 1
        else:
            found.dangling.append((digest, owner))
    # Paged: the pairs carry the chunks' bytes, which a list of the whole space would hold.
    async for key, _ in iter_pairs(records, b"", _END_OF_CHUNKS, space=BLOBS, page=_CHUNK_PAGE):
        data_id, index = split_chunk_key(key)
        found.chunks[data_id].add(index)
    return found


async def _marked_since(store: BlobStore, grace_s: float) -> frozenset[bytes]:
    """The uploads marked pending less than ``grace_s`` seconds ago."""
    if grace_s <= 0:
        return frozenset()
    newest = _keys.pending_since(-grace_s)
    start = len(_keys.BLOB_PENDING)
    marks = await prefix_pairs(store.records, _keys.BLOB_PENDING)
    return frozenset(key[start:] for key, since in marks if since > newest)


async def _verify(store: BlobStore, digest: bytes) -> str | None:
    """What is wrong with a blob's chunks, or its content against its name (hashed here
    whatever reads check: a deep check proves the name, not only the stored bytes)."""
    hasher = new_hasher(1 << 20)
    try:
        async for chunk in await store.stream(digest.hex()):
            hasher.update(chunk)
    except IntegrityError as error:
        return str(error)
    if hasher.digest() != digest:
        return f"blob {digest.hex()}: content does not match its hash"
    return None


async def check_blobs(
    store: BlobStore, *, fix: bool = False, deep: bool = True, grace_s: float = 0.0
) -> CheckReport:
    """Compare index, references and chunks of ``store``; see the module docstring.

    ``deep`` reads and hashes every blob; without it only chunk presence is checked. Chunks
    marked pending less than ``grace_s`` seconds ago are in flight, not orphans: on a store
    other processes share, their uploads under way look so (``recover`` spares them too).
    """
    found = await _scan(store)
    repair = Batch()
    cleanup = Batch()
    dangling = [f"blob {d.hex()} referenced by {o!r}" for d, o in found.dangling]
    for digest, owner in found.dangling:
        repair.delete(_keys.ref_key(digest, owner))
    mismatches: list[str] = []
    corrupt: list[str] = []
    owned = {meta.data_id for meta in found.metas.values()}
    for digest, meta in found.metas.items():
        actual = found.refs[digest]
        if actual != meta.refcount:
            mismatches.append(f"blob {digest.hex()} counts {meta.refcount}, has {actual}")
            if actual:
                repair.put(
                    _keys.blob_key(digest), META_CODEC.encode(attrs.evolve(meta, refcount=actual))
                )
            else:
                repair.delete(_keys.blob_key(digest))
                free_chunks(cleanup, meta.data_id)
        present = found.chunks.get(meta.data_id, set())
        if present != set(range(meta.chunk_count)):
            corrupt.append(
                f"blob {digest.hex()}: has chunks {sorted(present)[:8]} of {meta.chunk_count}"
            )
        elif deep and (problem := await _verify(store, digest)) is not None:
            corrupt.append(problem)
    busy = store.uploads_in_flight | await _marked_since(store, grace_s)
    orphans = sorted(set(found.chunks) - owned - busy)
    for data_id in orphans:
        free_chunks(cleanup, data_id)
    if fix:
        if len(repair):
            await store.records.write(repair)
        if len(cleanup):
            await store.records.write(cleanup)
    return CheckReport(
        blobs=len(found.metas),
        references=sum(found.refs.values()),
        dangling_references=tuple(dangling),
        refcount_mismatches=tuple(mismatches),
        orphan_chunks=tuple(f"upload {d.hex()}: {len(found.chunks[d])} chunks" for d in orphans),
        corrupt_blobs=tuple(corrupt),
        fixed=fix,
    )
