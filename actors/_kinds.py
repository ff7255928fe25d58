"""The actor kinds of the session domain, as the supervisor runs them."""

from __future__ import annotations

from satchel.runtime import ActorSpec, Supervisor
from satchel.storage import KeyValueStore

from ._deadlines import DEADLINES_KIND, DeadlineBoard, DeadlineSweeper
from ._session import SESSION_KIND, SessionActor, SessionServices

#: A live session with no message for this long is passivated (its state is all on disk).
SESSION_IDLE_S = 300.0


def session_kinds(
    kv: KeyValueStore, supervisor: Supervisor, board: DeadlineBoard
) -> list[ActorSpec]:
    """The ``session`` and ``deadlines`` kinds, sharing ``kv`` and ``board``."""
    services = SessionServices(
        kv=kv,
        note_deadline=board.note,
        is_live=lambda session_id: supervisor.is_live(SESSION_KIND, session_id),
    )
    return [
        ActorSpec(
            kind=SESSION_KIND,
            factory=lambda session_id: SessionActor(session_id, services),
            idle_timeout=SESSION_IDLE_S,
        ),
        ActorSpec(
            kind=DEADLINES_KIND,
            factory=lambda _: DeadlineSweeper(
                kv, board, lambda session_id: supervisor.ref(SESSION_KIND, session_id)
            ),
        ),
    ]
