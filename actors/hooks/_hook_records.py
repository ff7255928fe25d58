"""The hooks package's repository over the record port: its scheduled replays and their runs
(``_schedule_layout``), read and written by what they are, not by their keys. What the
package reads of other concepts goes through theirs: a session's record and journal through
``SessionRecords``, a session's artifact versions through ``ArtifactRecords``.
"""

from __future__ import annotations

from satchel.storage import Batch, RecordStore, prefix_pairs, prefix_upper_bound

from .. import _validate as validate
from . import _schedule_layout as layout
from ._schedule_layout import ReplayRun, ScheduledReplay, StoredRun


class HookRecords:
    """The schedules and runs in one store.

    Promises: each read is one call of the port; each write method writes one batch, whole
    or not at all; ``add_*`` methods only put operations into a caller's batch.
    """

    __slots__ = ("_records",)

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    # -- schedules ------------------------------------------------------------------------

    async def schedule(self, schedule_id: str) -> ScheduledReplay | None:
        """The schedule ``schedule_id``, if it is kept."""
        raw = await self._records.get(layout.schedule_key(schedule_id))
        return None if raw is None else layout.SCHEDULE_CODEC.decode(raw)

    async def schedules(self) -> list[ScheduledReplay]:
        """Every schedule kept, in id order."""
        pairs = await prefix_pairs(self._records, layout.SCHEDULE)
        return [layout.SCHEDULE_CODEC.decode(v) for _, v in pairs]

    async def keep(self, replay: ScheduledReplay) -> None:
        """Store (or replace) a schedule."""
        batch = Batch()
        batch.put(layout.schedule_key(replay.id), layout.SCHEDULE_CODEC.encode(replay))
        await self._records.write(batch)

    async def forget(self, schedule_id: str) -> bool:
        """Delete a schedule and its runs; whether it existed."""
        key = layout.schedule_key(schedule_id)
        existed = await self._records.get(key) is not None
        runs = layout.runs_prefix(schedule_id)
        batch = Batch()
        batch.delete(key)
        batch.delete_range(runs, prefix_upper_bound(runs))
        await self._records.write(batch)
        return existed

    async def add_session_removal(self, batch: Batch, session_id: str) -> None:
        """Add the removal of session ``session_id``'s schedules and their runs to ``batch``
        (one scan of every schedule)."""
        for key, value in await prefix_pairs(self._records, layout.SCHEDULE):
            if layout.SCHEDULE_CODEC.decode(value).session_id == session_id:
                runs = layout.RUN + key[len(layout.SCHEDULE) :]
                batch.delete(key)
                batch.delete_range(runs, prefix_upper_bound(runs))

    # -- runs -----------------------------------------------------------------------------

    async def has_run(self, schedule_id: str) -> bool:
        """Whether a run of the schedule is kept."""
        return bool(await prefix_pairs(self._records, layout.runs_prefix(schedule_id), limit=1))

    async def runs(self, schedule_id: str) -> list[ReplayRun]:
        """The kept runs of a schedule, oldest first."""
        found = []
        for _, value in await prefix_pairs(self._records, layout.runs_prefix(schedule_id)):
            s = layout.RUN_CODEC.decode(value)
            found.append(
                ReplayRun(
                    schedule_id,
                    validate.stored_datetime(s.ran_us, "a replay run record"),
                    s.events_replayed,
                    s.hooks_replayed,
                    s.matched,
                    s.mismatched,
                    s.error,
                )
            )
        return found

    async def keep_run(self, schedule_id: str, run: StoredRun, kept: int) -> None:
        """Keep one run (and only the newest ``kept`` runs, it among them; ``kept`` > 1)."""
        prefix = layout.runs_prefix(schedule_id)
        batch = Batch()
        batch.put(prefix + layout.U64.pack(run.ran_us), layout.RUN_CODEC.encode(run))
        # The new run and the newest kept - 1 before it stay.
        newest = await prefix_pairs(self._records, prefix, reverse=True, limit=kept - 1)
        older = [key for key, _ in newest]
        if len(older) == kept - 1:
            batch.delete_range(prefix, older[-1])
        await self._records.write(batch)
