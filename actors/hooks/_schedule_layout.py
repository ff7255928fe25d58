"""How scheduled replays and their runs sit in the index space, and what they are stored as.
``HookRecords`` (``_hook_records``) reads and writes them."""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any

import attrs

from satchel.runtime._errors import InvalidArgumentError
from satchel.storage import RecordCodec

SCHEDULE = b"rps\x00"  # + schedule id(16) -> ScheduledReplay
RUN = b"rpr\x00"  # + schedule id(16) + ran at(8) -> a run (StoredRun)
PREFIX = "rpl_"
U64 = struct.Struct(">Q")


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
class StoredRun:
    """A run as stored (``ReplayRun`` without its schedule's id, in µs)."""

    ran_us: int
    events_replayed: int
    hooks_replayed: int
    matched: int
    mismatched: int
    error: str | None


SCHEDULE_CODEC = RecordCodec(ScheduledReplay, kind="scheduled-replay", version=1)
RUN_CODEC = RecordCodec(StoredRun, kind="replay-run", version=1)


def id_bytes(schedule_id: str) -> bytes:
    """The 16 bytes of a schedule id (``InvalidArgumentError`` if it is malformed)."""
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


def schedule_key(schedule_id: str) -> bytes:
    """Where a schedule is kept."""
    return SCHEDULE + id_bytes(schedule_id)


def runs_prefix(schedule_id: str) -> bytes:
    """The keys of a schedule's runs, oldest first."""
    return RUN + id_bytes(schedule_id)
