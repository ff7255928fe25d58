"""The key-value protocol every backend implements, and the batch that makes writes atomic.

Keys and values are ``bytes``; keys sort bytewise. A backend has two key spaces: ``INDEX`` for
small records and ``BLOBS`` for blob chunks, so a backend can tune each (RocksDB keeps them in
separate column families). Reads are synchronous and fast (microseconds); callers on the Trio
loop call them inline, as platform measurements showed a thread hop costs more than the read.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, TypeAlias, final

import attrs

from satchel.runtime._errors import InvalidArgumentError


class Space(enum.Enum):
    """A key space of a backend."""

    INDEX = "index"
    BLOBS = "blobs"


INDEX = Space.INDEX
BLOBS = Space.BLOBS

#: ("put", space, key, value) | ("delete", space, key, None) | ("delete_range", space, lo, hi)
Op: TypeAlias = tuple[str, Space, bytes, bytes | None]


@final
class _Absent:
    """The condition that a key holds no value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


#: The condition that a key holds no value.
ABSENT = _Absent()


@attrs.frozen
class Equals:
    """The condition that a key holds exactly ``value``."""

    value: bytes


#: What a conditional put or delete expects of its key.
Condition: TypeAlias = _Absent | Equals
#: (op index, condition): the condition holds just before the batch's op at that index.
Conditions: TypeAlias = list[tuple[int, Condition]]


def _require_bytes(name: str, value: object) -> None:
    if type(value) is not bytes:
        raise InvalidArgumentError(f"{name} must be bytes, not {type(value).__name__}")


class Batch:
    """Puts and deletes that a backend applies all together or not at all.

    A put or delete of a record (index space) may carry a condition (``expect``): the
    backend checks it as it writes the batch, against the state the batch's earlier
    operations leave, and if one fails it raises ``WriteConflictError`` and writes none of
    the batch."""

    __slots__ = ("_ops", "conditions")

    def __init__(self) -> None:
        self._ops: list[Op] = []
        #: The conditions of the batch, ``None`` while it has none.
        self.conditions: Conditions | None = None

    def _expect(self, expect: object, space: Space) -> None:
        if not isinstance(expect, (_Absent, Equals)):
            raise InvalidArgumentError(f"expect must be ABSENT or Equals(value), not {expect!r}")
        if space is not INDEX:
            raise InvalidArgumentError("conditions apply to records (the index space) only")
        if self.conditions is None:
            self.conditions = []
        self.conditions.append((len(self._ops), expect))

    @property
    def size(self) -> int:
        """Bytes of keys and values in the batch (what a group commit bounds)."""
        return sum(len(key) + len(value or b"") for _, _, key, value in self._ops)

    def put(
        self, key: bytes, value: bytes, space: Space = INDEX, *, expect: Condition | None = None
    ) -> None:
        """Set ``key`` to ``value`` when the batch is written (if ``expect`` holds then)."""
        # Checked inline: batches of secondary-index puts sit on every write path.
        if type(key) is not bytes or type(value) is not bytes:
            _require_bytes("key", key)
            _require_bytes("value", value)
        if expect is not None:
            self._expect(expect, space)
        self._ops.append(("put", space, key, value))

    def put_all(self, pairs: Iterable[tuple[bytes, bytes]], space: Space = INDEX) -> None:
        """``put`` of each ``(key, value)`` of ``pairs``, in order, with no condition: one
        call for the many index entries of a bulk write (a fork copies thousands)."""
        ops = [("put", space, key, value) for key, value in pairs]
        for _, _, key, value in ops:
            if type(key) is not bytes or type(value) is not bytes:
                _require_bytes("key", key)
                _require_bytes("value", value)
        self._ops += ops

    def delete(self, key: bytes, space: Space = INDEX, *, expect: Condition | None = None) -> None:
        """Remove ``key`` (if present) when the batch is written (if ``expect`` holds then)."""
        if type(key) is not bytes:
            _require_bytes("key", key)
        if expect is not None:
            self._expect(expect, space)
        self._ops.append(("delete", space, key, None))

    def delete_range(self, lower: bytes, upper: bytes, space: Space = INDEX) -> None:
        """Remove every key ``k`` with ``lower <= k < upper`` when the batch is written."""
        _require_bytes("lower", lower)
        _require_bytes("upper", upper)
        if lower < upper:
            # RocksDB accepts an inverted range in a batch and then fails at flush.
            self._ops.append(("delete_range", space, lower, upper))

    def extend(self, other: Batch) -> None:
        """Append the operations (and conditions) of ``other``, in order, to this batch."""
        if other.conditions:
            offset = len(self._ops)
            moved = [(index + offset, condition) for index, condition in other.conditions]
            self.conditions = (self.conditions or []) + moved
        self._ops.extend(other._ops)

    @classmethod
    def joined(cls, parts: Sequence[Batch]) -> Batch:
        """One batch of the operations (and conditions) of ``parts``, in order."""
        joined = cls()
        ops = joined._ops
        for part in parts:
            if part.conditions:
                offset = len(ops)
                moved = [(index + offset, condition) for index, condition in part.conditions]
                joined.conditions = (joined.conditions or []) + moved
            ops += part._ops
        return joined

    @property
    def ops(self) -> Sequence[Op]:
        """The operations, in the order they were added (later ones win)."""
        return self._ops

    def __len__(self) -> int:
        return len(self._ops)


class KeyValueStore(Protocol):
    """What satchel needs of a storage backend."""

    def get(self, key: bytes, space: Space = INDEX) -> bytes | None:
        """The value of ``key``, or ``None``."""
        ...

    def get_many(self, keys: Sequence[bytes], space: Space = INDEX) -> list[bytes | None]:
        """The values of ``keys`` in order, ``None`` for each missing key."""
        ...

    def scan(
        self,
        lower: bytes,
        upper: bytes,
        *,
        space: Space = INDEX,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Pairs with ``lower <= key < upper`` in key order (descending if ``reverse``)."""
        ...

    #: What ``write`` does when ``sync`` is not given: ``True`` in ``machine`` durability.
    default_sync: bool

    def write(self, batch: Batch, *, sync: bool | None = None) -> None:
        """Apply every operation of ``batch`` atomically, if its conditions hold
        (``WriteConflictError`` otherwise); ``sync`` waits for stable storage
        (``None``: the store's ``default_sync``; ``False`` for writes a later synced write
        makes durable, such as blob chunks staged before their commit)."""
        ...

    def compact(self) -> None:
        """Reclaim the space of deleted and overwritten keys now (a no-op where none is held)."""
        ...

    def close(self) -> None:
        """Release the backend; later calls raise ``StoreClosedError``."""
        ...


def prefix_upper_bound(prefix: bytes) -> bytes:
    """The smallest key greater than every key that starts with ``prefix``.

    Raises ``ValueError`` for an empty or all-``0xff`` prefix, which has no such bound.
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        raise ValueError("a prefix of only 0xff bytes has no upper bound")
    return stripped[:-1] + bytes([stripped[-1] + 1])


def scan_prefix(
    kv: KeyValueStore,
    prefix: bytes,
    *,
    space: Space = INDEX,
    reverse: bool = False,
    limit: int | None = None,
) -> Iterator[tuple[bytes, bytes]]:
    """Pairs whose key starts with ``prefix``."""
    return kv.scan(prefix, prefix_upper_bound(prefix), space=space, reverse=reverse, limit=limit)
