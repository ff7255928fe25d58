"""``SessionHandle``: one session by id, with the manager's operations minus the id.

On a cluster node a handle's calls go through the manager's ``calls`` (``SessionCalls``):
they run here when this node serves the session (or no node does), else at the node that
serves it. The methods marked ``_at_owner`` are those; ``AT_OWNER`` holds their local
implementations, which the serving node runs for a call sent to it.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Mapping,
)
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar, final

from satchel.runtime import ActorRef

from .._messages import GetState, SetState
from .._model import JournalEntry, SessionInfo
from ..artifacts import _artifact_writes as writes
from ..artifacts._artifact_manager import ArtifactManager, ArtifactSpec
from ..artifacts._artifact_model import Artifact, ArtifactInfo, ArtifactRef
from ..artifacts._audit import AuditEntry
from ..hooks._replay import ReplayResult, SessionState

if TYPE_CHECKING:
    from ._history import ReplayMetadata
    from ._manager import SessionManager

P = ParamSpec("P")
T = TypeVar("T")


class SessionCalls(Protocol):
    """Where a cluster node runs a handle's calls: here, or at the node serving the session."""

    async def call(
        self,
        session_id: str,
        method: str,
        arguments: dict[str, Any],
        here: Callable[[], Awaitable[Any]],
    ) -> Any:
        """``method`` with ``arguments`` (by name) on ``session_id``: ``here()`` if this node
        serves it, else sent to the node that does."""

    def stream(
        self,
        session_id: str,
        arguments: dict[str, Any],
        here: Callable[[], AsyncIterator[bytes]],
    ) -> AsyncIterator[bytes]:
        """``stream_artifact`` with ``arguments``, streamed from wherever the session is served."""


#: The handle's methods a cluster node runs where the session is served, by name: their
#: local implementations.
AT_OWNER: dict[str, Callable[..., Awaitable[Any]]] = {}


def _at_owner(
    method: Callable[Concatenate[SessionHandle, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[SessionHandle, P], Coroutine[Any, Any, T]]:
    """Mark ``method`` as one a cluster node runs on the node serving the session: the
    handles of such a node (``RoutedSessionHandle``) route it; a plain handle calls it as
    it is, without a coroutine around it."""
    AT_OWNER[method.__name__] = method
    return method


def _routed(
    name: str, method: Callable[..., Awaitable[Any]]
) -> Callable[..., Coroutine[Any, Any, Any]]:
    """``method`` run where the manager's ``calls`` send it."""
    signature = inspect.signature(method)

    @functools.wraps(method)
    async def call(self: SessionHandle, /, *args: Any, **kwargs: Any) -> Any:
        calls = self._manager.calls
        if calls is None:
            return await method(self, *args, **kwargs)
        arguments = dict(signature.bind(self, *args, **kwargs).arguments)
        del arguments["self"]
        return await calls.call(self.id, name, arguments, lambda: method(self, *args, **kwargs))

    return call


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

    @_at_owner
    async def info(self) -> SessionInfo:
        """The session table now."""
        return await self._manager.get(self.id)

    @_at_owner
    async def suspend(self) -> None:
        """Active → suspended."""
        await self._manager.suspend(self.id)

    @_at_owner
    async def resume(self) -> None:
        """Suspended → active."""
        await self._manager.resume(self.id)

    @_at_owner
    async def complete(self) -> None:
        """Active or suspended → completed."""
        await self._manager.complete(self.id)

    @_at_owner
    async def fail(self, reason: str | None = None) -> None:
        """Active or suspended → failed."""
        await self._manager.fail(self.id, reason)

    @_at_owner
    async def archive(self) -> None:
        """Completed or failed → archived."""
        await self._manager.archive(self.id)

    @_at_owner
    async def delete(self, *, cascade: bool = False) -> None:
        """Delete the session (and its descendants with ``cascade``)."""
        await self._manager.delete(self.id, cascade=cascade)

    @_at_owner
    async def save(self) -> None:
        """Persist now (a no-op kept for compatibility: changes are persisted as made)."""
        await self._manager.save(self.id)

    @_at_owner
    async def load(self) -> str:
        """Make the session live."""
        return await self._manager.load(self.id)

    @_at_owner
    async def set_state(self, key: str, value: Any) -> None:
        """Set a variable."""
        await self._ref.ask(SetState(key, value))

    @_at_owner
    async def get_state(self, key: str) -> Any:
        """A variable, or ``None``."""
        return await self._ref.ask(GetState(key))

    @_at_owner
    async def delete_state(self, key: str) -> None:
        """Remove a variable."""
        await self._manager.delete_state(self.id, key)

    @_at_owner
    async def list_state(self) -> list[str]:
        """The names of the variables."""
        return await self._manager.list_state(self.id)

    @_at_owner
    async def children(self) -> list[SessionInfo]:
        """The child sessions, oldest first."""
        return await self._manager.children(self.id)

    @_at_owner
    async def timeline(self, *, offset: int = 0, limit: int | None = None) -> list[JournalEntry]:
        """The journal, in order."""
        return await self._manager.timeline(self.id, offset=offset, limit=limit)

    @_at_owner
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
        """Store a file (under the runtime's ``file_roots``) as an artifact named by its base
        name. The file is read here; on a cluster node its content goes to the session's node."""
        artifacts = self._artifacts
        real, file = writes.open_allowed(path, artifacts.file_roots, artifacts.data_folder)
        try:  # read as it is stored: the file is closed after
            content = writes.read_file(file, real)
            return await self.store_artifact(real.name, content, type=type, metadata=metadata)
        finally:
            file.close()

    @_at_owner
    async def get_artifact(self, artifact: ArtifactSpec, version: int | None = None) -> Artifact:
        """Content and metadata of an artifact of this session."""
        return await self._artifacts.get(self.id, artifact, version)

    @_at_owner
    async def artifact_info(
        self, artifact: ArtifactSpec, version: int | None = None
    ) -> ArtifactInfo:
        """Metadata of an artifact of this session, without its content."""
        return await self._artifacts.info(self.id, artifact, version)

    def stream_artifact(
        self, artifact: ArtifactSpec, version: int | None = None
    ) -> AsyncIterator[bytes]:
        """The content of an artifact of this session, chunk by chunk."""
        calls = self._manager.calls
        if calls is None:
            return self._artifacts.stream(self.id, artifact, version)
        arguments = {"artifact": artifact, "version": version}
        return calls.stream(
            self.id, arguments, lambda: self._artifacts.stream(self.id, artifact, version)
        )

    @_at_owner
    async def list_artifacts(self) -> list[ArtifactInfo]:
        """The latest version of each artifact name, the earliest stored first."""
        return await self._artifacts.list(self.id)

    @_at_owner
    async def artifact_versions(self, name: str) -> list[ArtifactInfo]:
        """Every version of ``name``."""
        return await self._artifacts.versions(self.id, name)

    @_at_owner
    async def delete_artifact(self, artifact: ArtifactSpec, version: int | None = None) -> int:
        """Delete one version, or every version of a name; how many went."""
        return await self._artifacts.delete(self.id, artifact, version)

    @_at_owner
    async def query_artifacts(self, /, **filters: Any) -> list[ArtifactInfo]:
        """Artifacts this session may read (its own and those granted to it) matching the
        filters of ``ArtifactManager.query``."""
        return await self.artifacts.query(**filters)

    @_at_owner
    async def share_artifact(
        self, artifact: ArtifactSpec, target_session_id: str, permission: str = "read"
    ) -> None:
        """Grant another session ``permission`` on an artifact of this session."""
        await self._artifacts.share(self.id, artifact, target_session_id, permission)

    @_at_owner
    async def revoke_artifact(self, artifact: ArtifactSpec, target_session_id: str) -> bool:
        """Remove a grant on an artifact of this session; whether there was one."""
        return await self._artifacts.revoke(self.id, artifact, target_session_id)

    @_at_owner
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

    @_at_owner
    async def state_at(self, seq: int | None = None) -> SessionState:
        """Variables, artifacts and status after journal entry ``seq``."""
        return await self._manager.state_at(self.id, seq)

    @_at_owner
    async def replay(self, /, **config: Any) -> ReplayResult:
        """Replay this session's journal (see ``SessionManager.replay``)."""
        return await self._manager.replay(self.id, **config)

    @_at_owner
    async def replay_metadata(self) -> ReplayMetadata:
        """How many journal entries there are, and when the first and last were made."""
        return await self._manager.replay_metadata(self.id)

    @_at_owner
    async def fork(self, *, at: int | None = None, name: str | None = None) -> str:
        """A new session with this one's variables and artifacts after entry ``at``."""
        return await self._manager.fork(self.id, at=at, name=name)


@final
class RoutedSessionHandle(SessionHandle):
    """The handle of a cluster node: each ``_at_owner`` method runs on the node serving the
    session (the methods are set below, from ``AT_OWNER``)."""


for _name, _method in AT_OWNER.items():
    setattr(RoutedSessionHandle, _name, _routed(_name, _method))
