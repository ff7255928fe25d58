"""``SessionHandle``: one session by id, with the manager's operations minus the id."""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, final

from satchel.runtime import ActorRef

from .._messages import GetState, SetState
from .._model import JournalEntry, SessionInfo
from ..artifacts._artifact_manager import ArtifactManager, ArtifactSpec
from ..artifacts._artifact_model import Artifact, ArtifactInfo, ArtifactRef
from ..artifacts._audit import AuditEntry
from ..hooks._replay import ReplayResult, SessionState

if TYPE_CHECKING:
    from ._history import ReplayMetadata
    from ._manager import SessionManager


@final
class SessionHandle:
    """One session, by id: the manager's operations without the id argument."""

    def __init__(
        self, manager: SessionManager, artifacts: ArtifactManager, session_id: str, ref: ActorRef
    ) -> None:
        self._manager = manager
        self._artifacts = artifacts
        self._ref = ref  # variables go straight to the actor: the hot path of a handle
        self.id = session_id

    def __repr__(self) -> str:
        return f"<SessionHandle {self.id}>"

    async def info(self) -> SessionInfo:
        """The session table now."""
        return await self._manager.get(self.id)

    async def suspend(self) -> None:
        """Active → suspended."""
        await self._manager.suspend(self.id)

    async def resume(self) -> None:
        """Suspended → active."""
        await self._manager.resume(self.id)

    async def complete(self) -> None:
        """Active or suspended → completed."""
        await self._manager.complete(self.id)

    async def fail(self, reason: str | None = None) -> None:
        """Active or suspended → failed."""
        await self._manager.fail(self.id, reason)

    async def archive(self) -> None:
        """Completed or failed → archived."""
        await self._manager.archive(self.id)

    async def delete(self, *, cascade: bool = False) -> None:
        """Delete the session (and its descendants with ``cascade``)."""
        await self._manager.delete(self.id, cascade=cascade)

    async def save(self) -> None:
        """Persist now (a no-op kept for compatibility: changes are persisted as made)."""
        await self._manager.save(self.id)

    async def load(self) -> str:
        """Make the session live."""
        return await self._manager.load(self.id)

    async def set_state(self, key: str, value: Any) -> None:
        """Set a variable."""
        await self._ref.ask(SetState(key, value))

    async def get_state(self, key: str) -> Any:
        """A variable, or ``None``."""
        return await self._ref.ask(GetState(key))

    async def delete_state(self, key: str) -> None:
        """Remove a variable."""
        await self._manager.delete_state(self.id, key)

    async def list_state(self) -> list[str]:
        """The names of the variables."""
        return await self._manager.list_state(self.id)

    async def children(self) -> list[SessionInfo]:
        """The child sessions, oldest first."""
        return await self._manager.children(self.id)

    async def timeline(self, *, offset: int = 0, limit: int | None = None) -> list[JournalEntry]:
        """The journal, in order."""
        return await self._manager.timeline(self.id, offset=offset, limit=limit)

    async def store_artifact(
        self,
        name: str,
        content: bytes | AsyncIterable[bytes],
        *,
        type: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> ArtifactRef:
        """Store the next version of artifact ``name`` (see ``ArtifactManager.store``)."""
        return await self._artifacts.store(self.id, name, content, type=type, metadata=metadata)

    async def store_file(
        self,
        path: str | os.PathLike[str],
        *,
        type: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> ArtifactRef:
        """Store a file as an artifact named by its base name."""
        return await self._artifacts.store_file(self.id, path, type=type, metadata=metadata)

    async def get_artifact(self, artifact: ArtifactSpec, version: int | None = None) -> Artifact:
        """Content and metadata of an artifact of this session."""
        return await self._artifacts.get(self.id, artifact, version)

    async def artifact_info(
        self, artifact: ArtifactSpec, version: int | None = None
    ) -> ArtifactInfo:
        """Metadata of an artifact of this session, without its content."""
        return await self._artifacts.info(self.id, artifact, version)

    def stream_artifact(
        self, artifact: ArtifactSpec, version: int | None = None
    ) -> AsyncIterator[bytes]:
        """The content of an artifact of this session, chunk by chunk."""
        return self._artifacts.stream(self.id, artifact, version)

    async def list_artifacts(self) -> list[ArtifactInfo]:
        """The latest version of each artifact name, the earliest stored first."""
        return await self._artifacts.list(self.id)

    async def artifact_versions(self, name: str) -> list[ArtifactInfo]:
        """Every version of ``name``."""
        return await self._artifacts.versions(self.id, name)

    async def delete_artifact(self, artifact: ArtifactSpec, version: int | None = None) -> int:
        """Delete one version, or every version of a name; how many went."""
        return await self._artifacts.delete(self.id, artifact, version)

    async def query_artifacts(self, **filters: Any) -> list[ArtifactInfo]:
        """Artifacts this session may read (its own and those granted to it) matching the
        filters of ``ArtifactManager.query``."""
        return await self.artifacts.query(**filters)

    async def share_artifact(
        self, artifact: ArtifactSpec, target_session_id: str, permission: str = "read"
    ) -> None:
        """Grant another session ``permission`` on an artifact of this session."""
        await self._artifacts.share(self.id, artifact, target_session_id, permission)

    async def revoke_artifact(self, artifact: ArtifactSpec, target_session_id: str) -> bool:
        """Remove a grant on an artifact of this session; whether there was one."""
        return await self._artifacts.revoke(self.id, artifact, target_session_id)

    async def artifact_audit_log(
        self, artifact: ArtifactSpec, *, offset: int = 0, limit: int | None = None
    ) -> list[AuditEntry]:
        """The audit log of an artifact of this session, oldest first."""
        return await self._artifacts.audit_log(self.id, artifact, offset=offset, limit=limit)

    @property
    def artifacts(self) -> ArtifactManager:
        """Every session's artifacts as this session sees them: its own with every right,
        others' only as granted."""
        return self._artifacts.as_session(self.id)

    # -- history --------------------------------------------------------------------------

    async def state_at(self, seq: int | None = None) -> SessionState:
        """Variables, artifacts and status after journal entry ``seq``."""
        return await self._manager.state_at(self.id, seq)

    async def replay(self, **config: Any) -> ReplayResult:
        """Replay this session's journal (see ``SessionManager.replay``)."""
        return await self._manager.replay(self.id, **config)

    async def replay_metadata(self) -> ReplayMetadata:
        """How many journal entries there are, and when the first and last were made."""
        return await self._manager.replay_metadata(self.id)

    async def fork(self, *, at: int | None = None, name: str | None = None) -> str:
        """A new session with this one's variables and artifacts after entry ``at``."""
        return await self._manager.fork(self.id, at=at, name=name)
