"""Large blob-space values as objects: a record store and an object store made one.

PostgreSQL keeps records and small values well and large ones badly; an S3 store is the
reverse (a PUT costs milliseconds, whatever its size, up to megabytes). ``SplitRecords`` is a
``RecordStore`` that keeps every index-space record, and every blob-space value under
``large`` bytes, in the record store, and each larger blob-space value as an object, the
record store holding only its name. It is what ``RocksStore`` does with chunk files, over
the two ports instead of a folder.

A store's objects live in a folder of the object store named by a marker record the store
gets on first use (``SplitRecords.open``), so two stores sharing a bucket never sweep each
other's objects, and a store whose blob rows were written without an object store (raw
values, not tagged ones) is refused rather than misread.

Order, as diskcache does it: a write puts its new objects first, then commits the records
that name them, then deletes the objects it superseded (read before the commit, or on
PostgreSQL by the commit's own statement). An object's name is its key (hex),
the time it was made and a random part, so a name is never reused: a put over a large value
writes a new object rather than replace the one a reader may be reading. A process killed
between the put and the commit, or before the deletes, leaves objects no record names;
``sweep`` deletes those once they are older than a grace period (an upload still in flight
is younger than that, and is never collected). A write that fails with ``WriteConflictError``
deletes its new objects at once; one that fails otherwise (the server gone, a cancellation)
may have committed, so its objects are left for ``sweep``. A reader that finds the object of
the row it read deleted by a writer that replaced it reads the row again.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import final

import anyio

from satchel.runtime._errors import (
    InvalidArgumentError,
    ObjectNotFoundError,
    ValidationError,
    WriteConflictError,
)

from ._kv import ABSENT, BLOBS, INDEX, Batch, Space
from ._ports import ObjectStore, RecordStore, Transaction
from ._postgres import PostgresRecords

#: The first byte of a blob-space row: the value follows, or the name of its object does.
_INLINE, _OBJECT = b"\x00", b"\x01"
#: Values from this size on are objects.
LARGE_VALUE = 64 * 1024
#: The record naming the format of a store's blob rows and its objects' folder (hidden from
#: the store's readers).
FORMAT_KEY = b"\x00satchel\x00blob-format"
_FORMAT = b"objects/v1:"
#: Objects put at once by one write.
_PARALLEL_PUTS = 8


def _now_us() -> int:
    return time.time_ns() // 1000


@final
class SplitRecords:
    """``RecordStore`` over ``records``, with blob-space values of ``large`` bytes or more in
    ``objects`` (see the module docstring)."""

    def __init__(
        self,
        records: RecordStore,
        objects: ObjectStore,
        *,
        namespace: str,
        large: int = LARGE_VALUE,
        clock: Callable[[], int] = _now_us,
    ) -> None:
        if not namespace or "/" in namespace:
            raise InvalidArgumentError(f"namespace must be a non-empty name, not {namespace!r}")
        self.records = records
        self.objects = objects
        #: The folder of this store's objects: another store's sweep never sees them.
        self.namespace = namespace
        self.large = large
        self._clock = clock

    @classmethod
    async def open(
        cls, records: RecordStore, objects: ObjectStore, *, large: int = LARGE_VALUE
    ) -> SplitRecords:
        """``records`` with ``objects`` for its large values, as ``records`` was set up the
        first time: its objects' folder is named in a marker record, written on first use.
        A store whose blob values were written without an object store is refused
        (``ValidationError``): its rows are not in this format."""
        marker = await records.get(FORMAT_KEY)
        if marker is None:
            if await records.scan(b"", b"\xff" * 64, space=BLOBS, limit=1):
                raise ValidationError(
                    "this store keeps its blob values in its own rows; it cannot take an "
                    "object store now"
                )
            namespace = secrets.token_hex(8)
            batch = Batch()
            batch.put(FORMAT_KEY, _FORMAT + namespace.encode(), expect=ABSENT)
            try:
                await records.write(batch)
            except WriteConflictError:  # another node made it first: take theirs
                marker = await records.get(FORMAT_KEY)
        if marker is not None:
            if not marker.startswith(_FORMAT):
                raise ValidationError(f"unknown store format {marker!r}")
            namespace = marker[len(_FORMAT) :].decode()
        return cls(records, objects, namespace=namespace, large=large)

    def transaction(self) -> Transaction:
        return Transaction(self)

    # -- reads ---------------------------------------------------------------------------

    async def _value(self, key: bytes, row: bytes | None) -> bytes | None:
        """The value a blob-space row holds or names. A writer that replaced the value may
        have deleted the object between our reads of the row and of the object: then the
        row is read again (a missing object under an unchanged row is an error)."""
        while row is not None and row[:1] == _OBJECT:
            try:
                return await self.objects.get(row[1:].decode())
            except ObjectNotFoundError:
                again = await self.records.get(key, BLOBS)
                if again == row:
                    raise
                row = again
        return None if row is None else row[1:]

    async def get(self, key: bytes, space: Space = INDEX) -> bytes | None:
        if key == FORMAT_KEY:
            return None  # the marker is the store's, not its user's
        row = await self.records.get(key, space)
        return row if space is INDEX else await self._value(key, row)

    async def get_many(self, keys: Sequence[bytes], space: Space = INDEX) -> list[bytes | None]:
        rows = await self.records.get_many(keys, space)
        if space is INDEX:
            return [None if key == FORMAT_KEY else row for key, row in zip(keys, rows, strict=True)]
        return [await self._value(key, row) for key, row in zip(keys, rows, strict=True)]

    async def scan(
        self,
        lower: bytes,
        upper: bytes,
        *,
        space: Space = INDEX,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        if space is INDEX:
            if not lower <= FORMAT_KEY < upper:
                return await self.records.scan(lower, upper, reverse=reverse, limit=limit)
            more = None if limit is None else limit + 1
            pairs = await self.records.scan(lower, upper, reverse=reverse, limit=more)
            return [pair for pair in pairs if pair[0] != FORMAT_KEY][:limit]
        pairs = await self.records.scan(lower, upper, space=space, reverse=reverse, limit=limit)
        found: list[tuple[bytes, bytes]] = []
        for key, row in pairs:
            value = await self._value(key, row)
            if value is not None:  # deleted since the scan read it
                found.append((key, value))
        return found

    # -- writes --------------------------------------------------------------------------

    def _name(self, key: bytes) -> str:
        return f"{self.namespace}/{key.hex()}.{self._clock():016x}.{secrets.token_hex(4)}"

    async def _named_by(self, batch: Batch) -> set[str]:
        """The objects named now by the blob-space rows ``batch`` replaces or deletes."""
        points: list[bytes] = []
        rows: list[bytes | None] = []
        for op, space, key, value in batch.ops:
            if space is not BLOBS:
                continue
            if op == "delete_range":
                assert value is not None
                rows += [row for _, row in await self.records.scan(key, value, space=BLOBS)]
            else:
                points.append(key)
        rows += await self.records.get_many(points, BLOBS)
        return {row[1:].decode() for row in rows if row is not None and row[:1] == _OBJECT}

    async def write(self, batch: Batch, *, sync: bool | None = None) -> None:
        if all(space is INDEX for _, space, _, _ in batch.ops):
            await self.records.write(batch, sync=sync)
            return
        # PostgreSQL reads the rows a batch replaces in its commit: a round trip less.
        reading = isinstance(self.records, PostgresRecords) and not any(
            op == "delete_range" and space is BLOBS for op, space, _, _ in batch.ops
        )
        superseded = set() if reading else await self._named_by(batch)
        rows = Batch()
        uploads: list[tuple[str, bytes]] = []
        for op, space, key, value in batch.ops:
            if op == "put" and space is BLOBS:
                assert value is not None
                if len(value) >= self.large:
                    name = self._name(key)
                    uploads.append((name, value))
                    rows.put(key, _OBJECT + name.encode(), BLOBS)
                else:
                    rows.put(key, _INLINE + value, BLOBS)
            elif op == "put":
                assert value is not None
                rows.put(key, value, space)
            elif op == "delete":
                rows.delete(key, space)
            else:
                assert value is not None
                rows.delete_range(key, value, space)
        rows.conditions = None if batch.conditions is None else list(batch.conditions)
        uploaded = [name for name, _ in uploads]
        try:
            await self._put_all(uploads)
        except BaseException:
            with anyio.CancelScope(shield=True):  # no record names them
                await self._delete_quietly(uploaded)
            raise
        try:
            if isinstance(self.records, PostgresRecords) and reading:
                points = [key for _, space, key, _ in batch.ops if space is BLOBS]
                replaced = await self.records.write_reading(rows, points)
                superseded = {row[1:].decode() for row in replaced if row[:1] == _OBJECT}
            else:
                await self.records.write(rows, sync=sync)
        except WriteConflictError:
            # Certainly not committed: nothing names them. Any other failure (the server
            # gone, a cancellation) may have committed, so they are left for ``sweep``.
            with anyio.CancelScope(shield=True):
                await self._delete_quietly(uploaded)
            raise
        await self._delete_quietly(sorted(superseded))

    async def _put_all(self, uploads: list[tuple[str, bytes]]) -> None:
        if not uploads:
            return  # the common case (small contents go inline): no task group to make
        if len(uploads) == 1:
            await self.objects.put(*uploads[0])
            return
        limiter = anyio.CapacityLimiter(_PARALLEL_PUTS)
        failures: list[Exception] = []

        async def put(name: str, data: bytes) -> None:
            try:
                async with limiter:
                    await self.objects.put(name, data)
            except Exception as error:  # the first one is raised as it is, not in a group
                failures.append(error)
                tasks.cancel_scope.cancel()

        async with anyio.create_task_group() as tasks:
            for name, data in uploads:
                tasks.start_soon(put, name, data)
        if failures:
            raise failures[0]

    async def _delete_quietly(self, names: list[str]) -> None:
        for name in names:
            try:
                await self.objects.delete(name)
            except Exception:  # left for ``sweep``
                continue

    # -- upkeep --------------------------------------------------------------------------

    async def sweep(self, *, grace_s: float = 3600.0) -> int:
        """Delete the objects no record names that are older than ``grace_s`` seconds (so
        never one whose write is still in flight); the number deleted."""
        oldest_kept = self._clock() - int(grace_s * 1_000_000)
        deleted = 0
        folder = f"{self.namespace}/"
        async for name in self.objects.list(folder):
            key_hex, _, rest = name[len(folder) :].partition(".")
            made_hex = rest.partition(".")[0]
            try:
                key, made = bytes.fromhex(key_hex), int(made_hex, 16)
            except ValueError:
                continue  # not one of ours
            if made > oldest_kept:
                continue
            row = await self.records.get(key, BLOBS)
            if row == _OBJECT + name.encode():
                continue
            await self.objects.delete(name)
            deleted += 1
        return deleted

    async def aclose(self) -> None:
        try:
            await self.records.aclose()
        finally:
            await self.objects.aclose()
