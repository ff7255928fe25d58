"""What every session actor shares, and the error a busy child raises to a cascading delete."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import attrs

from satchel.runtime import ActorRef
from satchel.runtime._errors import SessionHasChildrenError
from satchel.storage import Batch, BlobStore, GroupCommit, RecordStore

from ..artifacts._audit import AuditLog
from ..hooks._events import EventBus
from ..hooks._hooks import Hooks
from ._budgets import Budgets
from ._ratelimit import TokenBucket
from ._session_scripts import ScriptRunner

#: The actor kind of sessions.
SESSION_KIND = "session"

NoteDeadline = Callable[[int], Awaitable[None]]


class SessionLeases(Protocol):
    """In a cluster: the leases this node holds on sessions (``actors.cluster``)."""

    def holds(self, kind: str, actor_id: str) -> bool:
        """Whether this node holds the session's lease."""
        ...

    async def claim(self, kind: str, actor_id: str) -> None:
        """Take the session's lease, or raise ``SessionMovedError``."""
        ...

    def vacated(self, kind: str, actor_id: str) -> None:
        """Let go of the session's lease (nothing serves it here)."""
        ...

    def guard(self, batch: Batch, session_id: str) -> None:
        """Make ``batch`` expect this node's lease on ``session_id`` still to hold."""
        ...

    def drop_fence(self, batch: Batch, session_id: str) -> None:
        """Make ``batch`` delete the fence record of ``session_id`` (it is being deleted)."""
        ...


@attrs.frozen
class SessionServices:
    """What every session actor shares: the store and its blobs, the storage actor, the
    deadline board, the rate buckets (which outlive passivation), a view of which sessions
    have a live actor, and who must hear of a deleted session."""

    records: RecordStore
    blobs: BlobStore
    storage: ActorRef
    note_deadline: NoteDeadline
    is_live: Callable[[str], bool]
    audit: AuditLog
    hooks: Hooks
    events: EventBus
    #: Set in ``machine`` durability: journaled writes go through its group commit.
    group: GroupCommit | None = None
    #: Set in a cluster: the records as the holder of a session's lease writes them.
    fence: Callable[[str, RecordStore], RecordStore] | None = None
    #: Set in a cluster: the leases of this node (a cascading delete takes those below).
    leases: SessionLeases | None = None
    #: Whether the store is reached over the network (PostgreSQL): a turn lent to an asker
    #: then waits on it, and is held from the asker's cancellation (which would cut it).
    networked: bool = False
    buckets: dict[str, TokenBucket] = attrs.field(factory=dict)
    scripts: ScriptRunner = attrs.field(factory=ScriptRunner)
    #: Called with the id of each deleted session, so what is kept in memory per session
    #: (the built-in metrics) goes with it.
    on_deleted: tuple[Callable[[str], None], ...] = ()
    #: Budgets shared down trees of sessions that session scripts made.
    budgets: Budgets = attrs.field(
        init=False,
        default=attrs.Factory(lambda self: Budgets(self.records, self.buckets), takes_self=True),
    )

    def forget(self, session_id: str) -> None:
        """Drop what is kept in memory for a session that was deleted."""
        self.buckets.pop(session_id, None)
        self.budgets.forget(session_id)
        self.events.forget(session_id)
        for forget in self.on_deleted:
            forget(session_id)


class SessionBusyError(SessionHasChildrenError):
    """A session below one being deleted came back to life; the delete is retried."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"child session {session_id} is in use; retry the delete")
        self.session_id = session_id
