"""The blocking facade of the runtime, one class per runtime class (``satchel.sync``).

Written by ``python -m tests.sync_api_gen`` from the async classes' own signatures; do
not edit by hand. Every call runs the async method in the runtime's event loop, in the
calling thread, and returns its result; streams come back as iterators of bytes and
content may be given as an iterable of bytes.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, final

from satchel._portal import Portal
from satchel._runtime import Runtime
from satchel.actors._artifact_manager import ArtifactManager, ArtifactSpec
from satchel.actors._artifact_model import Artifact, ArtifactInfo, ArtifactRef
from satchel.actors._audit import AuditEntry
from satchel.actors._builtin_hooks import Metrics, MetricsSummary
from satchel.actors._check import SessionCheckReport
from satchel.actors._collect import Collectors
from satchel.actors._control import (
    ActorInspection,
    CheckResult,
    Control,
    ControlStatistics,
    GcReport,
)
from satchel.actors._handle import SessionHandle
from satchel.actors._history import ReplayMetadata
from satchel.actors._hooks import (
    HookContext,
    HookFunction,
    HookPoint,
    HookRegistration,
    Hooks,
    HookStatistics,
)
from satchel.actors._manager import SessionManager
from satchel.actors._model import JournalEntry, SessionConfig, SessionInfo
from satchel.actors._replay import ReplayResult, SessionState
from satchel.actors._schedules import ReplayRun, Replays, ScheduledReplay
from satchel.actors._session import SESSION_KIND
from satchel.runtime import ActorSpec, ActorStatistics
from satchel.runtime._supervisor import ActorRef
from satchel.scripting import ScriptLimits
from satchel.storage import Durability, Store


@final
class SyncRuntime:
    """The blocking face of ``Runtime`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: Runtime, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncRuntime of {self._target!r}>"

    @property
    def sessions(self) -> SyncSessionManager:
        """``Runtime.sessions``."""
        return SyncSessionManager(self._target.sessions, self._portal)

    @property
    def artifacts(self) -> SyncArtifactManager:
        """``Runtime.artifacts``."""
        return SyncArtifactManager(self._target.artifacts, self._portal)

    @property
    def hooks(self) -> SyncHooks:
        """``Runtime.hooks``."""
        return SyncHooks(self._target.hooks, self._portal)

    @property
    def collectors(self) -> SyncCollectors:
        """``Runtime.collectors``."""
        return SyncCollectors(self._target.collectors, self._portal)

    @property
    def metrics(self) -> SyncMetrics:
        """``Runtime.metrics``."""
        return SyncMetrics(self._target.metrics, self._portal)

    @property
    def replays(self) -> SyncReplays:
        """``Runtime.replays``."""
        return SyncReplays(self._target.replays, self._portal)

    @property
    def control(self) -> SyncControl:
        """``Runtime.control``."""
        return SyncControl(self._target.control, self._portal)

    @property
    def store(self) -> Store:
        """``Runtime.store``."""
        return self._target.store

    @property
    def durability(self) -> Durability:
        """``Runtime.durability``."""
        return self._target.durability

    @property
    def backend(self) -> str:
        """``Runtime.backend``."""
        return self._target.backend

    def run_lua(
        self,
        source: str | bytes,
        *,
        name: str = "script",
        args: Sequence[Any] = (),
        session_id: str | None = None,
        allow_io: bool = False,
        limits: ScriptLimits | None = None,
        output: Callable[[str], None] = print,
    ) -> list[Any]:
        """Run a Lua script (see ``docs/lua.md``); what it returned. A host script runs in a
        fresh sandbox; with ``session_id``, a session script runs in that session's actor.

        ``args`` are the chunk's ``...`` and the global ``ARGS``; ``print`` lines go to
        ``output``; ``allow_io`` gives the script the full ``io`` and ``os`` libraries. An
        uncaught error raises its kind (``ScriptError`` for the script's own), a limit
        ``ScriptLimitExceededError``."""
        return self._portal.run(
            self._target.run_lua(
                source,
                name=name,
                args=args,
                session_id=session_id,
                allow_io=allow_io,
                limits=limits,
                output=output,
            )
        )

    def session(self, session_id: str) -> SyncSessionHandle:
        """A handle on one session (``InvalidArgumentError`` for a malformed id)."""
        return SyncSessionHandle(self._target.session(session_id), self._portal)

    @property
    def path(self) -> Path | None:
        """``Runtime.path``."""
        return self._target.path

    def register(self, spec: ActorSpec) -> None:
        """Make actors of ``spec.kind`` addressable by id."""
        self._target.register(spec)

    def ref(self, kind: str, actor_id: str) -> SyncActorRef:
        """The address of an actor (live or not: sending to it activates it)."""
        return SyncActorRef(self._target.ref(kind, actor_id), self._portal)

    def ask(self, kind: str, actor_id: str, message: Any) -> Any:
        """Send ``message`` to an actor and return its answer."""
        return self._portal.run(self._target.ask(kind, actor_id, message))

    def tell(self, kind: str, actor_id: str, message: Any) -> None:
        """Send ``message`` to an actor without waiting for an answer."""
        self._portal.run(self._target.tell(kind, actor_id, message))

    def actors(self) -> list[ActorStatistics]:
        """Statistics of every live (and failed) actor (``rt.control.actors``)."""
        return self._target.actors()

    def statistics(self) -> ControlStatistics:
        """Counters of the runtime now (``rt.control.statistics``)."""
        return self._target.statistics()

    def check(self, *, fix: bool = False) -> CheckResult:
        """Compare the blob index with its data and the sessions with their indexes
        (``rt.control.check``)."""
        return self._portal.run(self._target.check(fix=fix))


@final
class SyncSessionManager:
    """The blocking face of ``SessionManager`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: SessionManager, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncSessionManager of {self._target!r}>"

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
    ) -> str:
        """Create an active session and return its id (``SessionNotFound`` for a missing parent).

        Every field is optional. ``parent_session_id`` (the spec's name) and ``parent_id``
        are the same field.
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
            )
        )

    def state_at(self, session_id: str, seq: int | None = None) -> SessionState:
        """The session's variables, artifacts and status after journal entry ``seq``."""
        return self._portal.run(self._target.state_at(session_id, seq))

    def replay(self, session_id: str, **config: Any) -> ReplayResult:
        """Replay the journal (``mode``: simulate, exact, modified, debug; ``at``,
        ``modifications``, ``compare_results``, ``stop_on_error``, ``progress``); the
        session is not changed."""
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

    def fork(self, session_id: str, *, at: int | None = None, name: str | None = None) -> str:
        """A new session holding the variables and artifacts ``session_id`` had after
        entry ``at`` (default: now); artifact content is shared, not copied. The
        ``session_start`` hooks run as for a creation (their data names the origin)."""
        return self._portal.run(self._target.fork(session_id, at=at, name=name))

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
        type: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> ArtifactRef:
        """Store the next version of artifact ``name`` (see ``ArtifactManager.store``)."""
        return self._portal.run(
            self._target.store_artifact(name, self._portal.feed(content), type, metadata)
        )

    def store_file(
        self, path: str | os.PathLike[str], type: str, metadata: Mapping[str, Any] | None = None
    ) -> ArtifactRef:
        """Store a file as an artifact named by its base name."""
        return self._portal.run(self._target.store_file(path, type, metadata))

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


@final
class SyncArtifactManager:
    """The blocking face of ``ArtifactManager`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: ArtifactManager, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncArtifactManager of {self._target!r}>"

    def as_session(self, session_id: str) -> SyncArtifactManager:
        """This manager acting as session ``session_id``: its own artifacts with every
        right, other sessions' only as granted; ``session_id`` arguments of ``None`` or
        ``""`` mean that session."""
        return SyncArtifactManager(self._target.as_session(session_id), self._portal)

    def store(
        self,
        session_id: str | None,
        type: str,
        name: str,
        content: bytes | Iterable[bytes],
        metadata: Mapping[str, Any] | None = None,
        *,
        hook_records: Sequence[dict[str, Any]] = (),
    ) -> ArtifactRef:
        """Store ``content`` (bytes or an async iterator of bytes) as the next version of
        ``name`` in the session; ``metadata`` may hold ``mime_type``, ``description``,
        ``tags`` and any other keys (kept as custom metadata). ``hook_records`` (used by the
        collectors) are records of hooks that ran for this store elsewhere: they are
        journaled with it, and not at all if it fails."""
        return self._portal.run(
            self._target.store(
                session_id,
                type,
                name,
                self._portal.feed(content),
                metadata,
                hook_records=hook_records,
            )
        )

    def store_file(
        self,
        session_id: str | None,
        path: str | os.PathLike[str],
        type: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        anywhere: bool = False,
    ) -> ArtifactRef:
        """Store a file under one of ``file_roots`` (symlinks resolved first; ``anywhere``
        lifts that, for a trusted host script), named by its base name; never one inside the
        data folder. A file that changes size while read fails; nothing is stored."""
        return self._portal.run(
            self._target.store_file(session_id, path, type, metadata, anywhere=anywhere)
        )

    def get(
        self, session_id: str | None, artifact: ArtifactSpec, version: int | None = None
    ) -> Artifact:
        """Content and metadata of an artifact (by id, or by name and version, default latest)."""
        return self._portal.run(self._target.get(session_id, artifact, version))

    def info(
        self, session_id: str | None, artifact: ArtifactSpec, version: int | None = None
    ) -> ArtifactInfo:
        """Metadata only, without reading the content."""
        return self._portal.run(self._target.info(session_id, artifact, version))

    def stream(
        self, session_id: str | None, artifact: ArtifactSpec, version: int | None = None
    ) -> Iterator[bytes]:
        """The content chunk by chunk (each verified before it is yielded)."""
        return self._portal.iterate(self._target.stream(session_id, artifact, version))

    def list(self, session_id: str | None = None) -> builtins.list[ArtifactInfo]:
        """The latest version of each name, the earliest stored name first (of another
        session: those this caller may read)."""
        return self._portal.run(self._target.list(session_id))

    def versions(self, session_id: str | None, name: str) -> builtins.list[ArtifactInfo]:
        """Every version of ``name``, version 1 first (``ArtifactNotFound`` if none; of
        another session: those this caller may read)."""
        return self._portal.run(self._target.versions(session_id, name))

    def query(self, **filters: Any) -> builtins.list[ArtifactInfo]:
        """Versions matching the spec's filters (``session_id``, ``type``, ``name_pattern``,
        ``tags``, ``metadata``, ``created_after``/``created_before``,
        ``min_size``/``max_size``, ``all_versions``, ``order_by``, ``descending``, ``offset``,
        ``limit``), among those this caller may read. ``tags`` match the artifact's tags;
        ``metadata`` matches custom metadata keys (``tags`` kept there is not a tag)."""
        return self._portal.run(self._target.query(**filters))

    def share(
        self,
        session_id: str | None,
        artifact: ArtifactSpec,
        target_session_id: str,
        permission: str = "read",
    ) -> None:
        """Grant ``permission`` (``read``, ``write`` or ``admin``) on an artifact to another
        session: on one version if ``artifact`` is an id, on every version of a name if it
        is a name. Needs ``admin`` (the owner has it)."""
        self._portal.run(self._target.share(session_id, artifact, target_session_id, permission))

    def revoke(
        self, session_id: str | None, artifact: ArtifactSpec, target_session_id: str
    ) -> bool:
        """Remove the grant ``share`` made on the same artifact; whether there was one."""
        return self._portal.run(self._target.revoke(session_id, artifact, target_session_id))

    def audit_log(
        self,
        session_id: str | None,
        artifact: ArtifactSpec,
        *,
        offset: int = 0,
        limit: int | None = None,
    ) -> builtins.list[AuditEntry]:
        """The audit log of an artifact's name, oldest first (needs ``admin``)."""
        return self._portal.run(
            self._target.audit_log(session_id, artifact, offset=offset, limit=limit)
        )

    def delete(
        self, session_id: str | None, artifact: ArtifactSpec, version: int | None = None
    ) -> int:
        """Delete one version (an id, or a name and ``version``) or every version of a name;
        how many versions went."""
        return self._portal.run(self._target.delete(session_id, artifact, version))


@final
class SyncCollectors:
    """The blocking face of ``Collectors`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: Collectors, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncCollectors of {self._target!r}>"

    def tool_result(
        self,
        session_id: str,
        tool: str,
        params: Any = None,
        result: Any = None,
        *,
        error: str | None = None,
    ) -> ArtifactRef | None:
        """Report a tool call (its ``result``, or the ``error`` it failed with); the artifact
        collected, or ``None`` if the collection config skipped it."""
        return self._portal.run(
            self._target.tool_result(session_id, tool, params, result, error=error)
        )

    def agent_output(
        self,
        session_id: str,
        agent: str,
        output: Any,
        *,
        model: str | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> ArtifactRef | None:
        """Report an agent's output (text, or any JSON-like value), the model that made it
        and its token usage; the artifact collected, or ``None`` if skipped."""
        return self._portal.run(
            self._target.agent_output(session_id, agent, output, model=model, usage=usage)
        )


@final
class SyncHooks:
    """The blocking face of ``Hooks`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: Hooks, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncHooks of {self._target!r}>"

    def register(
        self,
        point: str | HookPoint,
        function: HookFunction,
        *,
        name: str | None = None,
        priority: int = 0,
        required: bool = False,
        deadline_s: float | None = 1.0,
        phase: str = "before",
        record_input: bool = True,
    ) -> HookRegistration:
        """Run ``function`` (sync or async, taking a ``HookContext``) at ``point``; hooks of
        higher ``priority`` run first. ``name`` (default: the function's qualified name) must
        be unique; it is what the journal records and ``exact`` replay looks up.

        ``phase="after"`` registers an observer instead: it runs once the operation is
        written, sees its data with ``duration_us`` added, and cannot change anything (its
        result is ignored, and it is not journaled); a sync one with ``deadline_s=None`` is
        untimed, and called in batches shortly after (see ``notify_now``). ``record_input=False``
        keeps the input a
        hook saw out of the journal (for a hook that redacts it; ``exact`` replay then cannot
        re-run that hook)."""
        return self._target.register(
            point,
            function,
            name=name,
            priority=priority,
            required=required,
            deadline_s=deadline_s,
            phase=phase,
            record_input=record_input,
        )

    def unregister(self, name: str) -> None:
        """Remove the hook named ``name``."""
        self._target.unregister(name)

    def has(self, point: HookPoint) -> bool:
        """Whether any hook runs at ``point`` (the fast path checks this first)."""
        return self._target.has(point)

    def observes(self, point: HookPoint | None) -> bool:
        """Whether any ``after`` hook runs at ``point``."""
        return self._target.observes(point)

    def waits(self, point: HookPoint) -> bool:
        """Whether an ``after`` hook of ``point`` is async (so ``notify`` must be awaited);
        otherwise ``notify_now`` runs them all without a coroutine."""
        return self._target.waits(point)

    def notify(self, point: HookPoint, session_id: str, data: dict[str, Any]) -> None:
        """Run the ``after`` hooks of ``point``; what they return is ignored, failures and
        overruns are isolated."""
        self._portal.run(self._target.notify(point, session_id, data))

    def notify_now(self, point: HookPoint, session_id: str, data: dict[str, Any]) -> None:
        """``notify`` for a point whose ``after`` hooks are all sync (see ``waits``).

        Where every one of them is untimed (the built-ins), they are called in batches by
        ``drain`` while it runs: calling the same few functions for many operations at once
        costs far less than one call in each operation's turn, whose code is no longer in the
        CPU's caches by then."""
        self._target.notify_now(point, session_id, data)

    def flush(self) -> None:
        """Call the untimed observers of every operation noted since the last flush."""
        self._target.flush()

    def drain(self) -> None:
        """Until cancelled, flush the untimed observers' backlog ``FLUSH_DELAY_S`` after its
        first entry (or as soon as it holds ``BACKLOG_MAX``); afterwards call them at once."""
        self._portal.run(self._target.drain())

    def named(self, name: str) -> HookRegistration | None:
        """The hook registered as ``name``, if any."""
        return self._target.named(name)

    def statistics(self) -> HookStatistics:
        """Executions, cancels, modifications, failures and overruns so far."""
        return self._target.statistics()

    def run(
        self, point: HookPoint, session_id: str, data: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run the hooks of ``point`` in priority order; the (possibly modified) data and a
        record of each execution. Raises ``HookCancelledError`` on a cancel."""
        return self._portal.run(self._target.run(point, session_id, data))

    def decide(
        self, name: str, point: HookPoint, session_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        """What the hook registered as ``name`` decides on ``data`` now, in the form the
        journal records decisions (``missing`` if no such hook, ``failed`` if it raised,
        overran or returned nonsense); for ``exact`` replays."""
        return self._portal.run(self._target.decide(name, point, session_id, data))


@final
class SyncMetrics:
    """The blocking face of ``Metrics`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: Metrics, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncMetrics of {self._target!r}>"

    def observe(self, context: HookContext) -> None:
        """The hook: count one finished operation (and log it, at debug level)."""
        self._target.observe(context)

    def summary(self, session_id: str) -> MetricsSummary:
        """One session's counts."""
        return self._target.summary(session_id)

    def aggregate(self) -> MetricsSummary:
        """Every session's counts added up (deleted sessions' included)."""
        return self._target.aggregate()

    def forget(self, session_id: str) -> None:
        """Fold a deleted session's counts into those of deleted sessions: ``aggregate``
        keeps them, ``summary`` and ``export`` no longer name the session."""
        self._target.forget(session_id)

    def export(self) -> dict[str, Any]:
        """Plain data of every session's counts, keyed by session id, or by a keyed hash of
        it in privacy mode."""
        return self._target.export()

    def reset(self) -> None:
        """Forget every count."""
        self._target.reset()


@final
class SyncControl:
    """The blocking face of ``Control`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: Control, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncControl of {self._target!r}>"

    def actors(self, kind: str | None = None) -> builtins.list[ActorStatistics]:
        """Every live (and failed) actor, of one kind if given, least recently active first."""
        return self._target.actors(kind)

    def inspect(self, actor_id: str, kind: str = SESSION_KIND) -> ActorInspection:
        """An actor's counters (``None`` when it is not live) and, for a session, its record;
        ``ActorNotFoundError`` when it is neither live nor a session."""
        return self._portal.run(self._target.inspect(actor_id, kind))

    def statistics(self) -> ControlStatistics:
        """Counters of the runtime now (hooks flushed first)."""
        return self._target.statistics()

    def suspend(self, session_id: str) -> None:
        """Suspend an active session."""
        self._portal.run(self._target.suspend(session_id))

    def resume(self, session_id: str) -> None:
        """Resume a suspended session."""
        self._portal.run(self._target.resume(session_id))

    def complete(self, session_id: str) -> None:
        """Complete an active or suspended session."""
        self._portal.run(self._target.complete(session_id))

    def fail(self, session_id: str, reason: str | None = None) -> None:
        """Fail an active or suspended session, with a reason."""
        self._portal.run(self._target.fail(session_id, reason))

    def passivate(self, actor_id: str, kind: str = SESSION_KIND) -> None:
        """Ask a live actor to flush and leave memory after its current turn (the next
        message activates it again); ``ActorNotFoundError`` when it is not live."""
        self._target.passivate(actor_id, kind)

    def restart(self, actor_id: str, kind: str = SESSION_KIND) -> None:
        """Ask a live actor to restart from its stored state after its current turn."""
        self._target.restart(actor_id, kind)

    def stop(self, actor_id: str, kind: str = SESSION_KIND) -> None:
        """Passivate a live actor and return once it is gone (its state flushed)."""
        self._portal.run(self._target.stop(actor_id, kind))

    def clear_failure(self, actor_id: str, kind: str = SESSION_KIND) -> None:
        """Forget that an actor failed, so its next message activates it again."""
        self._target.clear_failure(actor_id, kind)

    def schedules(self, session_id: str | None = None) -> builtins.list[ScheduledReplay]:
        """Every scheduled replay (of one session, if given)."""
        return self._portal.run(self._target.schedules(session_id))

    def schedule_replay(self, session_id: str, **options: Any) -> str:
        """Schedule a replay (options as ``rt.replays.schedule``); the schedule's id."""
        return self._portal.run(self._target.schedule_replay(session_id, **options))

    def cancel_schedule(self, schedule_id: str) -> bool:
        """Stop a schedule; whether it existed."""
        return self._portal.run(self._target.cancel_schedule(schedule_id))

    def schedule_results(self, schedule_id: str) -> builtins.list[ReplayRun]:
        """The kept runs of a schedule, oldest first."""
        return self._portal.run(self._target.schedule_results(schedule_id))

    def check(self, *, fix: bool = False) -> CheckResult:
        """Compare blob index and blob data, and sessions with their indexes; ``fix``
        repairs what can be repaired."""
        return self._portal.run(self._target.check(fix=fix))

    def gc(self) -> GcReport:
        """Passivate every idle session actor, run ``check(fix=True)`` on the blob store
        (which frees chunks no blob owns, left by uploads a crash cut short), and compact the
        key-value store."""
        return self._portal.run(self._target.gc())


@final
class SyncReplays:
    """The blocking face of ``Replays`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: Replays, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncReplays of {self._target!r}>"

    def schedule(
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
        return self._portal.run(
            self._target.schedule(
                session_id,
                when=when,
                every_s=every_s,
                mode=mode,
                at=at,
                modifications=modifications,
                compare_results=compare_results,
            )
        )

    def cancel(self, schedule_id: str) -> bool:
        """Stop a schedule (its kept results go too); whether it existed."""
        return self._portal.run(self._target.cancel(schedule_id))

    def list(self, session_id: str | None = None) -> builtins.list[ScheduledReplay]:
        """Every schedule (of one session, if given)."""
        return self._portal.run(self._target.list(session_id))

    def results(self, schedule_id: str) -> builtins.list[ReplayRun]:
        """The kept runs of a schedule, oldest first."""
        return self._portal.run(self._target.results(schedule_id))


@final
class SyncActorRef:
    """The blocking face of ``ActorRef`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: ActorRef, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncActorRef of {self._target!r}>"

    @property
    def kind(self) -> str:
        """``ActorRef.kind``."""
        return self._target.kind

    @property
    def actor_id(self) -> str:
        """``ActorRef.actor_id``."""
        return self._target.actor_id

    def tell(self, message: Any) -> None:
        """Send ``message``, waiting while the mailbox is full; no answer."""
        self._portal.run(self._target.tell(message))

    def try_tell(self, message: Any) -> None:
        """Send ``message``, raising ``MailboxFullError`` rather than waiting for room."""
        self._portal.run(self._target.try_tell(message))

    def ask(self, message: Any) -> Any:
        """Send ``message`` and wait for the actor's answer (or its error).

        The caller sets any deadline (``anyio.fail_after``); a late answer is dropped. An
        actor that asks itself from within its turn gets its answer inline.
        """
        return self._portal.run(self._target.ask(message))
