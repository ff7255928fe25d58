"""The session actor: one per live session; it owns the session's record and counters.

Every change is one atomic batch holding the new state, the journal entry that describes it
and the counters, written before the change is acknowledged. The actor caches only the record,
the counters and its artifact names' heads (``_artifact_heads``); variables are read from the
store, so a live session costs little memory.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, final

import anyio
import attrs

from satchel.runtime import Actor, Lending
from satchel.runtime._errors import (
    InvalidArgumentError,
    SatchelError,
    SessionNotActiveError,
    SessionNotFoundError,
    StoreUnavailableError,
    StoreWriteFailedError,
    ValidationError,
)
from satchel.storage import Batch, RecordStore

from .. import _validate as validate
from .._lifecycle import (
    ACTIVE,
    COMPLETED,
    DAY_S,
    FAILED,
    Transition,
    deadlines_after,
    target_of,
)
from .._messages import (
    AppendEvents,
    ChangeStatus,
    ClearEvents,
    DeadlineDue,
    Delete,
    DeleteArtifact,
    DeleteState,
    GetState,
    ListState,
    Load,
    PopEvent,
    RecordHooks,
    Retire,
    RevokeArtifact,
    Save,
    SetState,
    ShareArtifact,
    StoreArtifact,
    UpdateSession,
)
from ..artifacts import _sharing as sharing
from ..artifacts._artifact_heads import NameHeads
from ..hooks._events import EventBus
from ..hooks._hooks import HookPoint
from . import _session_hooks as session_hooks
from . import _session_layout as layout
from . import _session_update as update
from ._budgets import count_operation, limits_anything, take_token
from ._ratelimit import TokenBucket
from ._session_artifacts import ArtifactTurns
from ._session_deadlines import DeadlineTurns
from ._session_delete import DeleteTurns
from ._session_log import EventLogTurns
from ._session_records import OwnRecords
from ._session_scripts import RunScript, ScriptSlot
from ._session_services import SESSION_KIND as SESSION_KIND
from ._session_services import SessionBusyError as SessionBusyError
from ._session_services import SessionServices as SessionServices
from ._turn_writes import Event, TurnWrites

log = logging.getLogger("satchel.sessions")

_US = 1_000_000
# An archived session that cannot be deleted yet (it has children) is looked at again later.
_RETRY_DELETE_US = round(DAY_S * _US)

#: Maintenance messages the rate limit does not count.
_UNTHROTTLED = (Save, Load, Retire, RecordHooks)
#: Operations only an active session takes: refused for its status, they cost no token (a
#: caller that resumes the session and tries again would otherwise pay twice).
_ACTIVE_ONLY = frozenset((*session_hooks.WRITES, PopEvent, ClearEvents))
#: Turns an asker may run itself while the actor is idle (``Actor.lending``): none of them
#: suspends unless it waits for a group commit (uncancellable) or an awaited observer. The
#: event-log turns are as plain as ``SetState`` without hooks (``_run_append_hooks`` is the
#: only await of an append, and runs only while a hook is registered: then none is lent).
_LENDABLE = frozenset(
    {
        AppendEvents,
        PopEvent,
        ClearEvents,
        SetState,
        GetState,
        DeleteState,
        ListState,
        StoreArtifact,
        DeleteArtifact,
        ShareArtifact,
        RevokeArtifact,
    }
)


def admission(records: RecordStore) -> Callable[[str, Any], Awaitable[None]]:
    """The session kind's ``admit``: an ask for a session that does not exist is answered
    ``SessionNotFoundError`` after one read of its counters (which the actor's start reads
    with its record), without starting an actor to find that out. For a local store only: on
    a networked one the read is a round trip more before every actor's start."""

    async def admit(session_id: str, message: Any) -> None:
        if type(message) is DeadlineDue:
            return  # the actor drops the deadline of a session that is gone
        try:
            sid = layout.bytes_of(session_id)
        except ValueError:
            return  # no canonical id: the actor's start refuses it
        # The counters alone: a session without them is one the actor answers the same way
        # (a multi-get of the record too left more of the heap pinned after a wave of them).
        if await records.get(layout.counters_key(sid)) is None:
            raise SessionNotFoundError(f"Session not found: {session_id}")

    return admit


@final
class SessionActor(ArtifactTurns, DeadlineTurns, EventLogTurns, DeleteTurns, Actor[Any]):
    """The actor of one session; ``factory`` of the ``session`` kind."""

    def __init__(self, session_id: str, services: SessionServices) -> None:
        self._id = session_id
        self._sid = layout.bytes_of(session_id)
        self._services = services
        records = services.records
        if services.fence is not None:  # in a cluster: every write carries the lease's epoch
            records = services.fence(session_id, records)
        self._records = records
        # The session's records through that store: the actor builds no key itself.
        self._own = OwnRecords(records, self._sid)
        self._blobs = (
            services.blobs if records is services.records else services.blobs.through(records)
        )
        self._note_deadline = services.note_deadline
        self._record: layout.SessionRecord | None = None
        self._counters = layout.Counters()
        # The event log's last position and time as this actor last wrote them (the only
        # writer of its log), so that an append reads nothing first; None: read them.
        self._log_end: tuple[int, int] | None = None
        self._bucket: TokenBucket | None = None
        self._created = b""  # the creation time as index values hold it
        self._earliest_added: int | None = None
        self._as_owner: sharing.Owner | None = None
        self._heads = NameHeads(self._sid)  # the artifact names' heads, as last written
        self._stale = False  # a write may have landed unanswered: read the state again
        self._hooks = services.hooks
        self._events = services.events
        self._hook_records: list[dict[str, Any]] = []  # of this turn, for its journal entry
        self._script_slot = ScriptSlot()
        # Not a bound method: the actor would be in a reference cycle, freed only by the
        # garbage collector after it is passivated, not when its cell lets go of it.
        self._writes = TurnWrites(
            records, services.group, functools.partial(_publish, services.events, session_id)
        )
        # Reads are activity too but are not journaled: while live, the actor remembers them.
        self._tracks_idle = False
        self._budgeted = False  # counts against budgets beyond its own (``_budgets``)
        self._active_us = 0

    async def on_start(self) -> None:
        """Load the record and counters; a missing session answers ``SessionNotFound``."""
        await self._load_stored()

    async def _load_stored(self) -> None:
        self._log_end = None  # read with the rest: the session may be another by now
        loaded = await self._own.load_one(self._sid)
        if loaded is None:
            return
        self._record, self._counters = loaded
        self._created = layout.u64(self._record.created_us)
        config = self._record.config
        self._tracks_idle = config.idle_timeout_s is not None
        self._budgeted = self._record.budget_of is not None or limits_anything(config)
        if config.rate_limit is not None:
            # Kept by the runtime, not the actor: passivating must not refill it.
            self._bucket = self._services.budgets.bucket(self._id, config)

    async def on_stop(self) -> None:
        """Let go of the script worker; forget the rate bucket once it is full again (a new
        one would be the same)."""
        self._services.scripts.release(self._script_slot)
        if self._bucket is not None and self._bucket.full(anyio.current_time()):
            self._services.buckets.pop(self._id, None)

    def lending(self, message: Any) -> Lending:
        """Variable and artifact operations, while no hook (which may take its time) is
        registered: unshielded while nothing in the turn can be cut (a local write does not
        suspend, a group commit's wait is uncancellable by itself), shielded while an observer
        is awaited, held while the store waits on the network (so an asker's cancellation never
        cuts a turn mid-write: it waits for the store, however long that takes)."""
        hooks = self._hooks
        if type(message) not in _LENDABLE or hooks.has_any:
            return Lending.NO
        if hooks.awaiting:
            return Lending.SHIELDED
        # On a networked store reads too: a lent turn cut by its asker's deadline restarts
        # the actor, and a few in a row would fail it (its restart intensity).
        return Lending.HELD if self._services.networked else Lending.SYNC

    async def _reload(self) -> None:
        """Read the record and counters again after a write that may have landed, and
        forget the artifact heads."""
        self._record, self._counters = None, layout.Counters()
        self._heads.forget()
        await self._load_stored()
        self._stale = False

    async def receive(self, message: Any) -> Any:
        """Answer one operation on the session."""
        if self._stale:
            await self._reload()
        if type(message) is DeadlineDue:
            await self._deadline_due(message)
            if self._writes.holding:
                await self._settle()
            await self._announce_deadline()
            return None
        if type(message) is RunScript:
            return await self._run_script(message)
        handler = _HANDLERS.get(type(message))
        if handler is None:
            raise TypeError(f"a session actor takes no {type(message).__name__}")
        if self._record is None:
            await self._require_session()
        if (
            (self._bucket is not None or self._budgeted)
            and type(message) not in _UNTHROTTLED
            and not (
                type(message) in _ACTIVE_ONLY
                and (record := self._record) is not None
                and record.status is not ACTIVE
            )
        ):
            await self._throttle()
        hooks = self._hooks
        awaited = bool(hooks.awaiting)  # none when the turn was lent unshielded
        # Observers (``after`` hooks) need the point, the status before, and the start time.
        if hooks.observed and hooks.observes(watched := session_hooks.point_of(message)):
            record = self._record
            before = record.status if record is not None else None
            started = time.perf_counter_ns()
        else:
            watched = None
        try:
            if hooks.has_any and (point := session_hooks.point_of(message)) is not None:
                message = await self._run_hooks(point, message)
            result = await handler(self, message)
            if self._hook_records:
                # The operation wrote no journal entry of its own (save, restore): the hook
                # executions still go in the journal.
                await self._commit(Batch(), "hooks_ran", {}, operation=False)
        except (ValidationError, InvalidArgumentError) as error:
            # Validators name the value at fault; the caller also needs to know the session.
            if self._id in str(error):
                raise
            raise type(error)(f"session {self._id}: {error}") from None
        finally:
            if self._hook_records:
                self._hook_records = []
            if self._writes.holding:
                await self._settle()
        if watched is not None:
            took_us = (time.perf_counter_ns() - started) // 1000
            if type(message) in session_hooks.LIGHT and watched not in hooks.awaiting:
                hooks.notify_later(
                    watched, self._id, session_hooks.data_of, message, before, took_us
                )
            else:
                data = session_hooks.data_of(message, before)
                data["duration_us"] = took_us
                if watched in hooks.awaiting:
                    await session_hooks.tell_awaited(
                        hooks, watched, self._id, data, shield=not awaited
                    )
                else:
                    hooks.notify_now(watched, self._id, data)
        if self._tracks_idle and type(message) not in _UNTHROTTLED:  # upkeep is no activity
            self._active_us = self._now_us()
        if self._earliest_added is not None:
            await self._announce_deadline()
        return result

    async def _run_script(self, message: RunScript) -> list[Any]:
        await self._require_session()
        run = self._services.scripts.run
        assert run is not None, "open_runtime wires session scripts"
        return await run(self._id, self._script_slot, message)

    async def _run_hooks(self, point: HookPoint, message: Any) -> Any:
        """Run the hooks of ``point`` for ``message`` where the operation may happen (so an
        invalid one fails as itself, not as a hook's decision); the message they leave."""
        record = await self._require_session()
        if isinstance(message, session_hooks.WRITES):
            await self._require_active()
        elif type(message) is ChangeStatus:
            target_of(self._id, record.status, message.operation)
        if type(message) is AppendEvents:
            return await self._run_append_hooks(point, message)
        session_hooks.check_input(message, record.config.max_value_bytes)
        data = session_hooks.data_of(message, record.status)
        after, self._hook_records = await self._hooks.run(point, self._id, data)
        return message if after is data else session_hooks.changed(message, after)

    # -- guards -------------------------------------------------------------------------

    async def _require_session(self) -> layout.SessionRecord:
        if self._record is None:
            await self._load_stored()  # a keyed session may have been created since this started
        if self._record is None:
            # Nothing to hold in memory for an id that names no session.
            self.context.passivate()
            raise SessionNotFoundError(f"Session not found: {self._id}")
        return self._record

    async def _require_active(self) -> layout.SessionRecord:
        record = await self._require_session()
        if record.status is not ACTIVE:
            raise SessionNotActiveError(
                f"session {self._id} is {record.status.value}; only active sessions accept writes"
            )
        return record

    async def _throttle(self) -> None:
        record = await self._require_session()
        if self._bucket is not None:
            take_token(self._bucket, self._id, record.config)
        if self._budgeted:
            budgets = self._services.budgets
            budgets.throttle(self._id, await budgets.holders(self._id, record))

    # -- writing ------------------------------------------------------------------------

    def _now_us(self) -> int:
        # Journal times never go backwards, even if the wall clock does.
        return max(round(self.context.now() * _US), self._counters.updated_us)

    async def _commit(
        self,
        batch: Batch,
        kind: str,
        data: dict[str, Any],
        *,
        operation: bool,
        record: layout.SessionRecord | None = None,
        now: int | None = None,
        artifacts: int = 0,
        size: int = 0,
        write: Callable[[Batch], Awaitable[None]] | None = None,
    ) -> None:
        """Add the journal entry and counters to ``batch`` and write it atomically (with
        ``write`` when the batch also moves blob references)."""
        old = self._counters
        holders = None
        if self._budgeted and (operation or artifacts or size):
            budgets = self._services.budgets
            holders = await budgets.holders(self._id, await self._require_session())
            await budgets.reserve(self._id, holders, operation, artifacts, size)
        try:
            if now is None:
                now = self._now_us()
            new = layout.Counters(
                old.seq + 1,
                now,
                old.operations + operation,
                old.artifacts + artifacts,
                old.total_bytes + size,
            )
            if self._hook_records:
                data = {**data, "hooks": self._hook_records}
                self._hook_records = []
            self._own.add_change(batch, old, new, kind, data, self._created, record)
            await self._writes.write(batch, (new.seq, now, kind, data), (old, self._record), write)
        except BaseException as error:
            if holders:  # counted by ``reserve``, not written
                self._services.budgets.release(holders, operation, artifacts, size)
            if not isinstance(error, SatchelError) or isinstance(error, StoreUnavailableError):
                # The write may have landed (a connection dropped after the commit, a call
                # cancelled mid-way): the next turn reads what is stored again rather than
                # count on from what this one held and overwrite what landed.
                self._stale = True
            raise
        self._counters = new
        if record is not None:
            self._record = record

    async def _settle(self) -> None:
        """The turn's held writes (``machine`` durability) reach stable storage before its
        reply. If their group failed, the state goes back to what is stored, the actor
        passivates (to reload the rest), and the error is the reply."""
        try:
            await self._writes.settle()
        except StoreWriteFailedError:
            self._counters, self._record = self._writes.rollback
            self._log_end = None
            self.context.passivate()
            raise

    # -- variables ----------------------------------------------------------------------

    async def _set_state(self, message: SetState) -> None:
        record = self._record
        if record is None or record.status is not ACTIVE:
            record = await self._require_active()
        key, value = message.key, message.value
        name = validate.state_key(key)
        config = record.config
        encoded = validate.json_encoded(("state", key), layout.encode_value, value)
        if len(encoded) > config.max_value_bytes:
            raise ValidationError(
                f"state {key!r} of session {self._id} encodes to {len(encoded)} bytes; "
                f"the limit is {config.max_value_bytes} (max_value_bytes)"
            )
        if config.max_operations is not None:
            count_operation(self._id, self._counters, config.max_operations)
        batch = self._own.setting(name, encoded)
        await self._commit(batch, "state_set", {"key": key, "value": value}, operation=True)

    def _get_state(self, message: GetState) -> Awaitable[Any]:
        # The read's own coroutine, not one around it: the hottest read makes no more.
        return self._own.variable(message.key)

    async def _delete_state(self, message: DeleteState) -> None:
        limit = (await self._require_active()).config.max_operations
        batch = self._own.deleting(message.key)
        if limit is not None:
            count_operation(self._id, self._counters, limit)
        await self._commit(batch, "state_deleted", {"key": message.key}, operation=True)

    def _list_state(self, _: ListState) -> Awaitable[list[str]]:
        return self._own.variable_names()

    async def _save(self, _: Save) -> None:
        """Every change is already written when acknowledged; nothing is buffered."""

    async def _load(self, _: Load) -> str:
        return self._id

    async def _record_hooks(self, message: RecordHooks) -> None:
        await self._require_session()
        await self._commit(Batch(), "hooks_ran", {"hooks": message.records}, operation=False)

    # -- lifecycle ----------------------------------------------------------------------

    async def _change_status(self, message: ChangeStatus) -> None:
        await self._transition(message.operation, message.reason)

    async def _transition(self, operation: Transition, reason: str | None) -> None:
        record = await self._require_session()
        target = target_of(self._id, record.status, operation)
        if reason is not None:
            validate.text("a failure reason", reason, validate.MAX_REASON_BYTES, nul_ok=True)
        now = self._now_us()
        ended = now if target in (COMPLETED, FAILED) else record.ended_us
        deadlines = deadlines_after(record, target, now)
        new = attrs.evolve(
            record,
            status=target,
            ended_us=ended,
            failure_reason=reason if target is FAILED else record.failure_reason,
            deadlines=deadlines,
        )
        added = self._own.add_status_change(batch := Batch(), self._sid, record, new)
        data = {"from": record.status.value, "to": target.value, "reason": reason}
        await self._commit(batch, "status_changed", data, operation=False, record=new)
        self._announce(added)

    async def _update(self, message: UpdateSession) -> None:
        record = await self._require_session()
        new = update.apply(record, message.changes, now := self._now_us())
        added = self._own.add_update(batch := Batch(), self._sid, record, new)
        data = update.journal_data(message.changes)
        await self._commit(batch, "session_updated", data, operation=False, record=new, now=now)
        self._tracks_idle = new.config.idle_timeout_s is not None
        self._announce(added)

    def _announce(self, added: list[int]) -> None:
        if added:
            due = min(added)
            self._earliest_added = (
                due if self._earliest_added is None else min(due, self._earliest_added)
            )

    async def _announce_deadline(self) -> None:
        """Tell the deadline actor of the earliest deadline this turn added."""
        if self._earliest_added is not None:
            due, self._earliest_added = self._earliest_added, None
            await self._note_deadline(due)

    async def _retire(self, _: Retire) -> None:
        """Passivate after this turn (so a cascading delete can remove this session)."""
        self.context.passivate()


async def _publish(events: EventBus, session_id: str, event: Event) -> None:
    if events.active:
        await events.publish(session_id, *event)


# One table for every session actor: a dict of bound methods in each would cost ~1.7 KiB
# per live session.
_HANDLERS: dict[type, Callable[[SessionActor, Any], Awaitable[Any]]] = {
    SetState: SessionActor._set_state,
    GetState: SessionActor._get_state,
    DeleteState: SessionActor._delete_state,
    ListState: SessionActor._list_state,
    ChangeStatus: SessionActor._change_status,
    Save: SessionActor._save,
    Load: SessionActor._load,
    Delete: SessionActor._delete,
    Retire: SessionActor._retire,
    StoreArtifact: SessionActor._store_artifact,
    DeleteArtifact: SessionActor._delete_artifact,
    ShareArtifact: SessionActor._share_artifact,
    RevokeArtifact: SessionActor._revoke_artifact,
    RecordHooks: SessionActor._record_hooks,
    UpdateSession: SessionActor._update,
    AppendEvents: SessionActor._append_events,
    PopEvent: SessionActor._pop_event,
    ClearEvents: SessionActor._clear_events,
}
