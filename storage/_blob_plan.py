"""One attempt at a blob ``commit``: what it assumes of every reference and count it looks
at, what it expects of them when it writes, and whether a conflict was its own.
``BlobStore.commit`` plans, writes, and plans again on a conflict.

A plan does not read what it can tell (``assume``): a reference an owner takes is new (its
owner is a record being written), one it releases is there, and a count is the one this
process last read or wrote for that content, or absent for content staged here that this
process has not seen stored. Every one is written on the condition that it is as assumed,
so a wrong guess fails the write whole (``WriteConflictError``), and the commit reads them
all then (``after_conflict``) and plans again from what is stored: a new content costs no
read, a content stored by another process (or deleted) one more round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

from satchel.runtime._errors import BlobNotFoundError, InvalidArgumentError, ValidationError

from . import _keys
from ._blob_uploads import BlobLike, StagedBlob, free_chunks, parse_digest
from ._blobformat import chunk_key
from ._blobmeta import META_CODEC, BlobMeta, MetaCache, with_refcount
from ._kv import ABSENT, BLOBS, INDEX, Batch, Condition, Equals
from ._ports import RecordStore

#: A value assumed absent (``None``) or present.
Seen = bytes | None
#: A reference a commit takes or releases: the blob's digest, the owner's key, the
#: reference's key, what names the blob, and whether the owner takes it.
Move = tuple[bytes, bytes, bytes, BlobLike, bool]
#: Encodes content held in memory (with its digest) into a blob's record and chunks.
Encoder = Callable[[memoryview, bytes], tuple[BlobMeta, tuple[bytes, ...]]]


class CommitPlan:
    """One attempt at a ``commit``: its batch, and what it counted on."""

    __slots__ = (
        "adopted",
        "batch",
        "cleanup",
        "counts",
        "deduplicated",
        "guessed",
        "read",
        "referenced",
        "released",
    )

    #: The caller's batch with the references, counts and chunks (once planned).
    batch: Batch

    def __init__(self, read: dict[bytes, Seen], guessed: bool) -> None:
        #: What goes after the batch is in: chunks no blob owns (``None`` while none).
        self.cleanup: Batch | None = None
        #: What the plan assumes of every reference and count it looks at, by key.
        self.read = read
        #: Whether ``read`` holds guesses (nothing was read): a conflict may be a wrong guess.
        self.guessed = guessed
        #: The count record of each blob once the batch is written (``None``: deleted).
        self.counts: dict[bytes, Seen] = {}
        #: Upload ids the batch makes a blob's, and those whose chunks ``cleanup`` frees.
        self.adopted: list[bytes] = []
        self.released: list[bytes] = []
        #: Content bytes the batch references anew, and those of them already stored.
        self.referenced = 0
        self.deduplicated = 0

    def freeing(self) -> Batch:
        """``cleanup``, made if there is none yet."""
        if self.cleanup is None:
            self.cleanup = Batch()
        return self.cleanup


@attrs.frozen
class BlobStatistics:
    """Content bytes referenced by the commits since the store opened, and how many of them
    were stored already (each such reference stored nothing new)."""

    referenced_bytes: int
    deduplicated_bytes: int


def moves_of(
    add: Iterable[tuple[BlobLike, bytes]], drop: Iterable[tuple[BlobLike, bytes]]
) -> list[Move]:
    """The references a commit takes (``add``) and releases (``drop``), owners checked."""
    moves: list[Move] = []
    for pairs, taking in ((add, True), (drop, False)):
        for item, owner in pairs:
            if type(owner) is not bytes or not owner:
                raise InvalidArgumentError("a reference owner must be a non-empty bytes key")
            digest = parse_digest(item)
            moves.append((digest, owner, _keys.ref_key(digest, owner), item, taking))
    return moves


def assume(
    known: dict[bytes, Seen], uploads: set[bytes], moves: list[Move]
) -> dict[bytes, Seen] | None:
    """What a plan takes every reference and count key to hold, guessed without a read
    (see the module docstring); ``None`` if one count cannot be told (``read_all``)."""
    values: dict[bytes, Seen] = {}
    for _, _, key, _, taking in moves:
        values[key] = None if taking else b""
    adoptable: set[bytes] | None = None
    for digest, _, _, _, _ in moves:
        seen = known.get(digest)
        if seen is None:
            if adoptable is None:
                adoptable = {
                    item.ref.digest
                    for _, _, _, item, taking in moves
                    if taking
                    and isinstance(item, StagedBlob)
                    and item._layout is not None
                    and (item._chunks is not None or item._layout.data_id in uploads)
                }
            if digest not in adoptable:
                # A count it cannot guess (a blob to reference that it has not seen, or seen
                # gone: it may be stored again since): read everything, as it costs the same.
                return None
            # Content staged here and not seen stored is new, most likely.
        values[_keys.blob_key(digest)] = seen
    return values


async def read_all(records: RecordStore, moves: list[Move]) -> dict[bytes, Seen]:
    """Every reference and count key of ``moves`` as stored, in one ``get_many`` (one round
    trip on a networked store)."""
    wanted: dict[bytes, None] = {}
    for digest, _, key, _, _ in moves:
        wanted[key] = None
        wanted[_keys.blob_key(digest)] = None
    keys = list(wanted)
    return dict(zip(keys, await records.get_many(keys), strict=True))


def plan_one(
    batch: Batch, move: Move, seen: Seen, metas: MetaCache, uploads: set[bytes]
) -> CommitPlan | None:
    """The plan of a commit of ``move`` alone, taking a reference on a blob whose count was
    last seen as ``seen`` here, as ``assume`` and ``plan_commit`` make it, in fewer steps
    (every artifact store makes one); ``None`` if it is another kind: one they plan."""
    digest, _, key, item, taking = move
    if not taking:
        return None
    count_key = _keys.blob_key(digest)
    layout, held = (item._layout, item._chunks) if isinstance(item, StagedBlob) else (None, None)
    if seen is not None:
        if layout is not None and layout.data_id in uploads:
            return None  # an upload of content stored already: its chunks go (plan_commit)
        meta = metas.decode(seen)
        condition: Condition = Equals(seen)
    elif layout is not None and (layout.data_id in uploads or held is not None):
        meta, condition = layout, ABSENT  # content staged here, taken to be new
    else:
        return None  # a count it cannot guess: read (assume)
    commit = CommitPlan({key: None, count_key: seen}, True)
    planned = Batch()  # chunks of content new here first, as plan_commit puts them
    pending = None
    if seen is None:
        assert layout is not None
        if layout.data_id in uploads:
            pending = _keys.pending_key(layout.data_id)
        else:
            assert held is not None
            for index, data in enumerate(held):
                planned.put(chunk_key(layout.data_id, index), data, BLOBS)
        commit.adopted.append(layout.data_id)
    else:
        commit.deduplicated = meta.size
    planned.extend(batch)
    planned.put(key, b"", expect=ABSENT)
    if pending is not None:
        planned.delete(pending)
    commit.referenced = meta.size
    counted = with_refcount(meta, meta.refcount + 1)
    encoded = META_CODEC.encode(counted)
    planned.put(count_key, encoded, expect=condition)
    metas.prime(encoded, counted)
    commit.counts[digest] = encoded
    commit.batch = planned
    return commit


def plan_commit(
    batch: Batch,
    moves: list[Move],
    read: dict[bytes, Seen],
    guessed: bool,
    metas: MetaCache,
    uploads: set[bytes],
    encode: Encoder,
) -> CommitPlan:
    """The batch that writes ``batch`` with the references and counts as ``read`` has them
    (read, or guessed: ``assume``), each expected so; ``uploads``: the store's in flight."""
    commit = CommitPlan(read, guessed)
    own = Batch()  # the references and counts
    deltas: dict[bytes, int] = {}
    stagings: dict[bytes, list[StagedBlob]] = {}
    touched: set[bytes] = set()
    for digest, owner, key, item, taking in moves:
        if key in touched:
            raise ValidationError(f"owner {owner!r} names blob {digest.hex()} twice in a commit")
        touched.add(key)
        held = read[key]
        if held is None:
            if not taking:
                raise BlobNotFoundError(
                    f"owner {owner!r} holds no reference to blob {digest.hex()}"
                )
            own.put(key, b"", expect=ABSENT)
        else:
            if taking:
                raise ValidationError(f"owner {owner!r} already references blob {digest.hex()}")
            own.delete(key, expect=Equals(held))
        deltas[digest] = deltas.get(digest, 0) + (1 if taking else -1)
        if taking and isinstance(item, StagedBlob):
            stagings.setdefault(digest, []).append(item)
    chunks: Batch | None = None
    for digest, delta in deltas.items():
        staged = stagings.get(digest, [])
        chunks = _count(commit, own, chunks, digest, delta, staged, metas, uploads, encode)
    # Chunks of fresh data ids (no other op in the batch names them) go first: a store
    # reading the batch in order then meets the blob space at once, rather than after
    # building a batch of index operations only to start over.
    commit.batch = Batch.joined((batch, own) if chunks is None else (chunks, batch, own))
    return commit


def _count(
    commit: CommitPlan,
    own: Batch,
    chunks: Batch | None,
    digest: bytes,
    delta: int,
    stagings: list[StagedBlob],
    metas: MetaCache,
    uploads: set[bytes],
    encode: Encoder,
) -> Batch | None:
    """Write the count of one blob, changed by ``delta``, in ``own``, adopting a staging's
    data for a blob not stored (its chunks, if held in memory, put in ``chunks``: made if
    ``None``)."""
    key = _keys.blob_key(digest)
    stored = commit.read[key]
    winner: bytes | None = None
    if stored is None:
        meta, held = _adopt(own, digest, stagings, uploads, encode)
        if held is not None:
            if chunks is None:
                chunks = Batch()
            for index, data in enumerate(held):
                chunks.put(chunk_key(meta.data_id, index), data, BLOBS)
        winner = meta.data_id
        commit.adopted.append(winner)
    else:
        meta = metas.decode(stored)
    for staged in stagings:
        layout = staged._layout
        if layout is None or layout.data_id == winner or layout.data_id not in uploads:
            continue
        # A second upload of bytes that are already stored: its chunks go.
        free_chunks(commit.freeing(), layout.data_id)
        commit.released.append(layout.data_id)
    if delta > 0:
        commit.referenced += meta.size * delta
        commit.deduplicated += meta.size * (delta - (stored is None))
    condition = ABSENT if stored is None else Equals(stored)
    count = meta.refcount + delta
    if count > 0:
        counted = with_refcount(meta, count)
        encoded = META_CODEC.encode(counted)
        own.put(key, encoded, expect=condition)
        metas.prime(encoded, counted)
        commit.counts[digest] = encoded
    else:
        own.delete(key, expect=condition)
        commit.counts[digest] = None
        own.put(_keys.pending_key(meta.data_id), _keys.pending_since())
        free_chunks(commit.freeing(), meta.data_id)
    return chunks


def _adopt(
    own: Batch, digest: bytes, stagings: list[StagedBlob], uploads: set[bytes], encode: Encoder
) -> tuple[BlobMeta, tuple[bytes, ...] | None]:
    """The data of one staging made the blob's, for a blob the index does not hold yet,
    and its chunks if they are held in memory (to write with the commit)."""
    for staged in stagings:
        layout = staged._layout
        if layout is not None and layout.data_id in uploads:
            own.delete(_keys.pending_key(layout.data_id))
            return layout, None
    for staged in stagings:
        if staged._layout is not None and staged._chunks is not None:
            return staged._layout, staged._chunks
    for staged in stagings:
        if staged._content is not None:
            return encode(memoryview(staged._content).cast("B"), digest)
    raise BlobNotFoundError(f"blob {digest.hex()} is not stored (it may have been deleted)")


def _callers_conditions(batch: Batch) -> list[tuple[bytes, Seen]] | None:
    """The keys the caller's ``batch`` writes on a condition, with the value each expects
    (``None``: absent); ``None`` if one of them is written earlier in the batch (what it
    expects then is not what is stored)."""
    if not batch.conditions:
        return []
    conditions = dict(batch.conditions)
    written: set[bytes] = set()
    found: list[tuple[bytes, Seen]] = []
    for index, (op, space, key, _) in enumerate(batch.ops):
        if space is not INDEX:
            continue
        if op == "delete_range":
            return None
        condition = conditions.get(index)
        if condition is not None:
            if key in written:
                return None
            found.append((key, condition.value if isinstance(condition, Equals) else None))
        written.add(key)
    return found


async def after_conflict(
    records: RecordStore, plan: CommitPlan, batch: Batch
) -> dict[bytes, Seen] | None:
    """What every key the failed ``plan`` assumed holds now, to plan again from, if the
    conflict may be the plan's; ``None`` if it is the caller's (a condition of its ``batch``
    fails now, or none of the plan's records moved while the caller's conditions cannot be
    told: with them all holding now, the plan's records changed and changed back). One
    ``get_many`` of the plan's keys and the caller's conditioned ones."""
    callers = _callers_conditions(batch)
    mine = list(plan.read)
    theirs = [key for key, _ in callers or ()]
    now = await records.get_many([*mine, *theirs])
    stored = dict(zip(mine, now, strict=False))
    if callers is not None:
        for (_, expected), value in zip(callers, now[len(mine) :], strict=True):
            if value != expected:
                return None
    if callers is None and all(stored[key] == seen for key, seen in plan.read.items()):
        return None
    return stored
