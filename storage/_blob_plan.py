"""One attempt at a blob ``commit``: what it reads (every reference and count it looks at,
in one ``get_many``), what it expects of them when it writes, and whether a conflict was its
own. ``BlobStore.commit`` plans, writes, and plans again on a conflict."""

from __future__ import annotations

import attrs
from satchel.runtime._errors import BlobNotFoundError, InvalidArgumentError, ValidationError

from . import _keys
from ._blob_uploads import BlobLike, StagedBlob, parse_digest
from ._kv import ABSENT, Batch, Equals
from ._ports import RecordStore


@attrs.define
class CommitPlan:
    """One attempt at a ``commit``: its batch, and what it counted on."""

    #: The caller's batch with the references, counts and chunks.
    batch: Batch = attrs.Factory(Batch)
    #: The references and counts (part of ``batch``).
    own: Batch = attrs.Factory(Batch)
    #: What goes after the batch is in: chunks no blob owns.
    cleanup: Batch = attrs.Factory(Batch)
    #: Records read, with the value read (``None``: absent), that the batch expects unchanged.
    expected: list[tuple[bytes, bytes | None]] = attrs.Factory(list)
    #: What the plan read: references and counts, by key.
    read: dict[bytes, bytes | None] = attrs.Factory(dict)
    adopted: list[bytes] = attrs.Factory(list)
    released: list[bytes] = attrs.Factory(list)


@attrs.define
class BlobChange:
    """What one ``commit`` does to one blob."""

    delta: int = 0
    stagings: list[StagedBlob] = attrs.Factory(list)


async def read_for(
    records: RecordStore,
    plan: CommitPlan,
    add: list[tuple[BlobLike, bytes]],
    drop: list[tuple[BlobLike, bytes]],
) -> None:
    """Read every reference and count the plan looks at, in one ``get_many`` (one round
    trip on a networked store)."""
    wanted: dict[bytes, None] = {}
    for item, owner in [*add, *drop]:
        if type(owner) is not bytes or not owner:
            raise InvalidArgumentError("a reference owner must be a non-empty bytes key")
        digest = parse_digest(item)
        wanted[_keys.ref_key(digest, owner)] = None
        wanted[_keys.blob_key(digest)] = None
    keys = list(wanted)
    plan.read = dict(zip(keys, await records.get_many(keys), strict=True))


def reference(
    plan: CommitPlan, touched: set[bytes], item: BlobLike, owner: bytes, *, taking: bool
) -> bytes:
    """Take (or release) ``owner``'s reference to ``item`` in the plan, expecting it as read;
    the blob's digest."""
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


async def moved(records: RecordStore, expected: list[tuple[bytes, bytes | None]]) -> bool:
    """Whether a record a plan counted on is no longer as it read it (so the conflict may be
    the plan's, and planning again may succeed)."""
    if not expected:
        return False
    now = await records.get_many([key for key, _ in expected])
    return any(value != seen for (_, seen), value in zip(expected, now, strict=True))
