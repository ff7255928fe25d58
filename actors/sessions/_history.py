"""A session's history: its state at a journal entry, replays, replay metadata, and forks.

``SessionManager`` exposes these under the spec's names; they read the journal directly (no
actor) and never change the session they read. A fork is written like a create, in one batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from satchel.runtime._errors import InvalidArgumentError, SessionNotFoundError
from satchel.storage import Batch, BlobStore, RecordStore, prefix_pairs
from satchel.storage import _keys as keys

from .. import _validate as validate
from ..hooks import _replay as replays
from ..hooks._fork import fork_batch
from ..hooks._hooks import Hooks
from ..hooks._replay import ReplayProgress, ReplayResult, SessionState
from . import _session_layout as layout


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
        self._records = records
        self._blobs = blobs
        self._hooks = hooks

    async def _session(self, session_id: str) -> tuple[str, bytes, layout.SessionRecord]:
        session_id, sid = validate.session_id(session_id)
        raw = await self._records.get(layout.record_key(sid))
        if raw is None:
            raise SessionNotFoundError(f"Session not found: {session_id}")
        return session_id, sid, layout.RECORD_CODEC.decode(raw)

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
        prefix = layout.journal_prefix(sid)
        firsts = await prefix_pairs(self._records, prefix, limit=1)
        lasts = await prefix_pairs(self._records, prefix, reverse=True, limit=1)
        if not firsts or not lasts:
            return ReplayMetadata(session_id, 0, None, None, False)
        first, last = firsts[0], lasts[0]
        return ReplayMetadata(
            session_id,
            int.from_bytes(last[0][-8:], "big"),
            validate.to_datetime(layout.decode_entry(first[1])[0]),
            validate.to_datetime(layout.decode_entry(last[1])[0]),
            True,
        )

    async def can_replay(self, session_id: str) -> bool:
        """Whether the session exists (and so has a journal); never raises for a
        well-formed id."""
        sid = validate.session_id(session_id)[1]
        return await self._records.get(layout.record_key(sid)) is not None

    async def replayable(self) -> list[str]:
        """Every session with a journal to replay (all of them: each has at least its
        creation entry), by id."""
        start = len(keys.SESSION)
        pairs = await prefix_pairs(self._records, keys.SESSION)
        return [layout.text_of(key[start:]) for key, _ in pairs]

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
        await self._blobs.commit(batch, add=refs)
        return data, cause
