"""Group commit: the writes of many sessions made durable by one synced WriteBatch.

In ``machine`` durability every acknowledged write must be on stable storage, and one fsync
costs 100 to 150 µs here. Writers hand their batch to ``GroupCommit.write`` and wait; a flusher
task lets one scheduler pass go by (every writer runnable now joins), merges what waits —
up to ``max_writes`` batches and ``max_bytes`` bytes — into one batch, writes it with
``sync=True``, and releases its writers. Writers arriving meanwhile form the next group, so
none waits more than one group behind. The merged batch is one RocksDB WriteBatch: it lands
whole or not at all, and a failure fails every writer in it with the error.
"""

from __future__ import annotations

from typing import Literal, final

import attrs
import trio

from satchel._errors import StoreWriteFailedError, ValidationError

from ._kv import Batch, KeyValueStore

Durability = Literal["process", "machine"]
DURABILITIES: tuple[Durability, ...] = ("process", "machine")


def checked_durability(value: object) -> Durability:
    """``value`` if it names a durability mode; ``ValidationError`` otherwise."""
    if value not in DURABILITIES:
        raise ValidationError(f"durability must be 'process' or 'machine', not {value!r}")
    return value


@attrs.frozen
class GroupCommitStatistics:
    """What the group commit did since it started."""

    durability: Durability
    writes: int
    groups: int
    largest_group: int
    failed_groups: int


@final
class _Waiter:
    __slots__ = ("batch", "done", "error")

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.done = trio.Event()
        self.error: BaseException | None = None


@final
class GroupCommit:
    """Synced writes of many writers, one fsync per group (see the module docstring)."""

    def __init__(
        self, kv: KeyValueStore, *, max_writes: int = 1024, max_bytes: int = 16 << 20
    ) -> None:
        self._kv = kv
        self.max_writes = max_writes
        self.max_bytes = max_bytes
        self._waiting: list[_Waiter] = []
        self._wake = trio.Event()
        self._writes = 0
        self._groups = 0
        self._largest = 0
        self._failed = 0

    async def write(self, batch: Batch) -> None:
        """Return once ``batch`` is written and synced (with the group it joined); raise
        ``StoreWriteFailedError`` if that group failed, in which case none of it was written."""
        waiter = _Waiter(batch)
        self._waiting.append(waiter)
        self._wake.set()
        await waiter.done.wait()
        if waiter.error is not None:
            failure = waiter.error
            raise StoreWriteFailedError(f"the synced write failed: {failure!r}") from failure

    async def run(self) -> None:
        """The flusher: forever, one group per pass (run it as a system task)."""
        while True:
            await self._wake.wait()
            # One scheduler pass: writers made runnable by now enqueue before the group closes.
            await trio.lowlevel.checkpoint()
            self._flush(self._take())
            if not self._waiting:
                self._wake = trio.Event()

    def _take(self) -> list[_Waiter]:
        group: list[_Waiter] = []
        size = 0
        for waiter in self._waiting:
            if group and (len(group) >= self.max_writes or size >= self.max_bytes):
                break
            group.append(waiter)
            size += waiter.batch.size
        del self._waiting[: len(group)]
        return group

    def _flush(self, group: list[_Waiter]) -> None:
        merged = Batch()
        for waiter in group:
            merged.extend(waiter.batch)
        try:
            self._kv.write(merged, sync=True)
        except Exception as error:
            self._failed += 1
            for waiter in group:
                waiter.error = error
        self._writes += len(group)
        self._groups += 1
        self._largest = max(self._largest, len(group))
        for waiter in group:
            waiter.done.set()

    def statistics(self) -> GroupCommitStatistics:
        """Counters since the start."""
        return GroupCommitStatistics(
            "machine", self._writes, self._groups, self._largest, self._failed
        )
