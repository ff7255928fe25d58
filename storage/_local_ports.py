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
from ._kv import BLOBS, Batch, KeyValueStore, prefix_upper_bound
from ._overlay import Conditions, Overlay
from ._ports import Condition, Equals, _Absent


def _checked_condition(expect: object) -> Condition | None:
    if expect is None or isinstance(expect, (_Absent, Equals)):
        return expect
    raise InvalidArgumentError(f"expect must be ABSENT or Equals(value), not {expect!r}")


@final
class LocalTransaction:
    """A transaction on a ``LocalRecords`` (see ``Transaction``)."""

    __slots__ = ("_batch", "_conditions", "_done", "_records")

    def __init__(self, records: LocalRecords) -> None:
        self._records = records
        self._batch = Batch()
        self._conditions: Conditions = []
        self._done = False

    async def get(self, key: bytes) -> bytes | None:
        return self._records.kv.get(key)

    async def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        return self._records.kv.get_many(keys)

    async def scan(
        self, lower: bytes, upper: bytes, *, reverse: bool = False, limit: int | None = None
    ) -> list[tuple[bytes, bytes]]:
        return list(self._records.kv.scan(lower, upper, reverse=reverse, limit=limit))

    def _condition(self, expect: Condition | None) -> None:
        condition = _checked_condition(expect)
        if condition is not None:
            self._conditions.append((len(self._batch), condition))

    def put(self, key: bytes, value: bytes, *, expect: Condition | None = None) -> None:
        self._condition(expect)
        self._batch.put(key, value)

    def delete(self, key: bytes, *, expect: Condition | None = None) -> None:
        self._condition(expect)
        self._batch.delete(key)

    def delete_range(self, lower: bytes, upper: bytes) -> None:
        self._batch.delete_range(lower, upper)

    async def commit(self) -> None:
        if self._done:
            raise InvalidArgumentError("this transaction was committed already")
        self._done = True
        if not len(self._batch):
            return
        records = self._records
        if records.group is not None:
            await records.group.write(self._batch, self._conditions or None)
            return
        if self._conditions:
            Overlay(records.kv).apply(self._batch, self._conditions)
        records.kv.write(self._batch)


@final
class LocalRecords:
    """``RecordStore`` over the index space of ``kv``; commits through ``group`` (machine
    durability) when one is given, else written at once with the store's default sync."""

    __slots__ = ("group", "kv")

    def __init__(self, kv: KeyValueStore, group: GroupCommit | None = None) -> None:
        self.kv = kv
        self.group = group

    def transaction(self) -> LocalTransaction:
        return LocalTransaction(self)

    async def get(self, key: bytes) -> bytes | None:
        return self.kv.get(key)

    async def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        return self.kv.get_many(keys)

    async def scan(
        self, lower: bytes, upper: bytes, *, reverse: bool = False, limit: int | None = None
    ) -> list[tuple[bytes, bytes]]:
        return list(self.kv.scan(lower, upper, reverse=reverse, limit=limit))

    async def aclose(self) -> None:
        self.kv.close()


def _object_key(key: str) -> bytes:
    if type(key) is not str or not key:
        raise InvalidArgumentError(f"an object key must be a non-empty str, not {key!r}")
    return key.encode()


@final
class LocalObjects:
    """``ObjectStore`` over the blob space of ``kv``. A put is written without a sync of its
    own: the next synced write of the store (the commit of the record that names it) makes
    it durable first, as a log write does for every write before it."""

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
        lower = prefix.encode()
        # UTF-8 has no 0xff byte: b"\xff" is past every key.
        upper = prefix_upper_bound(lower) if lower else b"\xff"
        for key, _ in self.kv.scan(lower, upper, space=BLOBS):
            yield key.decode()

    async def aclose(self) -> None:
        """The backend is the records' too: closed with them."""
