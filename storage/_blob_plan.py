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

import attrs

from satchel.runtime._errors import BlobNotFoundError, InvalidArgumentError, ValidationError

from . import _keys
from ._blob_uploads import BlobLike, StagedBlob, parse_digest
from ._kv import ABSENT, INDEX, Batch, Equals
from ._ports import RecordStore

#: A value assumed absent (``None``) or present.
Seen = bytes | None


@attrs.define
class CommitPlan:
    """One attempt at a ``commit``: its batch, and what it counted on."""

    #: The caller's batch with the references, counts and chunks.
    batch: Batch = attrs.Factory(Batch)
    #: The references and counts (part of ``batch``).
    own: Batch = attrs.Factory(Batch)
    #: What goes after the batch is in: chunks no blob owns.
    cleanup: Batch = attrs.Factory(Batch)
    #: Records, with the value assumed (``None``: absent), that the batch expects unchanged.
    expected: list[tuple[bytes, bytes | None]] = attrs.Factory(list)
    #: What the plan assumes of every reference and count it looks at, by key.
    read: dict[bytes, Seen] = attrs.Factory(dict)
    #: Whether ``read`` holds guesses (nothing was read): a conflict may be a wrong guess.
    guessed: bool = False
    #: The count record of each blob once the batch is written (``None``: deleted).
    counts: dict[bytes, Seen] = attrs.Factory(dict)
    adopted: list[bytes] = attrs.Factory(list)
    released: list[bytes] = attrs.Factory(list)
    #: Content bytes the batch references anew, and those of them already stored.
    referenced: int = 0
    deduplicated: int = 0


@attrs.frozen
class BlobStatistics:
    """Content bytes referenced by the commits since the store opened, and how many of them
    were stored already (each such reference stored nothing new)."""

    referenced_bytes: int
    deduplicated_bytes: int


@attrs.define
class BlobChange:
    """What one ``commit`` does to one blob."""

    delta: int = 0
    stagings: list[StagedBlob] = attrs.Factory(list)


def wanted_keys(
    add: list[tuple[BlobLike, bytes]], drop: list[tuple[BlobLike, bytes]]
) -> list[bytes]:
    """Every reference and count key a commit of ``add`` and ``drop`` looks at (checking
    the owners)."""
    wanted: dict[bytes, None] = {}
    for item, owner in [*add, *drop]:
        if type(owner) is not bytes or not owner:
            raise InvalidArgumentError("a reference owner must be a non-empty bytes key")
        digest = parse_digest(item)
        wanted[_keys.ref_key(digest, owner)] = None
        wanted[_keys.blob_key(digest)] = None
    return list(wanted)


async def assume(
    records: RecordStore,
    known: dict[bytes, Seen],
    uploads: set[bytes],
    add: list[tuple[BlobLike, bytes]],
    drop: list[tuple[BlobLike, bytes]],
) -> tuple[dict[bytes, Seen], bool]:
    """What a plan takes every reference and count key to hold, and whether that is a
    guess: without a read when each can be told (see the module docstring), else all of
    them read in one ``get_many`` (one round trip on a networked store)."""
    keys = wanted_keys(add, drop)
    values: dict[bytes, Seen] = {}
    for item, owner in add:
        values[_keys.ref_key(parse_digest(item), owner)] = None
    for item, owner in drop:
        values[_keys.ref_key(parse_digest(item), owner)] = b""
    adoptable = {
        item.ref.digest
        for item, _ in add
        if isinstance(item, StagedBlob)
        and item._layout is not None
        and (item._chunks is not None or item._layout.data_id in uploads)
    }
    for item, _ in [*add, *drop]:
        digest = parse_digest(item)
        seen = known.get(digest)
        if seen is None and digest not in adoptable:
            # A count it cannot guess (a blob to reference that it has not seen, or seen
            # gone: it may be stored again since): read everything, as it costs the same.
            return dict(zip(keys, await records.get_many(keys), strict=True)), False
        # Content staged here and not seen stored is new, most likely.
        values[_keys.blob_key(digest)] = seen
    return values, True


def reference(
    plan: CommitPlan, touched: set[bytes], item: BlobLike, owner: bytes, *, taking: bool
) -> bytes:
    """Take (or release) ``owner``'s reference to ``item`` in the plan, expecting it as
    assumed; the blob's digest."""
    digest = parse_digest(item)
    key = _keys.ref_key(digest, owner)
    if key in touched:
        raise ValidationError(f"owner {owner!r} names blob {digest.hex()} twice in a commit")
    touched.add(key)
    held = plan.read[key]
    if taking and held is not None:
        raise ValidationError(f"owner {owner!r} already references blob {digest.hex()}")
    if not taking and held is None:
        raise BlobNotFoundError(f"owner {owner!r} holds no reference to blob {digest.hex()}")
    plan.expected.append((key, held))
    if held is None:
        plan.own.put(key, b"", expect=ABSENT)
    else:
        plan.own.delete(key, expect=Equals(held))
    return digest


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
