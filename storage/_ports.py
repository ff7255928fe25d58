"""The two ports a storage backend implements: records and objects.

**Records** (``RecordStore``) are small values under bytewise-sorted ``bytes`` keys: the
index of sessions, journals, versions and references. Writes go through a ``Transaction``:
its reads see what is committed, its puts and deletes are buffered, and ``commit`` applies
them all at once or none of them. A put or delete may carry a condition — the key holds an
``Equals`` value, or is ``ABSENT`` — checked at commit against the state the transaction's
earlier operations leave; if one fails, ``WriteConflictError`` is raised and nothing of the
transaction is written. Reads take no locks (the isolation is optimistic): a write that
depends on what was read carries a condition on it, so two writers never both win a
read-modify-write. A record whose history matters (a counter, a next version) is its own
version: the condition names its old value.

**Objects** (``ObjectStore``) are immutable byte strings under ``str`` keys: blob chunks. A put
is idempotent (satchel names objects by content or by a fresh upload id, so a second put of a
key writes the same bytes); a record naming an object is committed only after the object's
put returned; objects are deleted by a sweep, never while a record may name them.

A local backend (memory, RocksDB) answers without suspending where no I/O waits: a read is a
coroutine that completes at its first step, and so is a commit in ``process`` durability. A
networked backend (PostgreSQL, S3) suspends for its round trips.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from typing import Protocol, final

from satchel.runtime._errors import InvalidArgumentError

from ._kv import INDEX, Batch, Condition, Space, prefix_upper_bound


class RecordReads(Protocol):
    """Reads of committed records."""

    async def get(self, key: bytes, space: Space = INDEX) -> bytes | None:
        """The value of ``key``, or ``None``."""
        ...

    async def get_many(self, keys: Sequence[bytes], space: Space = INDEX) -> list[bytes | None]:
        """The values of ``keys`` in order, ``None`` for each missing key."""
        ...

    async def scan(
        self,
        lower: bytes,
        upper: bytes,
        *,
        space: Space = INDEX,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """Pairs with ``lower <= key < upper`` in key order (descending if ``reverse``), at
        most ``limit`` of them."""
        ...


class RecordStore(RecordReads, Protocol):
    """Records under sorted ``bytes`` keys, written by atomic batches."""

    def transaction(self) -> Transaction:
        """A new transaction on this store (``Transaction(self)``)."""
        ...

    async def write(self, batch: Batch, *, sync: bool | None = None) -> None:
        """Apply every operation of ``batch`` at once, durably as the store is configured;
        ``WriteConflictError`` if one of its conditions failed (nothing applied).
        ``sync=False`` allows a local store to skip its sync: the write may then be lost
        by a crash until a later synced write (blob chunks staged before the commit that
        names them); a networked store commits every write durably."""
        ...

    async def aclose(self) -> None:
        """Release the backend; later calls raise ``StoreClosedError``."""
        ...


@final
class Transaction:
    """Reads of ``store``, then one atomic commit of buffered puts and deletes (see the
    module docstring)."""

    __slots__ = ("_done", "_store", "batch")

    def __init__(self, store: RecordStore) -> None:
        self._store = store
        self.batch = Batch()
        self._done = False

    async def get(self, key: bytes, space: Space = INDEX) -> bytes | None:
        """The committed value of ``key``, or ``None``."""
        return await self._store.get(key, space)

    async def get_many(self, keys: Sequence[bytes], space: Space = INDEX) -> list[bytes | None]:
        """The committed values of ``keys`` in order, ``None`` for each missing key."""
        return await self._store.get_many(keys, space)

    async def scan(
        self,
        lower: bytes,
        upper: bytes,
        *,
        space: Space = INDEX,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """Committed pairs with ``lower <= key < upper`` (see ``RecordReads.scan``)."""
        return await self._store.scan(lower, upper, space=space, reverse=reverse, limit=limit)

    def put(self, key: bytes, value: bytes, *, expect: Condition | None = None) -> None:
        """Set ``key`` to ``value`` at commit (if ``expect`` holds then)."""
        self.batch.put(key, value, expect=expect)

    def delete(self, key: bytes, *, expect: Condition | None = None) -> None:
        """Remove ``key`` at commit, if present (and if ``expect`` holds then)."""
        self.batch.delete(key, expect=expect)

    def delete_range(self, lower: bytes, upper: bytes) -> None:
        """Remove every key ``k`` with ``lower <= k < upper`` at commit."""
        self.batch.delete_range(lower, upper)

    async def commit(self) -> None:
        """Write the buffered operations as one batch (``RecordStore.write``). A transaction
        commits once."""
        if self._done:
            raise InvalidArgumentError("this transaction was committed already")
        self._done = True
        if len(self.batch):
            await self._store.write(self.batch)


class ObjectStore(Protocol):
    """Immutable objects under ``str`` keys (see the module docstring)."""

    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (replacing what a put of the same key left)."""
        ...

    async def get(self, key: str) -> bytes:
        """The object's bytes; ``ObjectNotFoundError`` if there is none."""
        ...

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        """At most ``length`` bytes of the object from offset ``start`` (fewer at its end);
        ``ObjectNotFoundError`` if there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object if it exists."""
        ...

    def list(self, prefix: str = "") -> AsyncIterator[str]:
        """The keys that start with ``prefix``, in ascending order."""
        ...

    async def aclose(self) -> None:
        """Release the backend."""
        ...


async def prefix_pairs(
    reads: RecordReads,
    prefix: bytes,
    *,
    space: Space = INDEX,
    reverse: bool = False,
    limit: int | None = None,
) -> list[tuple[bytes, bytes]]:
    """The pairs whose key starts with ``prefix`` (``RecordReads.scan`` of its range)."""
    upper = prefix_upper_bound(prefix)
    return await reads.scan(prefix, upper, space=space, reverse=reverse, limit=limit)


async def iter_pages(
    reads: RecordReads,
    lower: bytes,
    upper: bytes,
    *,
    space: Space = INDEX,
    reverse: bool = False,
    page: int = 256,
) -> AsyncGenerator[list[tuple[bytes, bytes]], None]:
    """The pairs with ``lower <= key < upper``, a list of up to ``page`` at a time: for a
    caller that may stop early (a filtered query with a limit), so a networked store is
    asked for what is used, in a few round trips; a caller that loops over each page itself
    pays the async iteration once a page, not once a pair."""
    while lower < upper:
        found = await reads.scan(lower, upper, space=space, reverse=reverse, limit=page)
        if found:
            yield found
        if len(found) < page:
            return
        last = found[-1][0]
        if reverse:
            upper = last
        else:
            lower = last + b"\x00"  # the smallest key after ``last``


async def iter_pairs(
    reads: RecordReads,
    lower: bytes,
    upper: bytes,
    *,
    space: Space = INDEX,
    reverse: bool = False,
    page: int = 256,
) -> AsyncGenerator[tuple[bytes, bytes], None]:
    """``iter_pages``, one pair at a time (a reader that may stop early closes it,
    ``contextlib.aclosing``, rather than leave it to the event loop's finalizer)."""
    pages = iter_pages(reads, lower, upper, space=space, reverse=reverse, page=page)
    async with aclosing(pages):
        async for found in pages:
            for pair in found:
                yield pair
