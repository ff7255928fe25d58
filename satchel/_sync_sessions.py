"""Part of the blocking facade of the runtime, one class per runtime class (``satchel.sync``).

Written by ``python -m tests.sync_api_gen`` from the async classes' own signatures; do
not edit by hand. Every call runs the async method in the runtime's event loop, in the
calling thread, and returns its result; streams come back as iterators of bytes and
content may be given as an iterable of bytes.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, final

from satchel._portal import Portal
from satchel._sync_artifacts import SyncArtifactManager
from satchel.actors._check import SessionCheckReport
from satchel.actors._model import JournalEntry, SessionConfig, SessionInfo
from satchel.actors.artifacts._artifact_manager import ArtifactSpec
from satchel.actors.artifacts._artifact_model import Artifact, ArtifactInfo, ArtifactRef
from satchel.actors.artifacts._audit import AuditEntry
from satchel.actors.hooks._replay import ReplayResult, SessionState
from satchel.actors.sessions._event_log import SessionEvent
from satchel.actors.sessions._handle import SessionHandle
from satchel.actors.sessions._history import ReplayMetadata
from satchel.actors.sessions._manager import SessionManager


@final
class SyncSessionManager:
    """The blocking face of ``SessionManager`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: SessionManager, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncSessionManager of {self._target!r}>"

    def append_events(
        self,
        session_id: str,
        events: Sequence[Mapping[str, Any]],
        *,
        state: Mapping[str, Any] | None = None,
        delete: Iterable[str] = (),
        expect_position: int | None = None,
        at: Any = None,
        expect_created_at: Any = None,
        expect_state: Mapping[str, Any] | None = None,
    ) -> int:
        """Append ``events`` (JSON-like maps) to the session's log and, in the same atomic
        write, set the variables in ``state`` (``None`` is stored as null) and delete those in
        ``delete``; returns the last event's position. Positions count from 1 and are never
        given twice. With ``expect_position`` the append is refused
        (``InvalidStateTransitionError``) unless the log's last position is still that: a
        writer that read the session stale does not overwrite it. With
        ``expect_created_at`` (the session's ``created_at``) it is refused, the same way, if
        the session was deleted and created again under the same key since (positions count
        from 1 again in the new one). With ``expect_state`` it is refused, the same way,
        unless each variable named there holds the value given, of the same kind at every
        depth (``True``, ``1`` and ``1.0`` differ; a missing variable reads as ``None``): a
        compare-and-set. ``at`` (a datetime, RFC 3339
        text or epoch seconds) is the events' time instead of now."""
        return self._portal.run(
            self._target.append_events(
                session_id,
                events,
                state=state,
                delete=delete,
                expect_position=expect_position,
                at=at,
                expect_created_at=expect_created_at,
                expect_state=expect_state,
            )
        )

    def append_event(
        self,
        session_id: str,
        event: Mapping[str, Any],
        *,
        state: Mapping[str, Any] | None = None,
        delete: Iterable[str] = (),
        expect_position: int | None = None,
        at: Any = None,
        expect_created_at: Any = None,
        expect_state: Mapping[str, Any] | None = None,
    ) -> int:
        """``append_events`` of one event; its position."""
        return self._portal.run(
            self._target.append_event(
                session_id,
                event,
                state=state,
                delete=delete,
                expect_position=expect_position,
                at=at,
                expect_created_at=expect_created_at,
                expect_state=expect_state,
            )
        )

    def events(
        self, session_id: str, *, last: int | None = None, after: Any = None
    ) -> builtins.list[SessionEvent]:
        """The session's events, oldest first: the last ``last`` of them, or (and) those after
        the time ``after``, read from the end of the log without the rest."""
        return self._portal.run(self._target.events(session_id, last=last, after=after))

    def last_event_position(self, session_id: str) -> int:
        """The last position given in the session's log (0 if none; a pop does not lower
        it): what ``expect_position`` compares with."""
        return self._portal.run(self._target.last_event_position(session_id))

    def pop_event(self, session_id: str) -> SessionEvent | None:
        """Remove and return the session's last event (``None`` if it has none); its state
        delta stays applied."""
        return self._portal.run(self._target.pop_event(session_id))

    def clear_events(self, session_id: str) -> int:
        """Remove every event of the session's log; how many there were."""
        return self._portal.run(self._target.clear_events(session_id))

    def state(self, session_id: str, *, prefix: str = "") -> dict[str, Any]:
        """Every variable of the session and its value (those whose name starts with
        ``prefix``, read without the others), in name order."""
        return self._portal.run(self._target.state(session_id, prefix=prefix))

    def note_deadlines(self, deadlines: Iterable[tuple[int, Any]]) -> None:
        """Tell the deadline sweeper of a session's deadlines written without the manager
        (an imported archive); it would otherwise wait for its next wake-up."""
        self._portal.run(self._target.note_deadlines(deadlines))

    def handle(self, session_id: str) -> SyncSessionHandle:
        """A handle on one session (checked to be a well-formed id, not to exist)."""
        return SyncSessionHandle(self._target.handle(session_id), self._portal)

    def create(
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
        return self._portal.run(
            self._target.create(
                name=name,
                description=description,
                tags=tags,
                metadata=metadata,
                parent_id=parent_id,
                parent_session_id=parent_session_id,
                config=config,
                budget_of=budget_of,
                key=key,
                app=app,
                user=user,
                state=state,
            )
        )

    def state_at(self, session_id: str, seq: int | None = None) -> SessionState:
        """The session's variables, artifacts and status after journal entry ``seq``."""
        return self._portal.run(self._target.state_at(session_id, seq))

    def replay(self, session_id: str, **config: Any) -> ReplayResult:
        """Replay the journal (``mode``: simulate, exact, modified, debug; ``at``,
        ``modifications``, ``compare_results``, ``stop_on_error``, ``progress``,
        ``steps_from``); the session is not changed."""
        return self._portal.run(self._target.replay(session_id, **config))

    def replay_metadata(self, session_id: str) -> ReplayMetadata:
        """How many journal entries there are, and when the first and last were made."""
        return self._portal.run(self._target.replay_metadata(session_id))

    def can_replay(self, session_id: str) -> bool:
        """Whether the session exists to be replayed."""
        return self._portal.run(self._target.can_replay(session_id))

    def list_replayable(self) -> builtins.list[str]:
        """The ids of every session that can be replayed."""
        return self._portal.run(self._target.list_replayable())

    def fork(
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
        return self._portal.run(
            self._target.fork(session_id, at=at, name=name, budget_of=budget_of, key=key)
        )

    def get(self, session_id: str) -> SessionInfo:
        """The session table of ``session_id``, whatever its status."""
        return self._portal.run(self._target.get(session_id))

    def children(self, session_id: str) -> builtins.list[SessionInfo]:
        """The child sessions of ``session_id``, oldest first."""
        return self._portal.run(self._target.children(session_id))

    def timeline(
        self, session_id: str, *, offset: int = 0, limit: int | None = None
    ) -> builtins.list[JournalEntry]:
        """The session's journal in order, from entry ``offset + 1``, at most ``limit`` entries."""
        return self._portal.run(self._target.timeline(session_id, offset=offset, limit=limit))

    def delete(self, session_id: str, *, cascade: bool = False) -> None:
        """Delete the session; with ``cascade``, every session below it too, in the same
        atomic batch (their live actors are passivated first)."""
        self._portal.run(self._target.delete(session_id, cascade=cascade))

    def update(
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
        return self._portal.run(
            self._target.update(
                session_id,
                name=name,
                description=description,
                tags=tags,
                metadata=metadata,
                config=config,
            )
        )

    def suspend(self, session_id: str) -> None:
        """Active → suspended."""
        self._portal.run(self._target.suspend(session_id))

    def resume(self, session_id: str) -> None:
        """Suspended → active."""
        self._portal.run(self._target.resume(session_id))

    def complete(self, session_id: str) -> None:
        """Active or suspended → completed."""
        self._portal.run(self._target.complete(session_id))

    def fail(self, session_id: str, reason: str | None = None) -> None:
        """Active or suspended → failed, keeping ``reason``."""
        self._portal.run(self._target.fail(session_id, reason))

    def archive(self, session_id: str) -> None:
        """Completed or failed → archived."""
        self._portal.run(self._target.archive(session_id))

    def save(self, session_id: str) -> None:
        """Persist now (every change is already persisted when acknowledged)."""
        self._portal.run(self._target.save(session_id))

    def load(self, session_id: str) -> str:
        """Make the session live (after a restart, for instance); return its id."""
        return self._portal.run(self._target.load(session_id))

    def save_all(self) -> int:
        """Save every live session; how many there were."""
        return self._portal.run(self._target.save_all())

    def restore_recent(self, count: int) -> builtins.list[str]:
        """Make the ``count`` most recently updated sessions live; their ids, newest first."""
        return self._portal.run(self._target.restore_recent(count))

    def set_state(self, session_id: str, key: str, value: Any) -> None:
        """Set variable ``key`` (a JSON-like value; ``None`` is stored as null)."""
        self._portal.run(self._target.set_state(session_id, key, value))

    def get_state(self, session_id: str, key: str) -> Any:
        """Variable ``key``, or ``None`` if unset."""
        return self._portal.run(self._target.get_state(session_id, key))

    def delete_state(self, session_id: str, key: str) -> None:
        """Remove variable ``key`` (no error if unset)."""
        self._portal.run(self._target.delete_state(session_id, key))

    def list_state(self, session_id: str) -> builtins.list[str]:
        """The names of the session's variables."""
        return self._portal.run(self._target.list_state(session_id))

    def check(self, *, fix: bool = False) -> SessionCheckReport:
        """Compare every session with its counters, journal and index entries (see
        ``check_sessions``); ``fix`` rebuilds index entries and drops orphaned data."""
        return self._portal.run(self._target.check(fix=fix))

    def list(self, **filters: Any) -> builtins.list[SessionInfo]:
        """Sessions matching the spec's filters: ``status``, ``tags`` (all), ``parent_session_id``,
        ``search`` (case-insensitive substring of name or description), ``created_after``,
        ``created_before`` (exclusive), ``order_by`` (``created_at``, ``updated_at``, ``name``),
        ``descending``, ``offset``, ``limit``."""
        return self._portal.run(self._target.list(**filters))

    def made_by_scripts_of(self, session_id: str) -> builtins.list[str]:
        """The sessions that scripts of ``session_id`` created or forked (they count against
        its budget)."""
        return self._portal.run(self._target.made_by_scripts_of(session_id))

    def made_by_a_script_of(self, session_id: str, holder_id: str) -> bool:
        """Whether ``session_id`` was created or forked by a script of ``holder_id``."""
        return self._portal.run(self._target.made_by_a_script_of(session_id, holder_id))

    def list_among(self, session_ids: Iterable[str], **filters: Any) -> builtins.list[SessionInfo]:
        """``list`` among ``session_ids`` only: every filter, the order, the page and the time
        it takes as if no other session existed (what a session script may see)."""
        return self._portal.run(self._target.list_among(session_ids, **filters))


@final
class SyncSessionHandle:
    """The blocking face of ``SessionHandle`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: SessionHandle, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncSessionHandle of {self._target!r}>"

    @property
    def id(self) -> str:
        """``SessionHandle.id``."""
        return self._target.id

    def info(self) -> SessionInfo:
        """The session table now."""
        return self._portal.run(self._target.info())

    def suspend(self) -> None:
        """Active → suspended."""
        self._portal.run(self._target.suspend())

    def resume(self) -> None:
        """Suspended → active."""
        self._portal.run(self._target.resume())

    def complete(self) -> None:
        """Active or suspended → completed."""
        self._portal.run(self._target.complete())

    def fail(self, reason: str | None = None) -> None:
        """Active or suspended → failed."""
        self._portal.run(self._target.fail(reason))

    def archive(self) -> None:
        """Completed or failed → archived."""
        self._portal.run(self._target.archive())

    def delete(self, *, cascade: bool = False) -> None:
        """Delete the session (and its descendants with ``cascade``)."""
        self._portal.run(self._target.delete(cascade=cascade))

    def save(self) -> None:
        """Persist now (a no-op kept for compatibility: changes are persisted as made)."""
        self._portal.run(self._target.save())

    def load(self) -> str:
        """Make the session live."""
        return self._portal.run(self._target.load())

    def set_state(self, key: str, value: Any) -> None:
        """Set a variable."""
        self._portal.run(self._target.set_state(key, value))

    def get_state(self, key: str) -> Any:
        """A variable, or ``None``."""
        return self._portal.run(self._target.get_state(key))

    def delete_state(self, key: str) -> None:
        """Remove a variable."""
        self._portal.run(self._target.delete_state(key))

    def list_state(self) -> list[str]:
        """The names of the variables."""
        return self._portal.run(self._target.list_state())

    def children(self) -> list[SessionInfo]:
        """The child sessions, oldest first."""
        return self._portal.run(self._target.children())

    def timeline(self, *, offset: int = 0, limit: int | None = None) -> list[JournalEntry]:
        """The journal, in order."""
        return self._portal.run(self._target.timeline(offset=offset, limit=limit))

    def store_artifact(
        self,
        name: str,
        content: bytes | Iterable[bytes],
        *,
        type: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> ArtifactRef:
        """Store the next version of artifact ``name`` (see ``ArtifactManager.store``)."""
        return self._portal.run(
            self._target.store_artifact(
                name, self._portal.feed(content), type=type, metadata=metadata
            )
        )

    def store_file(
        self, path: str | os.PathLike[str], *, type: str, metadata: Mapping[str, Any] | None = None
    ) -> ArtifactRef:
        """Store a file (under the runtime's ``file_roots``) as an artifact named by its base
        name. The file is read here; on a cluster node its content goes to the session's node."""
        return self._portal.run(self._target.store_file(path, type=type, metadata=metadata))

    def get_artifact(self, artifact: ArtifactSpec, version: int | None = None) -> Artifact:
        """Content and metadata of an artifact of this session."""
        return self._portal.run(self._target.get_artifact(artifact, version))

    def artifact_info(self, artifact: ArtifactSpec, version: int | None = None) -> ArtifactInfo:
        """Metadata of an artifact of this session, without its content."""
        return self._portal.run(self._target.artifact_info(artifact, version))

    def stream_artifact(
        self, artifact: ArtifactSpec, version: int | None = None
    ) -> Iterator[bytes]:
        """The content of an artifact of this session, chunk by chunk."""
        return self._portal.iterate(self._target.stream_artifact(artifact, version))

    def list_artifacts(self) -> list[ArtifactInfo]:
        """The latest version of each artifact name, the earliest stored first."""
        return self._portal.run(self._target.list_artifacts())

    def artifact_versions(self, name: str) -> list[ArtifactInfo]:
        """Every version of ``name``."""
        return self._portal.run(self._target.artifact_versions(name))

    def delete_artifact(self, artifact: ArtifactSpec, version: int | None = None) -> int:
        """Delete one version, or every version of a name; how many went."""
        return self._portal.run(self._target.delete_artifact(artifact, version))

    def query_artifacts(self, **filters: Any) -> list[ArtifactInfo]:
        """Artifacts this session may read (its own and those granted to it) matching the
        filters of ``ArtifactManager.query``."""
        return self._portal.run(self._target.query_artifacts(**filters))

    def share_artifact(
        self, artifact: ArtifactSpec, target_session_id: str, permission: str = "read"
    ) -> None:
        """Grant another session ``permission`` on an artifact of this session."""
        self._portal.run(self._target.share_artifact(artifact, target_session_id, permission))

    def revoke_artifact(self, artifact: ArtifactSpec, target_session_id: str) -> bool:
        """Remove a grant on an artifact of this session; whether there was one."""
        return self._portal.run(self._target.revoke_artifact(artifact, target_session_id))

    def artifact_audit_log(
        self, artifact: ArtifactSpec, *, offset: int = 0, limit: int | None = None
    ) -> list[AuditEntry]:
        """The audit log of an artifact of this session, oldest first."""
        return self._portal.run(
            self._target.artifact_audit_log(artifact, offset=offset, limit=limit)
        )

    @property
    def artifacts(self) -> SyncArtifactManager:
        """``SessionHandle.artifacts``."""
        return SyncArtifactManager(self._target.artifacts, self._portal)

    def state_at(self, seq: int | None = None) -> SessionState:
        """Variables, artifacts and status after journal entry ``seq``."""
        return self._portal.run(self._target.state_at(seq))

    def replay(self, **config: Any) -> ReplayResult:
        """Replay this session's journal (see ``SessionManager.replay``)."""
        return self._portal.run(self._target.replay(**config))

    def replay_metadata(self) -> ReplayMetadata:
        """How many journal entries there are, and when the first and last were made."""
        return self._portal.run(self._target.replay_metadata())

    def fork(self, *, at: int | None = None, name: str | None = None) -> str:
        """A new session with this one's variables and artifacts after entry ``at``."""
        return self._portal.run(self._target.fork(at=at, name=name))
