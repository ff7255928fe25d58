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
import struct
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import attrs

from satchel.runtime import Actor, ActorRef, ReminderFired, Supervisor
from satchel.runtime._errors import (
    InvalidArgumentError,
    SessionNotFoundError,
    ValidationError,
)
from satchel.storage import Batch, RecordCodec, RecordStore, prefix_pairs, prefix_upper_bound

from .. import _validate as validate
from ..sessions import _session_layout as layout
from ._replay import mode_of

if TYPE_CHECKING:
    from ..sessions._manager import SessionManager

REPLAYS_KIND = "replays"
REPLAYS_ID = "scheduled"
SCHEDULE = b"rps\x00"  # + schedule id(16) -> ScheduledReplay
RUN = b"rpr\x00"  # + schedule id(16) + ran at(8) -> ReplayRun
KEPT_RUNS = 100
PREFIX = "rpl_"
_U64 = struct.Struct(">Q")
_US = 1_000_000


@attrs.frozen
class ScheduledReplay:
    """A replay to run at ``due`` (seconds since the epoch), then every ``every_s``."""

    id: str
    session_id: str
    mode: str
    at: int | None  # replay up to this journal entry (None: the newest at each run)
    modifications: dict[str, Any]
    compare_results: bool
    due: float
    every_s: float | None


@attrs.frozen
class ReplayRun:
    """What one scheduled run found (or the error that stopped it)."""

    schedule_id: str
    ran_at: datetime
    events_replayed: int
    hooks_replayed: int
    matched: int
    mismatched: int
    error: str | None = None


@attrs.frozen
class _StoredRun:
    ran_us: int
    events_replayed: int
    hooks_replayed: int
    matched: int
    mismatched: int
    error: str | None


SCHEDULE_CODEC = RecordCodec(ScheduledReplay, kind="scheduled-replay", version=1)
_RUN_CODEC = RecordCodec(_StoredRun, kind="replay-run", version=1)


@attrs.frozen
class Schedule:
    """Make a schedule (the replays actor stores it and sets its reminder)."""

    replay: ScheduledReplay


@attrs.frozen
class Unschedule:
    """Drop a schedule and its reminder; answers whether it existed."""

    schedule_id: str


def schedule_key(schedule_id: str) -> bytes:
    """Where a schedule is kept."""
    return SCHEDULE + _id_bytes(schedule_id)


def _id_bytes(schedule_id: str) -> bytes:
    if (
        type(schedule_id) is not str
        or not schedule_id.startswith(PREFIX)
        or len(schedule_id) != len(PREFIX) + 32
    ):
        raise InvalidArgumentError(f"malformed schedule id {schedule_id!r}")
    try:
        return bytes.fromhex(schedule_id[len(PREFIX) :])
    except ValueError:
        raise InvalidArgumentError(f"malformed schedule id {schedule_id!r}") from None


async def record_run(
    records: RecordStore, schedule_id: str, ran_us: int, found: Any, error: str | None
) -> None:
    """Keep one run's summary (and only the newest ``KEPT_RUNS``)."""
    prefix = RUN + _id_bytes(schedule_id)
    stored = _StoredRun(
        ran_us,
        getattr(found, "events_replayed", 0),
        getattr(found, "hooks_replayed", 0),
        getattr(found, "matched", 0),
        getattr(found, "mismatched", 0),
        error,
    )
    batch = Batch()
    batch.put(prefix + _U64.pack(ran_us), _RUN_CODEC.encode(stored))
    # The new run and the newest KEPT_RUNS - 1 before it stay.
    newest = await prefix_pairs(records, prefix, reverse=True, limit=KEPT_RUNS - 1)
    kept = [key for key, _ in newest]
    if len(kept) == KEPT_RUNS - 1:
        batch.delete_range(prefix, kept[-1])
    await records.write(batch)


async def _has_run(records: RecordStore, schedule_id: str) -> bool:
    """Whether a run of the schedule is kept."""
    return bool(await prefix_pairs(records, RUN + _id_bytes(schedule_id), limit=1))


async def keep(records: RecordStore, replay: ScheduledReplay) -> None:
    """Store (or replace) a schedule."""
    batch = Batch()
    batch.put(schedule_key(replay.id), SCHEDULE_CODEC.encode(replay))
    await records.write(batch)


async def drop_for_session(records: RecordStore, batch: Batch, session_id: str) -> None:
    """Add the removal of a deleted session's schedules and their runs to ``batch`` (their
    reminders find nothing to run and cancel themselves)."""
    for key, value in await prefix_pairs(records, SCHEDULE):
        if SCHEDULE_CODEC.decode(value).session_id == session_id:
            runs = RUN + key[len(SCHEDULE) :]
            batch.delete(key)
            batch.delete_range(runs, prefix_upper_bound(runs))


async def forget(records: RecordStore, schedule_id: str) -> bool:
    """Delete a schedule and its runs; whether it existed."""
    key = schedule_key(schedule_id)
    existed = await records.get(key) is not None
    runs = RUN + _id_bytes(schedule_id)
    batch = Batch()
    batch.delete(key)
    batch.delete_range(runs, prefix_upper_bound(runs))
    await records.write(batch)
    return existed


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
        if await self._records.get(layout.record_key(sid)) is None:
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
        _id_bytes(schedule_id)
        existed: bool = await self._actor.ask(Unschedule(schedule_id))
        return existed

    async def list(self, session_id: str | None = None) -> builtins.list[ScheduledReplay]:
        """Every schedule (of one session, if given)."""
        found = [SCHEDULE_CODEC.decode(v) for _, v in await prefix_pairs(self._records, SCHEDULE)]
        if session_id is not None:
            session_id = validate.session_id(session_id)[0]
            found = [s for s in found if s.session_id == session_id]
        await anyio.lowlevel.checkpoint()
        return found

    async def results(self, schedule_id: str) -> builtins.list[ReplayRun]:
        """The kept runs of a schedule, oldest first."""
        prefix = RUN + _id_bytes(schedule_id)
        runs = []
        for _, value in await prefix_pairs(self._records, prefix):
            s = _RUN_CODEC.decode(value)
            runs.append(
                ReplayRun(
                    schedule_id,
                    validate.to_datetime(s.ran_us),
                    s.events_replayed,
                    s.hooks_replayed,
                    s.matched,
                    s.mismatched,
                    s.error,
                )
            )
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
        self._records = records

    async def receive(self, message: Any) -> Any:
        """Keep, drop or run a schedule."""
        if isinstance(message, ReminderFired):
            return await self._run(message.name)
        if isinstance(message, Schedule):
            await keep(self._records, message.replay)
            replay = message.replay
            await self.context.set_reminder(replay.id, at=replay.due, every=replay.every_s)
            return None
        if isinstance(message, Unschedule):
            await self.context.cancel_reminder(message.schedule_id)
            return await forget(self._records, message.schedule_id)
        raise TypeError(f"the replays actor takes no {type(message).__name__}")

    async def _run(self, schedule_id: str) -> None:
        raw = await self._records.get(schedule_key(schedule_id))
        if raw is None:
            await self.context.cancel_reminder(schedule_id)  # left by a cancelled schedule
            return
        replay = SCHEDULE_CODEC.decode(raw)
        if replay.every_s is None and await _has_run(self._records, schedule_id):
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
            await forget(self._records, schedule_id)
            return
        except Exception as error:
            # Any failure is the run's result: the schedule (and this actor) go on.
            await record_run(self._records, schedule_id, ran_us, None, describe(error))
        else:
            await record_run(self._records, schedule_id, ran_us, found, None)
        if replay.every_s is None:
            # A one-shot schedule is done; its runs stay readable until it is cancelled.
            await keep(self._records, attrs.evolve(replay, due=-1.0))
