"""The record and object ports over a local key-value backend (memory or RocksDB).

Records live in the index space, objects in the blob space (where RocksDB keeps large values
as chunk files). Nothing here suspends but a commit that waits for its group's fsync: a read
or a ``process``-durability commit runs to its end at its first step, as the synchronous
calls beneath it do, and its conditions are checked and its batch written with no
suspension in between, so no other task's commit comes between the check and the write.
In ``machine`` durability the group commit checks the conditions of each batch when it
writes the group, against the store as the batches ahead of it in the group leave it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import final

from satchel.runtime._errors import InvalidArgumentError, ObjectNotFoundError

from ._group_commit import GroupCommit
from ._kv import BLOBS, INDEX, Batch, KeyValueStore, Space, prefix_upper_bound
from ._ports import Transaction


@final
class LocalRecords:
    """``RecordStore`` over ``kv``; commits through ``group`` (machine durability) when one
    is given, else written at once with the store's default sync."""

    __slots__ = ("group", "kv")

    def __init__(self, kv: KeyValueStore, group: GroupCommit | None = None) -> None:
        self.kv = kv
        self.group = group

    def transaction(self) -> Transaction:
        return Transaction(self)

    async def get(self, key: bytes, space: Space = INDEX) -> bytes | None:
        return self.kv.get(key, space)

    async def get_many(self, keys: Sequence[bytes], space: Space = INDEX) -> list[bytes | None]:
        return self.kv.get_many(keys, space)

    async def scan(
        self,
        lower: bytes,
        upper: bytes,
        *,
        space: Space = INDEX,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        return list(self.kv.scan(lower, upper, space=space, reverse=reverse, limit=limit))

    async def write(self, batch: Batch, *, sync: bool | None = None) -> None:
        if self.group is not None and sync is not False:
            await self.group.write(batch)
        else:
            self.kv.write(batch, sync=sync)

    async def aclose(self) -> None:
        self.kv.close()


#: Where objects live in the blob space, apart from the blob store's chunk keys beside them.
_OBJECTS = b"obj\x00"


def _object_key(key: str) -> bytes:
    if type(key) is not str or not key:
        raise InvalidArgumentError(f"an object key must be a non-empty str, not {key!r}")
    return _OBJECTS + key.encode()


@final
class LocalObjects:
    """``ObjectStore`` over the blob space of ``kv``, under a prefix of its own. A put is
    written without a sync of its own: the next synced write of the store (the commit of
    the record that names it) makes it durable first, as a log write does for every write
    before it."""

    __slots__ = ("kv",)

    def __init__(self, kv: KeyValueStore) -> None:
        self.kv = kv

    async def put(self, key: str, data: bytes) -> None:
        batch = Batch()
        batch.put(_object_key(key), bytes(data), BLOBS)
        self.kv.write(batch, sync=False)

    async def get(self, key: str) -> bytes:
        data = self.kv.get(_object_key(key), BLOBS)
        if data is None:
            raise ObjectNotFoundError(f"no object {key!r}")
        return data

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise InvalidArgumentError("start and length must not be negative")
        return (await self.get(key))[start : start + length]

    async def delete(self, key: str) -> None:
        batch = Batch()
        batch.delete(_object_key(key), BLOBS)
        self.kv.write(batch, sync=False)

    async def list(self, prefix: str = "") -> AsyncIterator[str]:
        lower = _OBJECTS + prefix.encode()
        for key, _ in self.kv.scan(lower, prefix_upper_bound(lower), space=BLOBS):
            yield key[len(_OBJECTS) :].decode()

    async def aclose(self) -> None:
        """The backend is the records' too: closed with them."""
