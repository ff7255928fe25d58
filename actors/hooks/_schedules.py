"""Scheduled replays: once at a time, or every interval, run by the replays actor.

A schedule is a record in the store and a durable kernel reminder of the replays actor, both
written when it is made, so schedules survive restarts (one that fell due while the runtime
was closed runs when it opens; missed repeats are coalesced into one run). Each run's summary
is kept, the newest ``KEPT_RUNS`` per schedule. A schedule whose session is gone is dropped
the next time it fires.

On a cluster the reminder lives in the table the nodes share: whichever node takes a period
runs it, in its own replays actor (a replay reads the journal, whichever node serves the
session), once across the cluster — again only if that node died before it was done, and a
one-shot schedule that ran already is not run again.
"""

from __future__ import annotations

import builtins
import math
import os
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import attrs

from satchel.runtime import Actor, ActorRef, ReminderFired, Supervisor
from satchel.runtime._errors import InvalidArgumentError, SessionNotFoundError, ValidationError
from satchel.storage import Batch, RecordStore

from .. import _validate as validate
from ..sessions._session_records import SessionRecords
from ._hook_records import HookRecords
from ._replay import mode_of
from ._schedule_layout import PREFIX, StoredRun, id_bytes
from ._schedule_layout import ReplayRun as ReplayRun  # where callers import them from
from ._schedule_layout import ScheduledReplay as ScheduledReplay

if TYPE_CHECKING:
    from ..sessions._manager import SessionManager

REPLAYS_KIND = "replays"
REPLAYS_ID = "scheduled"
KEPT_RUNS = 100
_US = 1_000_000


@attrs.frozen
class Schedule:
    """Make a schedule (the replays actor stores it and sets its reminder)."""

    replay: ScheduledReplay


@attrs.frozen
class Unschedule:
    """Drop a schedule and its reminder; answers whether it existed."""

    schedule_id: str


async def record_run(
    records: HookRecords, schedule_id: str, ran_us: int, found: Any, error: str | None
) -> None:
    """Keep one run's summary (and only the newest ``KEPT_RUNS``)."""
    stored = StoredRun(
        ran_us,
        getattr(found, "events_replayed", 0),
        getattr(found, "hooks_replayed", 0),
        getattr(found, "matched", 0),
        getattr(found, "mismatched", 0),
        error,
    )
    await records.keep_run(schedule_id, stored, KEPT_RUNS)


async def drop_for_session(records: RecordStore, batch: Batch, session_id: str) -> None:
    """Add the removal of a deleted session's schedules and their runs to ``batch`` (their
    reminders find nothing to run and cancel themselves)."""
    await HookRecords(records).add_session_removal(batch, session_id)


#: The shortest interval of a repeating replay, unless the runtime sets another.
MIN_EVERY_S = 1.0


class Replays:
    """``rt.replays``: replays run later, once or every interval, with their results kept."""

    def __init__(
        self,
        records: RecordStore,
        supervisor: Supervisor,
        actor: ActorRef,
        min_every_s: float = MIN_EVERY_S,
    ) -> None:
        self._records = records
        self._schedules = HookRecords(records)
        self._supervisor = supervisor
        self._actor = actor
        #: The shortest interval a schedule may repeat at.
        self.min_every_s = min_every_s

    async def schedule(
        self,
        session_id: str,
        *,
        when: float | datetime | str | None = None,
        every_s: float | None = None,
        mode: str = "simulate",
        at: int | None = None,
        modifications: Mapping[str, Any] | None = None,
        compare_results: bool = True,
    ) -> str:
        """Replay ``session_id`` at ``when`` (default: now), then every ``every_s`` seconds
        if given; the schedule's id."""
        session_id, sid = validate.session_id(session_id)
        if not await SessionRecords(self._records).has_record(sid):
            raise SessionNotFoundError(f"Session not found: {session_id}")
        mode_of(mode)
        if every_s is not None and not (
            isinstance(every_s, int | float) and self.min_every_s <= every_s < math.inf
        ):
            raise ValidationError(
                f"every_s must be a number of seconds from {self.min_every_s:g} (the runtime's "
                f"min_replay_interval_s), not {every_s!r}"
            )
        if at is not None and (type(at) is not int or at < 1):
            raise InvalidArgumentError(f"at must be a journal sequence (>= 1), not {at!r}")
        pins = dict(modifications or {})
        for key in pins:
            validate.state_key(key)
        validate.json_like("modifications", pins)
        now = self._supervisor.clock()
        due = now if when is None else validate.micros("when", when) / _US
        schedule_id = PREFIX + os.urandom(16).hex()
        replay = ScheduledReplay(
            schedule_id, session_id, mode, at, pins, compare_results, due, every_s
        )
        await self._actor.ask(Schedule(replay))
        return schedule_id

    async def cancel(self, schedule_id: str) -> bool:
        """Stop a schedule (its kept results go too); whether it existed."""
        id_bytes(schedule_id)
        existed: bool = await self._actor.ask(Unschedule(schedule_id))
        return existed

    async def list(self, session_id: str | None = None) -> builtins.list[ScheduledReplay]:
        """Every schedule (of one session, if given)."""
        found = await self._schedules.schedules()
        if session_id is not None:
            session_id = validate.session_id(session_id)[0]
            found = [s for s in found if s.session_id == session_id]
        await anyio.lowlevel.checkpoint()
        return found

    async def results(self, schedule_id: str) -> builtins.list[ReplayRun]:
        """The kept runs of a schedule, oldest first."""
        runs = await self._schedules.runs(schedule_id)
        await anyio.lowlevel.checkpoint()
        return runs


def describe(error: BaseException) -> str:
    """An error as a run keeps it."""
    return f"{getattr(error, 'kind', type(error).__name__)}: {error}"


class ReplayActor(Actor[Any]):
    """Runs scheduled replays (its own actor, so a long replay, or a replayed hook that
    reports to the collectors, never holds up or waits on the hook actor)."""

    def __init__(self, sessions: SessionManager, records: RecordStore) -> None:
        self._sessions = sessions
        self._records = HookRecords(records)

    async def receive(self, message: Any) -> Any:
        """Keep, drop or run a schedule."""
        if isinstance(message, ReminderFired):
            return await self._run(message.name)
        if isinstance(message, Schedule):
            await self._records.keep(message.replay)
            replay = message.replay
            await self.context.set_reminder(replay.id, at=replay.due, every=replay.every_s)
            return None
        if isinstance(message, Unschedule):
            await self.context.cancel_reminder(message.schedule_id)
            return await self._records.forget(message.schedule_id)
        raise TypeError(f"the replays actor takes no {type(message).__name__}")

    async def _run(self, schedule_id: str) -> None:
        replay = await self._records.schedule(schedule_id)
        if replay is None:
            await self.context.cancel_reminder(schedule_id)  # left by a cancelled schedule
            return
        if replay.every_s is None and await self._records.has_run(schedule_id):
            # Ran already: its reminder fired again (the node that ran it died before the
            # reminder was done with).
            return
        ran_us = round(self.context.now() * _US)
        try:
            found = await self._sessions.replay(
                replay.session_id,
                mode=replay.mode,
                at=replay.at,
                modifications=replay.modifications,
                compare_results=replay.compare_results,
            )
        except SessionNotFoundError:
            await self.context.cancel_reminder(schedule_id)
            await self._records.forget(schedule_id)
            return
        except Exception as error:
            # Any failure is the run's result: the schedule (and this actor) go on.
            await record_run(self._records, schedule_id, ran_us, None, describe(error))
        else:
            await record_run(self._records, schedule_id, ran_us, found, None)
        if replay.every_s is None:
            # A one-shot schedule is done; its runs stay readable until it is cancelled.
            await self._records.keep(attrs.evolve(replay, due=-1.0))
