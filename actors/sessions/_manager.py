"""``rt.sessions``: create, read, query and steer sessions; ``rt.session(id)``: one session.

Reads (``get``, ``list``, ``timeline``) go straight to the store: every acknowledged change is
already there, and reading wakes no actor. Changes go to the session's actor, which serialises
them; ``create`` writes directly, since no actor can yet know a fresh id.
"""

from __future__ import annotations

import builtins
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, final

import anyio
import anyio.lowlevel
import attrs

from satchel.runtime import ActorRef, Supervisor
from satchel.runtime._budget import cooperate
from satchel.runtime._errors import (
    InvalidArgumentError,
    SessionHasChildrenError,
    SessionNotFoundError,
    ValidationError,
)
from satchel.storage import Batch, BlobStore, RecordStore

from .. import _validate as validate
from .._check import SessionCheckReport, check_sessions
from .._lifecycle import Transition
from .._messages import (
    ChangeStatus,
    Delete,
    DeleteState,
    GetState,
    ListState,
    Load,
    Retire,
    Save,
    SetState,
    UpdateSession,
)
from .._model import JournalEntry, SessionConfig, SessionInfo
from ..artifacts._artifact_manager import ArtifactManager
from ..hooks._events import EventBus, correlation_of
from ..hooks._hooks import HookPoint, Hooks
from ..hooks._replay import ReplayResult, SessionState
from . import _creation as creation
from . import _session_layout as layout
from . import _session_update as update
from ._budgets import Budgets
from ._creation import Creation
from ._deadlines import DeadlineBoard
from ._handle import RoutedSessionHandle, SessionCalls, SessionHandle
from ._history import History, ReplayMetadata
from ._manager_log import EventLogCalls
from ._query import (
    QUERY_FIELDS,
    SessionQuery,
    make_query,
    query_among,
    recently_updated,
    run_query,
    to_info,
)
from ._session import SESSION_KIND, SessionBusyError
from ._session_records import SessionRecords

_US = 1_000_000
_DELETE_ATTEMPTS = 20
_CONFIG_FIELDS = frozenset(a.name for a in attrs.fields(SessionConfig))


@final
class SessionManager(EventLogCalls):
    """Every session of a runtime, by id."""

    def __init__(
        self,
        records: RecordStore,
        supervisor: Supervisor,
        board: DeadlineBoard,
        defaults: SessionConfig,
        artifacts: ArtifactManager,
        hooks: Hooks,
        blobs: BlobStore,
        events: EventBus,
        budgets: Budgets,
    ) -> None:
        self._records = records
        self._sessions = SessionRecords(records)
        self._events = events
        #: On a cluster node, where handles' calls run (``None``: always here).
        self.calls: SessionCalls | None = None
        self._budgets = budgets
        self._history = History(records, blobs, hooks)
        self._supervisor = supervisor
        self._board = board
        self._artifacts = artifacts
        self._hooks = hooks
        self.defaults = defaults

    def _ref(self, session_id: str) -> ActorRef:
        # Every operation names its session: a live session's ref, kept with its actor,
        # skips validating the id (a tenth of a state update). A cache of our own would
        # keep ids of sessions long passivated, pinning the memory they were allocated in.
        if type(session_id) is str:
            ref = self._supervisor.resident_ref((SESSION_KIND, session_id))
            if ref is not None:
                return ref
        return self._supervisor.ref(SESSION_KIND, validate.session_id(session_id)[0])

    async def _ask(self, session_id: str, message: Any) -> Any:
        return await self._ref(session_id).ask(message)

    async def note_deadlines(self, deadlines: Iterable[tuple[int, Any]]) -> None:
        """Tell the deadline sweeper of a session's deadlines written without the manager
        (an imported archive); it would otherwise wait for its next wake-up."""
        earliest = min((due for due, _ in deadlines), default=None)
        if earliest is not None:
            await self._board.note(earliest)

    def handle(self, session_id: str) -> SessionHandle:
        """A handle on one session (checked to be a well-formed id, not to exist)."""
        checked = validate.session_id(session_id)[0]
        kind = SessionHandle if self.calls is None else RoutedSessionHandle
        return kind(self, self._artifacts, checked, self._ref(checked))

    # -- create and read ------------------------------------------------------------------

    async def create(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        parent_session_id: str | None = None,
        config: SessionConfig | Mapping[str, Any] | None = None,
        budget_of: str | None = None,
        key: str | None = None,
        app: str | None = None,
        user: str | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> str:
        """Create an active session and return its id (``SessionNotFound`` for a missing parent).

        Every field is optional. ``parent_session_id`` (the spec's name) and ``parent_id``
        are the same field. With ``key`` (any text of 1..256 bytes, e.g. a framework's thread
        id) the session's id is derived from the key, every call taking a session id takes the
        key too, and a second session with that key is refused (``SessionExistsError``).
        ``app`` and ``user`` (``user`` needs ``app``) scope it: ``list(app=, user=)``. With
        ``budget_of`` (a session id) the new session's limits are at most that session's
        (and its parent's), and its operations, artifacts and bytes count against that
        session's budget too (what a session script's sessions get); that session cannot be
        deleted while this one exists. ``state`` gives it variables, written with it.
        """
        started = time.perf_counter_ns()
        if (
            parent_id is not None
            and parent_session_id is not None
            and parent_id != parent_session_id
        ):
            raise InvalidArgumentError(
                f"parent_id {parent_id!r} and parent_session_id {parent_session_id!r} disagree"
            )
        fields = Creation(
            name="" if name is None else name,
            description="" if description is None else description,
            tags=() if tags is None else tags,
            metadata=metadata,
            parent_id=parent_id if parent_id is not None else parent_session_id,
            config=config,
            key=key,
            app=app,
            user=user,
        )
        record, sid = await self._new_record(fields, budget_of)
        initial = creation.initial_state(state, record.config.max_value_bytes)
        cause = None
        if record.parent_id is not None:
            parent = layout.bytes_of(record.parent_id)
            parent_counters = await self._sessions.counters(parent)
            if parent_counters is None:
                raise SessionNotFoundError(f"Session not found: {record.parent_id} (the parent)")
            # The child's creation follows from the parent's state as of its last entry.
            cause = {"session_id": record.parent_id, "seq": parent_counters.seq}
            correlation = await correlation_of(self._records, record.parent_id)
        else:
            correlation = record.id
        created = creation.created_data(record)
        if self._hooks.has(HookPoint.SESSION_START):
            record, created = await self._start_hooks(record)
            if record.parent_id is not None and not await self._sessions.has_record(parent):
                # The parent went while the hooks ran.
                raise SessionNotFoundError(f"Session not found: {record.parent_id} (the parent)")
        created["correlation_id"] = correlation
        if initial:
            created["state"] = {name: value for name, value, _ in initial}
        now = record.created_us
        batch = Batch()
        self._sessions.add_variables(batch, sid, initial)
        if record.budget_of is not None:
            # Refused before it is counted against a budget; otherwise the write refuses it.
            await creation.refuse_taken(self._sessions, record, sid)
        holders = await self._budgets.admit(batch, record, sid)
        try:
            await creation.write_created(self._records, batch, record, sid, now, created, cause)
        except BaseException:
            if holders is not None:  # counted by ``admit``, not written
                self._budgets.release(holders, 1, 0, 0)
            raise
        if holders is not None:
            self._budgets.admitted(record)
        if record.deadlines:
            await self._board.note(min(due for due, _ in record.deadlines))
        else:
            # A cancellation point, and a schedule point once per few calls of the task (a
            # scheduler pass each time was a tenth of a create on asyncio): as a lent turn.
            await cooperate(self._supervisor.native)
        if self._events.active:
            await self._events.publish(record.id, 1, now, "session_created", dict(created), cause)
        # The journal entry is written (and the event has its own copy): the data is the
        # observers' now (with none, no coroutine is made for them).
        if self._hooks.observed:
            await self._started(record.id, created, started)
        return record.id

    async def _started(self, session_id: str, data: dict[str, Any], started: int) -> None:
        """Tell the ``session_start`` observers a session started (``started``: when the
        operation began, from ``perf_counter_ns``)."""
        hooks = self._hooks
        if hooks.observed and hooks.observes(HookPoint.SESSION_START):
            data["duration_us"] = (time.perf_counter_ns() - started) // 1000
            if HookPoint.SESSION_START in hooks.awaiting:
                await hooks.notify(HookPoint.SESSION_START, session_id, data)
            else:
                hooks.notify_now(HookPoint.SESSION_START, session_id, data)

    async def _new_record(
        self,
        fields: Creation,
        budget_of: str | None = None,
    ) -> tuple[layout.SessionRecord, bytes]:
        now = round(self._supervisor.clock() * _US)
        return await creation.new_record(self._sessions, self.defaults, fields, now, budget_of)

    async def _start_hooks(
        self, record: layout.SessionRecord, *, origin: str | None = None
    ) -> tuple[layout.SessionRecord, dict[str, Any]]:
        """Run the ``session_start`` hooks (of a fork of ``origin``, if given); the record as
        they left it (checked again) and the journal data of its creation, hook records
        included."""
        given: dict[str, Any] = {
            "name": record.name,
            "description": record.description,
            "tags": list(record.tags),
            "metadata": record.metadata,
            "parent_session_id": record.parent_id,
        }
        if origin is not None:
            given["origin_session_id"] = origin
        data, records = await self._hooks.run(HookPoint.SESSION_START, record.id, given)
        if data is not given:
            record = attrs.evolve(
                record,
                name=validate.text("session name", data["name"], validate.MAX_NAME_BYTES),
                description=validate.text(
                    "session description",
                    data["description"],
                    validate.MAX_DESCRIPTION_BYTES,
                    nul_ok=True,
                ),
                tags=validate.tags(data["tags"]),
                metadata=validate.metadata(data["metadata"]),
            )
        return record, {**creation.created_data(record), "hooks": records}

    # -- history --------------------------------------------------------------------------

    async def state_at(self, session_id: str, seq: int | None = None) -> SessionState:
        """The session's variables, artifacts and status after journal entry ``seq``."""
        await anyio.lowlevel.checkpoint()
        return await self._history.state_at(session_id, seq)

    async def replay(self, session_id: str, **config: Any) -> ReplayResult:
        """Replay the journal (``mode``: simulate, exact, modified, debug; ``at``,
        ``modifications``, ``compare_results``, ``stop_on_error``, ``progress``,
        ``steps_from``); the session is not changed."""
        return await self._history.replay(session_id, **config)

    async def replay_metadata(self, session_id: str) -> ReplayMetadata:
        """How many journal entries there are, and when the first and last were made."""
        await anyio.lowlevel.checkpoint()
        return await self._history.metadata(session_id)

    async def can_replay(self, session_id: str) -> bool:
        """Whether the session exists to be replayed."""
        await anyio.lowlevel.checkpoint()
        return await self._history.can_replay(session_id)

    async def list_replayable(self) -> builtins.list[str]:
        """The ids of every session that can be replayed."""
        await anyio.lowlevel.checkpoint()
        return await self._history.replayable()

    async def fork(
        self,
        session_id: str,
        *,
        at: int | None = None,
        name: str | None = None,
        budget_of: str | None = None,
        key: str | None = None,
    ) -> str:
        """A new session holding the variables and artifacts ``session_id`` had after
        entry ``at`` (default: now); artifact content is shared, not copied. The
        ``session_start`` hooks run as for a creation (their data names the origin).
        ``budget_of`` and ``key`` as for ``create``; the fork keeps the origin's app and
        user."""
        started = time.perf_counter_ns()
        state = await self._history.state_at(session_id, at)
        origin = await self._sessions.load_one(validate.session_id(session_id)[1])
        assert origin is not None  # state_at found it
        record = origin[0]
        if name is None:
            name = creation.fork_name(record.name)
        fields = Creation(
            name=name,
            description=record.description,
            tags=record.tags,
            metadata=record.metadata,
            config=record.config,
            key=key,
            app=record.app,
            user=record.user,
        )
        forked, sid = await self._new_record(fields, budget_of)
        hook_records: list[dict[str, Any]] = []
        if self._hooks.has(HookPoint.SESSION_START):
            # A fork starts a session as a creation does: the same hooks may change or refuse it.
            forked, started_data = await self._start_hooks(forked, origin=record.id)
            hook_records = started_data["hooks"]
            if not await self._sessions.has_record(layout.bytes_of(record.id)):
                raise SessionNotFoundError(f"Session not found: {record.id}")  # deleted meanwhile
        correlation = await correlation_of(self._records, record.id)
        artifacts, size = len(state.artifacts), sum(a.size for a in state.artifacts)
        extra = Batch()
        await creation.refuse_taken(self._sessions, forked, sid)
        holders = await self._budgets.admit(extra, forked, sid, artifacts, size)
        try:
            data, cause = await self._history.fork_write(
                state, forked, sid, correlation, hook_records, extra
            )
        except BaseException:
            if holders is not None:  # counted by ``admit``, not written
                self._budgets.release(holders, 1, artifacts, size)
            raise
        if holders is not None:
            self._budgets.admitted(forked)
        if self._events.active:
            await self._events.publish(
                forked.id, 1, forked.created_us, "session_forked", data, cause
            )
        if forked.deadlines:
            await self._board.note(min(due for due, _ in forked.deadlines))
        else:
            await anyio.lowlevel.checkpoint()
        await self._started(forked.id, dict(data), started)
        return forked.id

    async def get(self, session_id: str) -> SessionInfo:
        """The session table of ``session_id``, whatever its status."""
        _, sid = validate.session_id(session_id)
        loaded = await self._sessions.load_one(sid)
        await cooperate(self._supervisor.native)  # see create
        if loaded is None:
            raise SessionNotFoundError(f"Session not found: {session_id}")
        return to_info(*loaded)

    async def children(self, session_id: str) -> builtins.list[SessionInfo]:
        """The child sessions of ``session_id``, oldest first."""
        await self.get(session_id)
        return await self.list(parent_session_id=session_id)

    async def timeline(
        self, session_id: str, *, offset: int = 0, limit: int | None = None
    ) -> builtins.list[JournalEntry]:
        """The session's journal in order, from entry ``offset + 1``, at most ``limit`` entries."""
        session_id, sid = validate.session_id(session_id)
        await self.get(session_id)
        validate.page(offset, limit)
        correlation = await correlation_of(self._records, session_id)
        found = []
        for seq, at_us, kind, data, cause in await self._sessions.journal(sid, offset + 1, limit):
            layout.check_entry(at_us, kind, data, cause)
            at = validate.stored_datetime(at_us, "a journal entry")
            found.append(JournalEntry(seq, at, kind, data, correlation, cause))
        return found

    # -- change ---------------------------------------------------------------------------

    async def delete(self, session_id: str, *, cascade: bool = False) -> None:
        """Delete the session; with ``cascade``, every session below it too, in the same
        atomic batch (their live actors are passivated first)."""
        sid = validate.session_id(session_id)[1]
        for _ in range(_DELETE_ATTEMPTS):
            if cascade:
                await self._retire_below(sid)
            try:
                await self._ask(session_id, Delete(cascade=cascade))
                return
            except SessionBusyError:
                continue  # a session below was woken between retiring and deleting
        raise SessionHasChildrenError(
            f"session {session_id}: sessions below it stayed in use; retry the delete"
        )

    async def _retire_below(self, sid: bytes) -> None:
        """Passivate the live actors of every session below ``sid``."""
        below = [layout.text_of(child) for child in await self._sessions.descendants(sid)]
        for child in below:
            if self._supervisor.is_live(SESSION_KIND, child):
                # One deleted since the scan has nothing left to retire.
                with contextlib.suppress(SessionNotFoundError):
                    await self._ask(child, Retire())
        for _ in range(_DELETE_ATTEMPTS):
            # A retired actor finishes its flush a few scheduler ticks after answering.
            if not any(self._supervisor.is_live(SESSION_KIND, child) for child in below):
                return
            await anyio.lowlevel.checkpoint()

    async def update(
        self,
        session_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> SessionInfo:
        """Change a session's name, description, tags or metadata (each replaced whole;
        ``None`` leaves it) or ``config["idle_timeout_s"]`` (``None`` there removes the idle
        timeout); journaled as ``session_updated``. Returns the session as it now is."""
        changes = update.changes(name, description, tags, metadata, config)
        await self._ask(session_id, UpdateSession(changes))
        return await self.get(session_id)

    async def suspend(self, session_id: str) -> None:
        """Active → suspended."""
        await self._ask(session_id, ChangeStatus(Transition.SUSPEND))

    async def resume(self, session_id: str) -> None:
        """Suspended → active."""
        await self._ask(session_id, ChangeStatus(Transition.RESUME))

    async def complete(self, session_id: str) -> None:
        """Active or suspended → completed."""
        await self._ask(session_id, ChangeStatus(Transition.COMPLETE))

    async def fail(self, session_id: str, reason: str | None = None) -> None:
        """Active or suspended → failed, keeping ``reason``."""
        await self._ask(session_id, ChangeStatus(Transition.FAIL, reason))

    async def archive(self, session_id: str) -> None:
        """Completed or failed → archived."""
        await self._ask(session_id, ChangeStatus(Transition.ARCHIVE))

    async def save(self, session_id: str) -> None:
        """Persist now (every change is already persisted when acknowledged)."""
        await self._ask(session_id, Save())

    async def load(self, session_id: str) -> str:
        """Make the session live (after a restart, for instance); return its id."""
        loaded: str = await self._ask(session_id, Load())
        return loaded

    async def save_all(self) -> int:
        """Save every live session; how many there were."""
        live = [
            s.id for s in self._supervisor.live() if s.kind == SESSION_KIND and s.failure is None
        ]
        for session_id in live:
            await self._ask(session_id, Save())
        return len(live)

    async def restore_recent(self, count: int) -> builtins.list[str]:
        """Make the ``count`` most recently updated sessions live; their ids, newest first."""
        if type(count) is not int or count < 0:
            raise ValidationError(f"count must be a non-negative integer, not {count!r}")
        ids = await recently_updated(self._sessions, count)
        for session_id in ids:
            await self._ask(session_id, Load())
        return ids

    async def set_state(self, session_id: str, key: str, value: Any) -> None:
        """Set variable ``key`` (a JSON-like value; ``None`` is stored as null)."""
        # Not through ``_ask``: a coroutine less on the hottest calls.
        await self._ref(session_id).ask(SetState(key, value))

    async def get_state(self, session_id: str, key: str) -> Any:
        """Variable ``key``, or ``None`` if unset."""
        return await self._ref(session_id).ask(GetState(key))

    async def delete_state(self, session_id: str, key: str) -> None:
        """Remove variable ``key`` (no error if unset)."""
        await self._ask(session_id, DeleteState(key))

    async def list_state(self, session_id: str) -> builtins.list[str]:
        """The names of the session's variables."""
        names: builtins.list[str] = await self._ask(session_id, ListState())
        return names

    async def check(self, *, fix: bool = False) -> SessionCheckReport:
        """Compare every session with its counters, journal and index entries (see
        ``check_sessions``); ``fix`` rebuilds index entries and drops orphaned data."""
        report = await check_sessions(self._records, fix=fix)
        await anyio.lowlevel.checkpoint()
        return report

    async def list(self, **filters: Any) -> builtins.list[SessionInfo]:
        """Sessions matching the spec's filters: ``status``, ``tags`` (all), ``parent_session_id``,
        ``search`` (case-insensitive substring of name or description), ``created_after``,
        ``created_before`` (exclusive), ``order_by`` (``created_at``, ``updated_at``, ``name``),
        ``descending``, ``offset``, ``limit``."""
        found = await run_query(self._records, _query(filters))
        await anyio.lowlevel.checkpoint()
        return found

    async def made_by_scripts_of(self, session_id: str) -> builtins.list[str]:
        """The sessions that scripts of ``session_id`` created or forked (they count against
        its budget)."""
        return await self._budgets.sharers(session_id)

    async def made_by_a_script_of(self, session_id: str, holder_id: str) -> bool:
        """Whether ``session_id`` was created or forked by a script of ``holder_id``."""
        return await self._budgets.holder_of(session_id) == holder_id

    async def list_among(
        self, session_ids: Iterable[str], **filters: Any
    ) -> builtins.list[SessionInfo]:
        """``list`` among ``session_ids`` only: every filter, the order, the page and the time
        it takes as if no other session existed (what a session script may see)."""
        found = await query_among(self._sessions, session_ids, _query(filters))
        await anyio.lowlevel.checkpoint()
        return found


def _query(filters: dict[str, Any]) -> SessionQuery:
    unknown = sorted(set(filters) - QUERY_FIELDS)
    if unknown:
        raise InvalidArgumentError(
            f"unknown session query field(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(QUERY_FIELDS))}"
        )
    return make_query(**filters)
