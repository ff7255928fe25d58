"""Group commit: the writes of many sessions made durable by one synced WriteBatch.

In ``machine`` durability every acknowledged write must be on stable storage, and one fsync
costs 150 to 200 µs here. A writer hands its batch to ``GroupCommit.write`` and waits. The
first writer to find no group forming leads one: it lets scheduler passes go by while writers
join (see ``_lead``), merges what waits — up to ``max_writes`` batches and
``max_bytes`` bytes — into one batch, writes it with ``sync=True`` and releases the group's
writers, then leads the next group if writers are still waiting. The fsync runs inline and
holds the event loop, so no writer arrives while it runs: none waits for more than the
groups already queued ahead of it, and a lone writer pays no thread hop (rocksdict lets go of
the GIL while it writes, but every writer waits on the group in flight, so a worker thread
measured no better for 100 writers and ~0.1 ms worse for one). Waiting is not cancellable
(see ``GroupCommit.write``). The merged batch is one RocksDB WriteBatch: it lands whole or not
at all, and a failure fails every writer in it with the error (an interrupt also fails those
queued behind it, and goes up the leader).
"""

from __future__ import annotations

from typing import Literal, final

import attrs

from satchel.runtime import Native, Parker, current_native
from satchel.runtime._errors import StoreWriteFailedError, ValidationError, WriteConflictError

from ._kv import Batch, KeyValueStore
from ._overlay import Overlay

Durability = Literal["process", "machine"]
DURABILITIES: tuple[Durability, ...] = ("process", "machine")
#: Scheduler passes a group waits for joiners at most (it stops at the first that adds none).
_MAX_PASSES = 3
#: Groups in a row that may skip their passes because no other task could join (``_lead``):
#: a pass is also where the loop polls for I/O, which a lone writer must not put off long.
_MAX_SKIPS = 3


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
    __slots__ = ("batch", "error", "parker")

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.parker: Parker | None = None  # set while it waits for a leader
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
        self._last_group = 0  # writers in the last group written
        self._skipped = 0  # groups in a row written without a scheduler pass
        self._leading = False
        # The loop's primitives, found on the first write: a runtime runs on one loop.
        self._native: Native | None = None
        self._writes = 0
        self._groups = 0
        self._largest = 0
        self._failed = 0

    async def write(self, batch: Batch) -> None:
        """Return once ``batch`` is written and synced (with the group it joined); raise
        ``StoreWriteFailedError`` if that group failed, in which case none of it was written.
        The batch's conditions are checked when the group is written, against the store as
        the batches ahead in the group leave it: ``WriteConflictError`` if one fails (the
        batch is left out of the group).

        Not cancellable: a batch handed over is written (or failed) with its group, so the
        turn that wrote it is never cut between its change and its reply. The wait is at
        most one group.
        """
        loop = self._native
        if loop is None:
            loop = self._native = current_native()
        if not self._leading and self._skipped < _MAX_SKIPS and loop.alone():
            # A lone writer, no group forming and nobody to gather (see ``_lead``): written
            # at once, without the group's bookkeeping.
            self._skipped += 1
            self._write_alone(batch)
            return
        waiter = _Waiter(batch)
        self._waiting.append(waiter)
        if self._leading:
            waiter.parker = parker = loop.parker()
            await parker.park()
        else:
            await self._lead(loop)
        if waiter.error is not None:
            failure = waiter.error
            if isinstance(failure, WriteConflictError):
                raise failure
            raise StoreWriteFailedError(f"the synced write failed: {failure!r}") from failure

    def _write_alone(self, batch: Batch) -> None:
        """``_flush`` of a group of one, ``batch``, raising as ``write`` does."""
        self._writes += 1
        self._groups += 1
        self._largest = max(self._largest, 1)
        self._last_group = 1
        try:
            self._kv.write(batch, sync=True)
        except BaseException as error:
            self._failed += 1  # (a conflict too, as ``_flush`` counts it)
            if isinstance(error, Exception) and not isinstance(error, WriteConflictError):
                raise StoreWriteFailedError(f"the synced write failed: {error!r}") from error
            raise

    async def _lead(self, loop: Native) -> None:
        self._leading = True
        try:
            # Scheduler passes while writers keep joining (at most a few): every writer
            # runnable by then joins. After a group of several, at least two passes: Trio may
            # run a batch in either order, so the previous group's writers, released into the
            # same batch as this leader's first pass, can all come after it. (Where the loop
            # tells that no other task can run before a pass ends, ``Native.alone``: asyncio
            # with nothing ready, a pass would gather nobody: ``write`` writes a lone writer
            # at once, ~7 µs less, its fsync leaving the caches cold; but not many in a row,
            # so that the loop still polls for I/O between them, and then a leader comes.)
            self._skipped = 0
            joined = len(self._waiting)
            at_least = 2 if self._last_group > 1 else 1
            for passes in range(1, _MAX_PASSES + 1):
                await loop.uncancellable_pass()
                if len(self._waiting) == joined and passes >= at_least:
                    break
                joined = len(self._waiting)
            while self._waiting:  # the writes and fsyncs hold the loop: nobody joins now
                self._flush(self._take())
        except BaseException as error:
            # KeyboardInterrupt and the like, on its way up the leader: the writers still
            # queued fail with it (their waits are uncancellable, and no leader would come).
            self._release(self._waiting, error)
            self._waiting = []
            raise
        finally:
            self._leading = False

    def _take(self) -> list[_Waiter]:
        group: list[_Waiter] = []
        if len(self._waiting) == 1:  # a lone writer: no bound to apply
            group, self._waiting = self._waiting, group
            return group
        size = 0
        for waiter in self._waiting:
            if group and (len(group) >= self.max_writes or size >= self.max_bytes):
                break
            group.append(waiter)
            size += waiter.batch.size
        del self._waiting[: len(group)]
        return group

    def _checked(self, group: list[_Waiter]) -> list[_Waiter]:
        """The writers of ``group`` whose conditions hold; the others fail with the conflict."""
        overlay = Overlay(self._kv)
        passed: list[_Waiter] = []
        for waiter in group:
            try:
                overlay.apply(waiter.batch)
            except WriteConflictError as conflict:
                waiter.error = conflict
                self._release([waiter], conflict)
            else:
                passed.append(waiter)
        return passed

    def _flush(self, group: list[_Waiter]) -> None:
        failure: BaseException | None = None
        try:
            if len(group) > 1 and any(waiter.batch.conditions for waiter in group):
                group = self._checked(group)  # reads: a failure fails the whole group
            if len(group) == 1:
                merged = group[0].batch  # written as it is: a write does not change it
            else:
                merged = Batch()
                for waiter in group:
                    merged.extend(waiter.batch)
            if group:
                self._kv.write(merged, sync=True)
        except BaseException as error:
            failure = error
            self._failed += 1
            if not isinstance(error, Exception):
                raise  # after the group is released (below); the write failed with it
        finally:
            self._writes += len(group)
            self._groups += 1
            self._largest = max(self._largest, len(group))
            self._last_group = len(group)
            self._release(group, failure)

    @staticmethod
    def _release(waiters: list[_Waiter], failure: BaseException | None) -> None:
        """Wake the writers waiting on ``waiters`` (the leader's own has no task), failed
        with ``failure`` if it is set."""
        for waiter in waiters:
            if waiter.error is None:  # a conflict found first stays the writer's error
                waiter.error = failure
            if waiter.parker is not None:
                waiter.parker.unpark()

    def statistics(self) -> GroupCommitStatistics:
        """Counters since the start."""
        return GroupCommitStatistics(
            "machine", self._writes, self._groups, self._largest, self._failed
        )
