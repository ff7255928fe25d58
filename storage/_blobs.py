"""The content-addressed blob store: deduplicated, compressed, chunked, reference-counted.

Writing is two steps, as in diskcache: ``put`` hashes the content and (for content larger than
one chunk) writes its chunks under a fresh upload id, marked *pending*; ``commit`` then takes or
drops references in the caller's own batch, together with the caller's records, so a record
and the references it holds change atomically. Chunks that no blob owns any more (a duplicate
upload, a blob whose last reference went) are deleted after that batch is written. A crash at
any point leaves at worst pending chunks, which ``recover`` deletes (awaited once by whoever
opens the store, before the blobs are used).

Reference counts are persisted in the blob's metadata; each reference is also a key of its own
(``bref`` + digest + owner key), so ``check`` can recount them and name their owners. A commit
writes counts and references on the condition that they are as it read them (or, when it can
guess them, as it guessed: ``_blob_plan``), and plans again when another writer got there
first: writers sharing a store (tasks of one process, or processes on PostgreSQL) never lose a
count.
"""

from __future__ import annotations

import copy
import logging
import random
import weakref
from collections.abc import AsyncGenerator, AsyncIterable, Iterable
from typing import final

import anyio
import anyio.lowlevel
import attrs

from satchel.runtime._errors import (
    BlobNotFoundError,
    ContentTooLargeError,
    IntegrityError,
    InvalidArgumentError,
    WriteConflictError,
)

from . import _keys
from ._blob_plan import (
    BlobStatistics,
    CommitPlan,
    Move,
    Seen,
    after_conflict,
    assume,
    moves_of,
    plan_commit,
    plan_one,
    read_all,
)
from ._blob_reads import ChunkGone, read_chunk, read_content, stream_chunks
from ._blob_uploads import (
    BlobLike,
    BlobRef,
    BlobWriter,
    StagedBlob,
    Upload,
    free_chunks,
    parse_digest,
    ref_for,
)
from ._blobformat import (
    MAX_SIZE_HINT,
    BlobLimits,
    Buffer,
    digest_of,
    encode_chunk,
    new_data_id,
    set_bit,
)
from ._blobmeta import BlobMeta, MetaCache
from ._kv import Batch
from ._ports import RecordStore, prefix_pairs

log = logging.getLogger("satchel.storage")


#: Content up to this size is staged inline without asking whether it is stored already.
_ENCODE_UNASKED = 16 * 1024

#: How many times a commit is planned again after other writers changed its counts.
_COMMIT_ATTEMPTS = 16
#: How many blobs' count records a store keeps as last seen (to plan commits without reading).
_KNOWN_MAX = 4096


@final
class BlobStore:
    """Content-addressed blobs in a ``RecordStore``; see the module docstring. Whoever opens
    the store awaits ``recover`` once before using it."""

    def __init__(
        self, records: RecordStore, limits: BlobLimits | None = None, *, parallel_reads: int = 1
    ) -> None:
        self.records = records
        self.limits = limits or BlobLimits()
        #: How many chunk reads of whole reads (``read``) run at once, across the store: more
        #: than one only where a read waits on a server (shared with ``through`` views).
        self.parallel_reads = parallel_reads
        self._read_limiter: list[anyio.CapacityLimiter] = []  # made on first use, in a loop
        self._uploads: set[bytes] = set()
        self._metas = MetaCache()
        #: Content bytes referenced since the store opened, and those already stored
        #: (shared with ``through`` views).
        self._bytes = {"referenced": 0, "deduplicated": 0}
        #: Digests a commit of this process is counting, and the event it sets when done,
        #: made once another commit waits for it (shared with ``through`` views).
        self._committing: dict[bytes, anyio.Event | None] = {}
        #: The count record of each blob as this process last read or wrote it (``None``:
        #: absent), a commit's guess of what is stored (shared with ``through`` views).
        self._known: dict[bytes, Seen] = {}
        #: Stagings whose chunks held in memory a commit has planned (shared with views).
        self._planned: weakref.WeakSet[StagedBlob] = weakref.WeakSet()

    def _fresh(self, moves: list[Move]) -> list[Move]:
        """``moves`` with each staging whose chunks are held in memory, if a commit planned
        it before, replaced by one with a new data id: its first commit may have landed, and
        another writer dropping the blob's last reference may be freeing that id's chunks
        (the first plan of a staging may use its own id: nothing was ever written under it)."""
        planned = self._planned
        for position, (digest, owner, key, item, taking) in enumerate(moves):
            if not (taking and isinstance(item, StagedBlob)) or item._chunks is None:
                continue
            if item in planned:
                layout = item._layout
                assert layout is not None  # held chunks come with their layout
                item = attrs.evolve(item, layout=attrs.evolve(layout, data_id=new_data_id()))
                moves[position] = (digest, owner, key, item, taking)
            else:
                planned.add(item)
        return moves

    def through(self, records: RecordStore) -> BlobStore:
        """This store, reading and writing through ``records`` (a view of the same records,
        such as a session's fenced one): uploads in flight and caches are shared."""
        view = copy.copy(self)
        view.records = records
        return view

    async def recover(self, *, grace_s: float = 0.0) -> None:
        """Delete chunks left pending by a process that stopped mid-upload or mid-free, but
        those marked less than ``grace_s`` seconds ago: on a store other processes share,
        their uploads in flight are pending too (a data folder has one process: 0)."""
        batch = Batch()
        newest = _keys.pending_since(-grace_s)
        for key, since in await prefix_pairs(self.records, _keys.BLOB_PENDING):
            if grace_s > 0 and since > newest:  # (marks from before they had a time: b"")
                continue
            free_chunks(batch, key[len(_keys.BLOB_PENDING) :])
        if len(batch):
            await self.records.write(batch)

    def statistics(self) -> BlobStatistics:
        """Content bytes referenced since the store opened, and how many were stored already."""
        return BlobStatistics(self._bytes["referenced"], self._bytes["deduplicated"])

    @property
    def uploads_in_flight(self) -> frozenset[bytes]:
        """Upload ids whose chunks are written but not yet committed or discarded."""
        return frozenset(self._uploads)

    # -- writing -------------------------------------------------------------------------

    async def put(self, content: Buffer | AsyncIterable[Buffer]) -> StagedBlob:
        """Hash ``content`` (bytes or an async iterator of chunks) and stage it for commit."""
        if isinstance(content, bytes | bytearray | memoryview):
            return await self._put_buffer(content)
        if isinstance(content, AsyncIterable):
            return await self._put_stream(content)
        raise InvalidArgumentError(
            f"blob content must be bytes or an async iterator of bytes, not "
            f"{type(content).__name__}"
        )

    def _check_size(self, size: int) -> None:
        if size > self.limits.max_size:
            raise ContentTooLargeError(
                f"content of {size} bytes or more is over the limit of {self.limits.max_size} "
                f"bytes ({MAX_SIZE_HINT})"
            )

    async def put_inline(self, content: Buffer) -> StagedBlob:
        """``put`` of content no larger than one chunk, without a checkpoint: it is hashed and
        encoded in memory, and nothing is written before ``commit`` (on a local store it
        completes at its first step)."""
        staged = self.put_small(content)
        if staged is not None:
            return staged
        view = memoryview(content).cast("B")
        if view.nbytes > self.limits.chunk_size:
            raise InvalidArgumentError(
                f"put_inline takes at most one chunk ({self.limits.chunk_size} bytes), "
                f"not {view.nbytes}"
            )
        self._check_size(view.nbytes)
        digest = digest_of(view)
        return self._staged(content, view, digest, await self.load_meta(digest))

    def put_small(self, content: Buffer) -> StagedBlob | None:
        """``put_inline`` of content up to 16 KiB (``None`` for larger), which is not looked
        up (a round trip when the store is networked): taken as stored if this process last
        saw it so, else encoded; ``commit`` finds the blob either way."""
        view = memoryview(content).cast("B")
        if view.nbytes > _ENCODE_UNASKED or view.nbytes > self.limits.chunk_size:
            return None
        self._check_size(view.nbytes)
        digest = digest_of(view)
        seen = self._known.get(digest)
        meta = None if seen is None else self._metas.decode(seen)
        return self._staged(content, view, digest, meta)

    def _staged(
        self, content: Buffer, view: memoryview, digest: bytes, meta: BlobMeta | None
    ) -> StagedBlob:
        """Content held in memory staged: by its hash if stored (``meta``), else encoded."""
        if meta is not None:
            # Keep an immutable copy: the caller may reuse a bytearray before commit, and this
            # content is written under ``digest`` if the stored blob goes away meanwhile.
            held = content if type(content) is bytes else bytes(view)
            return StagedBlob(ref_for(digest, meta), layout=None, chunks=None, content=held)
        layout, chunks = self._encode_whole(content if type(content) is bytes else view, digest)
        return StagedBlob(ref_for(digest, layout), layout=layout, chunks=chunks, content=None)

    async def _put_buffer(self, content: Buffer) -> StagedBlob:
        view = memoryview(content).cast("B")
        self._check_size(view.nbytes)
        await anyio.lowlevel.checkpoint()
        if view.nbytes <= self.limits.chunk_size:
            return self.put_small(view) or await self.put_inline(view)
        digest = digest_of(view)
        meta = await self.load_meta(digest)
        if meta is not None:
            held = content if type(content) is bytes else bytes(view)
            return StagedBlob(ref_for(digest, meta), layout=None, chunks=None, content=held)
        return await self._upload_buffer(view, digest)

    async def _put_stream(self, source: AsyncIterable[Buffer]) -> StagedBlob:
        writer = self.writer()
        try:
            async for piece in source:
                await writer.add(piece)
                await anyio.lowlevel.checkpoint()
            return await writer.finish()
        except BaseException:
            with anyio.CancelScope(shield=True):  # a cancelled upload still deletes its chunks
                await writer.abort()
            if isinstance(source, AsyncGenerator):
                # Finalize the caller's generator now, not whenever the GC gets to it.
                with anyio.CancelScope(shield=True):
                    await source.aclose()
            raise

    def writer(self) -> BlobWriter:
        """A blob written piece by piece: ``add`` each piece, then ``finish`` (or ``abort``).

        Full chunks are written as they fill, under a pending mark, so a process that stops
        mid-upload leaves nothing that the next open does not remove.
        """
        return BlobWriter(self)

    async def _upload_buffer(self, view: memoryview, digest: bytes) -> StagedBlob:
        # A buffer the caller can change (a bytearray) is hashed again as it is written.
        upload = Upload(self.records, self.limits, whole_digest=digest, verify=not view.readonly)
        self._uploads.add(upload.data_id)
        size = self.limits.chunk_size
        try:
            for start in range(0, view.nbytes, size):
                await upload.add(view[start : start + size])
                await anyio.lowlevel.checkpoint()
            digest, layout = await upload.finish()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._abort(upload.data_id)
            raise
        return StagedBlob(ref_for(digest, layout), layout=layout, chunks=None, content=None)

    def _encode_whole(
        self, content: bytes | memoryview, digest: bytes
    ) -> tuple[BlobMeta, tuple[bytes, ...]]:
        """Encode content held in memory (whose digest is ``digest``) into chunks, for
        writing inside a commit."""
        size = self.limits.chunk_size
        total = len(content) if type(content) is bytes else memoryview(content).nbytes
        if total <= size:
            # One chunk (every small store): what the loop below makes of it, built directly.
            stored, compressed = encode_chunk(content, self.limits)
            layout = BlobMeta(
                total,
                len(stored),
                size,
                1,
                new_data_id(),
                b"\x01" if compressed else b"",
                b"",
                0,
                digest_of(stored) if compressed else digest,
            )
            return layout, (stored,)
        view = memoryview(content)
        pieces = [view[start : start + size] for start in range(0, total, size)]
        lz4_map = bytearray()
        digests = bytearray()
        stored_digests = bytearray()
        chunks: list[bytes] = []
        for index, piece in enumerate(pieces):
            stored, compressed = encode_chunk(piece, self.limits)
            chunks.append(stored)
            if compressed:
                set_bit(lz4_map, index)
            piece_digest = digest_of(piece)
            digests += piece_digest
            stored_digests += digest_of(stored) if compressed else piece_digest
        layout = BlobMeta(
            size=total,
            stored_size=sum(map(len, chunks)),
            chunk_size=size,
            chunk_count=len(chunks),
            data_id=new_data_id(),
            lz4_map=bytes(lz4_map),
            chunk_digests=bytes(digests),
            stored_digests=bytes(stored_digests),
        )
        return layout, tuple(chunks)

    async def discard(self, staged: StagedBlob) -> None:
        """Drop a staged blob that will not be committed (deletes chunks it wrote)."""
        layout = staged._layout
        if layout is not None and layout.data_id in self._uploads:
            await self._abort(layout.data_id)

    async def _abort(self, data_id: bytes) -> None:
        batch = Batch()
        free_chunks(batch, data_id)
        await self.records.write(batch, sync=False)
        # Only now: until its chunks are gone, the upload stays in flight for ``check``.
        self._uploads.discard(data_id)

    async def commit(
        self,
        batch: Batch,
        *,
        add: Iterable[tuple[BlobLike, bytes]] = (),
        drop: Iterable[tuple[BlobLike, bytes]] = (),
        sync: bool | None = None,
    ) -> None:
        """Write ``batch`` with references taken (``add``) and released (``drop``) by owners.

        An owner is the index key of the record that holds the reference; it must be written
        in the same batch (or exist already), so ``check`` can tell a live reference from a
        dangling one. Raises before anything is written if a reference is taken twice by one
        owner, released by an owner that does not hold it, or taken on a blob that is gone.

        Counts and references are written on the condition that they are as read, or as
        guessed without reading (``_blob_plan.assume``): a commit that guessed wrong, or that
        another writer's (another task's, or another process's on a shared store) got ahead
        of, is planned again from what is stored then. A conflict on the caller's own
        conditions is raised (``WriteConflictError``) with nothing written.
        """
        moves = self._fresh(moves_of(add, drop))
        digests = [moves[0][0]] if len(moves) == 1 else sorted({move[0] for move in moves})
        committing = self._committing
        if committing and not committing.keys().isdisjoint(digests):
            await self._hold(digests)
        else:
            for digest in digests:  # none is another commit's: no need to wait
                committing[digest] = None
        try:
            plan = None
            if len(moves) == 1:
                seen = self._known.get(digests[0])
                plan = plan_one(batch, moves[0], seen, self._metas, self._uploads)
            if plan is None:
                read = assume(self._known, self._uploads, moves)
                guessed = read is not None
                if read is None:
                    read = await read_all(self.records, moves)
                plan = self._plan(batch, moves, read, guessed)
            for attempt in range(1, _COMMIT_ATTEMPTS + 1):
                try:
                    await self.records.write(plan.batch, sync=sync)
                except WriteConflictError:
                    # A guess was wrong, another writer got there first, or a condition of
                    # the caller's failed: one read tells (and is what to plan from again).
                    now = (
                        None
                        if attempt == _COMMIT_ATTEMPTS
                        else await after_conflict(self.records, plan, batch)
                    )
                    if now is None:
                        self._forget(digests)
                        raise
                    self._learn(digests, now)
                    if not plan.guessed:
                        # Another process's commit got there first: let its next ones by too.
                        await anyio.sleep(random.uniform(0, min(0.05, 0.0005 * 2**attempt)))
                    plan = self._plan(batch, moves, now, False)
                    continue
                except BaseException:
                    self._forget(digests)  # it may have been written: the counts are unknown
                    raise
                self._after(plan)
                if plan.cleanup is not None:
                    await self._clean_up(plan.cleanup)
                return
        finally:
            self._let_go(digests)

    def _plan(
        self, batch: Batch, moves: list[Move], read: dict[bytes, Seen], guessed: bool
    ) -> CommitPlan:
        return plan_commit(
            batch, moves, read, guessed, self._metas, self._uploads, self._encode_whole
        )

    def _after(self, plan: CommitPlan) -> None:
        """Keep what a written ``plan`` leaves: counts, statistics, uploads in flight."""
        self._remember(plan.counts)
        self._bytes["referenced"] += plan.referenced
        self._bytes["deduplicated"] += plan.deduplicated
        if plan.adopted:
            self._uploads.difference_update(plan.adopted)
        if plan.released:
            self._uploads.difference_update(plan.released)

    def _remember(self, counts: dict[bytes, Seen]) -> None:
        if len(self._known) + len(counts) > _KNOWN_MAX:
            self._known.clear()  # guesses: losing them costs a read each
        self._known.update(counts)

    def _learn(self, digests: list[bytes], stored: dict[bytes, Seen]) -> None:
        self._remember({d: stored[k] for d in digests if (k := _keys.blob_key(d)) in stored})

    def _forget(self, digests: list[bytes]) -> None:
        for digest in digests:
            self._known.pop(digest, None)

    async def _hold(self, digests: list[bytes]) -> None:
        """Wait until no other commit of this process counts any of ``digests``, and mark
        them as this one's (in order: two commits never wait for each other). Without it,
        commits of one content from many sessions would each conflict with the others."""
        held: list[bytes] = []
        try:
            committing = self._committing
            for digest in digests:
                while digest in committing:
                    busy = committing[digest]
                    if busy is None:
                        busy = committing[digest] = anyio.Event()
                    await busy.wait()
                committing[digest] = None
                held.append(digest)
        except BaseException:
            self._let_go(held)
            raise

    def _let_go(self, digests: list[bytes]) -> None:
        for digest in digests:
            waited = self._committing.pop(digest)
            if waited is not None:
                waited.set()

    async def _clean_up(self, cleanup: Batch) -> None:
        """Free the chunks a committed batch left to no blob. The batch is in: a failure
        here must not read as "nothing written" to the caller (whose journal and counters
        moved on), so it is logged; the chunks stay marked pending, and ``check(fix=True)``
        (or ``gc``) frees them, as after a crash."""
        try:
            await self.records.write(cleanup, sync=False)
        except Exception as error:
            log.warning("freeing unused chunks failed (check(fix=True) frees them): %s", error)

    # -- reading -------------------------------------------------------------------------

    async def load_meta(self, digest: bytes) -> BlobMeta | None:
        """The index record of the blob with ``digest``, or ``None``."""
        data = await self.records.get(_keys.blob_key(digest))
        self._remember({digest: data})
        return None if data is None else self._metas.decode(data)

    async def _require(self, blob: BlobLike) -> tuple[bytes, BlobMeta]:
        digest = parse_digest(blob)
        meta = await self.load_meta(digest)
        if meta is None:
            raise BlobNotFoundError(f"blob {digest.hex()} is not stored")
        return digest, meta

    async def info(self, blob: BlobLike) -> BlobRef | None:
        """The ref of a stored blob, or ``None`` if no blob has that hash."""
        digest = parse_digest(blob)
        meta = await self.load_meta(digest)
        return None if meta is None else ref_for(digest, meta)

    async def references(self, blob: BlobLike) -> list[bytes]:
        """The owner keys that hold a reference to ``blob``."""
        prefix = _keys.BLOB_REF + parse_digest(blob)
        return [key[len(prefix) :] for key, _ in await prefix_pairs(self.records, prefix)]

    async def read(self, blob: BlobLike, *, referenced: bool = False) -> bytes:
        """The whole content of ``blob``, verified against its hash (or, in records that
        keep them, each chunk's stored bytes against theirs).

        ``referenced``: the caller has just read a record holding a reference to the blob (an
        artifact version), so the blob's record as this process last saw it is used unread
        (a round trip less on a networked store): a data id is never given twice, and what
        its chunks hold is checked against that record. A chunk gone sends the read to the
        record, which tells a blob released (``BlobNotFoundError``) or stored again meanwhile
        (read whole) from damage (``IntegrityError``)."""
        digest = parse_digest(blob)
        seen = self._known.get(digest) if referenced else None
        if seen is not None:
            await anyio.lowlevel.checkpoint()
            try:
                meta = self._metas.decode(seen)
                return await read_content(
                    self._read_chunk, digest, meta, True, limiter=self._limiter()
                )
            except ChunkGone:
                self._known.pop(digest, None)
        digest, meta = await self._require(blob)
        await anyio.lowlevel.checkpoint()
        try:
            return await read_content(self._read_chunk, digest, meta, True, limiter=self._limiter())
        except ChunkGone as gone:
            # Released since the record was read (or released and stored again), or damaged.
            now = await self.load_meta(digest)
            if now is None:
                raise BlobNotFoundError(f"blob {digest.hex()} is not stored") from None
            if now.data_id == meta.data_id:
                raise IntegrityError(
                    f"blob {digest.hex()}: chunk {gone.index} is missing"
                ) from None
            return await read_content(self._read_chunk, digest, now, limiter=self._limiter())

    async def stream(self, blob: BlobLike) -> AsyncGenerator[bytes, None]:
        """The content of ``blob`` chunk by chunk, each verified before it is yielded (a
        blob that is not stored raises here, before the first chunk)."""
        digest, meta = await self._require(blob)
        return self._stream(digest, meta)

    def _limiter(self) -> anyio.CapacityLimiter | None:
        """The limiter of the store's parallel chunk reads, ``None`` where they run one at a
        time."""
        if self.parallel_reads <= 1:
            return None
        if not self._read_limiter:
            self._read_limiter.append(anyio.CapacityLimiter(self.parallel_reads))
        return self._read_limiter[0]

    # The store's seams for reading chunks (``_blob_reads``): one place to watch its reads.
    def _stream(self, digest: bytes, meta: BlobMeta) -> AsyncGenerator[bytes, None]:
        return stream_chunks(self._read_chunk, digest, meta)

    async def _read_chunk(
        self, digest: bytes, meta: BlobMeta, index: int, guessed: bool = False
    ) -> bytes:
        return await read_chunk(self.records, digest, meta, index, guessed)
