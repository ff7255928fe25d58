"""An in-memory backend with the same semantics as RocksDB, for tests and throwaway runtimes."""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from typing import final

from satchel.runtime._errors import StoreClosedError

from ._kv import INDEX, Batch, Space
from ._overlay import check_conditions


class _SortedSpace:
    """A dict for values plus a sorted key list for ordered scans."""

    __slots__ = ("keys", "values")

    def __init__(self) -> None:
        self.values: dict[bytes, bytes] = {}
        self.keys: list[bytes] = []

    def put(self, key: bytes, value: bytes) -> None:
        if key not in self.values:
            bisect.insort(self.keys, key)
        self.values[key] = value

    def delete(self, key: bytes) -> None:
        if self.values.pop(key, None) is not None:
            del self.keys[bisect.bisect_left(self.keys, key)]

    def delete_range(self, lower: bytes, upper: bytes) -> None:
        start = bisect.bisect_left(self.keys, lower)
        stop = bisect.bisect_left(self.keys, upper)
        for key in self.keys[start:stop]:
            del self.values[key]
        del self.keys[start:stop]


@final
class MemoryStore:
    """A ``KeyValueStore`` held in this process's memory; nothing survives ``close``."""

    def __init__(self) -> None:
        self._spaces: dict[Space, _SortedSpace] | None = {s: _SortedSpace() for s in Space}
        self.sync_writes = 0
        self.default_sync = False

    def _space(self, space: Space) -> _SortedSpace:
        if self._spaces is None:
            raise StoreClosedError("the memory store is closed")
        return self._spaces[space]

    def get(self, key: bytes, space: Space = INDEX) -> bytes | None:
        """The value of ``key``, or ``None``."""
        return self._space(space).values.get(key)

    def get_many(self, keys: Sequence[bytes], space: Space = INDEX) -> list[bytes | None]:
        """The values of ``keys`` in order, ``None`` for each missing key."""
        values = self._space(space).values
        return [values.get(key) for key in keys]

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
        target = self._space(space)
        start = bisect.bisect_left(target.keys, lower)
        stop = bisect.bisect_left(target.keys, upper)
        if reverse:
            low = start if limit is None else max(start, stop - limit)
            keys = target.keys[low:stop][::-1]
        else:
            high = stop if limit is None else min(stop, start + limit)
            keys = target.keys[start:high]
        # Values are copied now, as a RocksDB iterator reads from the state at its creation.
        return iter([(key, target.values[key]) for key in keys])

    def write(self, batch: Batch, *, sync: bool | None = None) -> None:
        """Apply every operation of ``batch`` (validated when it was built) atomically, if
        its conditions hold."""
        self._space(INDEX)
        if batch.conditions:
            check_conditions(self, batch)  # WriteConflictError before anything is applied
        for op, space, key, value in batch.ops:
            target = self._space(space)
            if op == "put":
                assert value is not None
                target.put(key, value)
            elif op == "delete":
                target.delete(key)
            else:
                assert value is not None
                target.delete_range(key, value)
        if self.default_sync if sync is None else sync:
            self.sync_writes += 1

    def compact(self) -> None:
        """Nothing to reclaim: deleted keys are gone at once."""
        self._space(Space.INDEX)  # a closed store still refuses

    def close(self) -> None:
        """Drop every key; later calls raise ``StoreClosedError``."""
        self._spaces = None
