"""A session's history: its state at a journal entry, replays, replay metadata, and forks.

``SessionManager`` exposes these under the spec's names; they read the journal directly (no
actor) and never change the session they read. A fork is written like a create, in one batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from satchel.runtime._errors import (
    InvalidArgumentError,
    SessionNotFoundError,
    WriteConflictError,
)
from satchel.storage import Batch, BlobStore, RecordStore

from .. import _validate as validate
from ..hooks import _replay as replays
from ..hooks._fork import fork_batch
from ..hooks._hooks import Hooks
from ..hooks._replay import ReplayProgress, ReplayResult, SessionState
from . import _session_layout as layout
from ._creation import refuse_taken
from ._session_records import SessionRecords


@attrs.frozen
class ReplayMetadata:
    """What a session's journal holds, for deciding what to replay."""

    session_id: str
    total_events: int
    first_event_at: datetime | None
    last_event_at: datetime | None
    can_replay: bool


class History:
    """Reads of a session's past, and forks."""

    def __init__(self, records: RecordStore, blobs: BlobStore, hooks: Hooks) -> None:
        self._records = records  # for the journal's readers (replay, fork)
        self._sessions = SessionRecords(records)
        self._blobs = blobs
        self._hooks = hooks

    async def _session(self, session_id: str) -> tuple[str, bytes, layout.SessionRecord]:
        session_id, sid = validate.session_id(session_id)
        record = await self._sessions.record(sid)
        if record is None:
            raise SessionNotFoundError(f"Session not found: {session_id}")
        return session_id, sid, record

    async def state_at(self, session_id: str, seq: int | None = None) -> SessionState:
        """Variables, artifacts and status after journal entry ``seq`` (default: now)."""
        session_id, sid, _ = await self._session(session_id)
        at = replays.check_seq(seq, await replays.last_seq(self._records, sid), session_id)
        return await replays.state_at(self._records, sid, session_id, at)

    async def replay(
        self,
        session_id: str,
        *,
        mode: str = "simulate",
        at: int | None = None,
        modifications: Mapping[str, Any] | None = None,
        compare_results: bool = True,
        stop_on_error: bool = False,
        progress: ReplayProgress | None = None,
        steps_from: int = 1,
    ) -> ReplayResult:
        """Replay the journal up to ``at`` in ``mode``; the session is not changed. In
        ``debug`` mode the result holds the state after each entry from ``steps_from`` on
        (a state per entry costs a copy of every variable: a window of a long journal is
        much cheaper than all of it)."""
        session_id, sid, _ = await self._session(session_id)
        checked = replays.mode_of(mode)
        upto = replays.check_seq(at, await replays.last_seq(self._records, sid), session_id)
        if modifications is not None and not isinstance(modifications, Mapping):
            raise InvalidArgumentError(
                f"modifications must be a map of variable names to values, not "
                f"{type(modifications).__name__}"
            )
        pins = dict(modifications or {})
        for key, value in pins.items():
            validate.state_key(key)
            validate.json_like(f"modification {key!r}", value)
        if isinstance(steps_from, bool) or not isinstance(steps_from, int) or steps_from < 1:
            raise InvalidArgumentError(f"steps_from must be an entry number, not {steps_from!r}")
        for flag, name in ((compare_results, "compare_results"), (stop_on_error, "stop_on_error")):
            if type(flag) is not bool:
                raise InvalidArgumentError(f"{name} must be a boolean, not {flag!r}")
        return await replays.replay(
            self._records,
            self._hooks,
            sid,
            session_id,
            mode=checked,
            upto=upto,
            modifications=pins,
            compare_results=compare_results,
            stop_on_error=stop_on_error,
            progress=progress or ReplayProgress(),
            steps_from=steps_from,
        )

    async def metadata(self, session_id: str) -> ReplayMetadata:
        """How many journal entries the session has, and when the first and last were made."""
        session_id, sid, _ = await self._session(session_id)
        first = await self._sessions.first_entry(sid)
        last = await self._sessions.last_entry(sid)
        if first is None or last is None:
            return ReplayMetadata(session_id, 0, None, None, False)
        return ReplayMetadata(
            session_id,
            last[0],
            validate.stored_datetime(first[1], "a journal entry"),
            validate.stored_datetime(last[1], "a journal entry"),
            True,
        )

    async def can_replay(self, session_id: str) -> bool:
        """Whether the session exists (and so has a journal); never raises for a
        well-formed id."""
        sid = validate.session_id(session_id)[1]
        return await self._sessions.has_record(sid)

    async def replayable(self) -> list[str]:
        """Every session with a journal to replay (all of them: each has at least its
        creation entry), by id."""
        return await self._sessions.session_ids()

    async def fork_write(
        self,
        state: SessionState,
        record: layout.SessionRecord,
        sid: bytes,
        correlation: str,
        hook_records: list[dict[str, Any]],
        extra: Batch | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Write the fork of ``state`` as session ``record`` (and ``extra``, in the same
        write), with its blob references; the data and cause of its first journal entry
        (with the ``session_start`` hooks' records)."""
        batch, refs, data, cause = await fork_batch(
            self._records, state, record, sid, correlation, hook_records
        )
        if extra is not None:
            batch.extend(extra)
        try:
            await self._blobs.commit(batch, add=refs)
        except WriteConflictError:
            # The batch's one condition of ours: a keyed fork's counters expect none.
            await refuse_taken(SessionRecords(self._records), record, sid)
            raise
        return data, cause
