"""The actor kinds of the session domain, registered with a supervisor."""

from __future__ import annotations

from collections.abc import Callable

from satchel.runtime import ActorSpec, Supervisor
from satchel.runtime._errors import InvalidArgumentError
from satchel.storage import GroupCommit, RecordStore, Store

from . import _validate as validate
from .artifacts._audit import DEFAULT_MAX_ENTRIES, AuditLog
from .artifacts._storage import STORAGE_ID, STORAGE_KIND, StorageActor
from .hooks._events import EventBus
from .hooks._hooks import Hooks
from .sessions._deadlines import DEADLINES_KIND, DeadlineBoard, DeadlineSweeper
from .sessions._session import SESSION_KIND, SessionActor, SessionServices, admission
from .sessions._session_services import SessionLeases

#: A live session with no message for this long is passivated (its state is all on disk).
SESSION_IDLE_S = 300.0


def register_session_kinds(
    store: Store,
    supervisor: Supervisor,
    board: DeadlineBoard,
    *,
    hooks: Hooks,
    events: EventBus,
    audit_max_entries: int = DEFAULT_MAX_ENTRIES,
    group: GroupCommit | None = None,
    on_deleted: tuple[Callable[[str], None], ...] = (),
    idle_s: float | None = SESSION_IDLE_S,
    fence: Callable[[str, RecordStore], RecordStore] | None = None,
    leases: SessionLeases | None = None,
) -> SessionServices:
    """Register the ``storage``, ``session`` and ``deadlines`` kinds; what they share
    (``group``: the group commit of ``machine`` durability; ``on_deleted``: called with the
    id of each deleted session; ``idle_s``: how long a session actor stays in memory with no
    message, ``None`` for ever; ``fence``: in a cluster, the records as a session's lease
    holder writes them)."""
    supervisor.register(
        ActorSpec(kind=STORAGE_KIND, factory=lambda _: StorageActor(store.blobs), idle_timeout=None)
    )
    services = SessionServices(
        records=store.records,
        blobs=store.blobs,
        storage=supervisor.ref(STORAGE_KIND, STORAGE_ID),
        note_deadline=board.note,
        is_live=lambda session_id: supervisor.is_live(SESSION_KIND, session_id),
        audit=AuditLog(store.records, audit_max_entries),
        hooks=hooks,
        events=events,
        group=group,
        on_deleted=on_deleted,
        fence=fence,
        leases=leases,
        networked=store.kv is None,
    )
    supervisor.register(
        ActorSpec(
            kind=SESSION_KIND,
            factory=lambda session_id: SessionActor(_canonical(session_id), services),
            idle_timeout=idle_s,
            admit=admission(store.records) if store.kv is not None else None,
        )
    )
    supervisor.register(
        ActorSpec(
            kind=DEADLINES_KIND,
            factory=lambda _: DeadlineSweeper(
                store.records, board, lambda session_id: supervisor.ref(SESSION_KIND, session_id)
            ),
        )
    )
    return services


def _canonical(session_id: str) -> str:
    """A session actor's id, which must be its session's canonical id: any other name of the
    session (a key, capitals) would start a second actor for it."""
    if validate.session_id(session_id)[0] != session_id:
        raise InvalidArgumentError(f"session actors are named by canonical id, not {session_id!r}")
    return session_id
