"""``rt.artifacts``: store, read, list and delete the artifacts of sessions.

Stores and deletes go to the owning session's actor (which stages content with the storage
actor and commits one batch). Reads go straight to the store: every version is immutable
once stored, and a version deleted mid-read reads as ``ArtifactNotFound``.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, final

import trio
from satchel.runtime import ActorRef, Supervisor
from satchel.storage import BlobStore, KeyValueStore

from satchel._errors import (
    AccessDeniedError,
    ArtifactNotFoundError,
    BlobNotFoundError,
    InvalidArgumentError,
    SessionNotActiveError,
    SessionNotFoundError,
    ValidationError,
)

from . import _artifact_layout as layout
from . import _artifact_writes as writes
from . import _layout as session_layout
from . import _validate as validate
from ._artifact_model import Artifact, ArtifactInfo, ArtifactRecord, ArtifactRef
from ._messages import DeleteArtifact, StoreArtifact
from ._model import SessionStatus
from ._query import load
from ._session import SESSION_KIND

ArtifactSpec = str | ArtifactRef | ArtifactInfo  # an id, a name, or a ref/metadata table
_FILE_PIECE = 1 << 20


@final
class ArtifactManager:
    """Every artifact of a runtime, by session."""

    def __init__(
        self,
        kv: KeyValueStore,
        blobs: BlobStore,
        supervisor: Supervisor,
        storage: ActorRef,
        file_roots: Sequence[str | os.PathLike[str]],
    ) -> None:
        self._kv = kv
        self._blobs = blobs
        self._supervisor = supervisor
        self._storage = storage
        self.file_roots = tuple(Path(root).resolve() for root in file_roots)

    # -- storing --------------------------------------------------------------------------

    async def store(
        self,
        session_id: str,
        type: str,
        name: str,
        content: bytes | AsyncIterable[bytes],
        metadata: Mapping[str, Any] | None = None,
    ) -> ArtifactRef:
        """Store ``content`` (bytes or an async iterator of bytes) as the next version of
        ``name`` in the session; ``metadata`` may hold ``mime_type``, ``description``,
        ``tags`` and any other keys (kept as custom metadata)."""
        session_id, sid = validate.session_id(session_id)
        known = 0
        if isinstance(content, bytes | bytearray | memoryview):
            known = len(content)
        elif not isinstance(content, AsyncIterable):
            raise InvalidArgumentError(
                f"artifact content must be bytes or an async iterator of bytes, "
                f"not {builtins.type(content).__name__}"
            )
        validate.artifact_name(name)
        kind = validate.artifact_type(type)
        mime, description, tags, custom = layout.split_metadata(name, metadata)
        # Refused early from the stored counters, so no content is staged for nothing; the
        # session actor checks again when it commits.
        budget = self._writable(sid, session_id, known)
        staged = await writes.stage(self._storage, content, budget)
        message = StoreArtifact(
            name=name,
            type=kind,
            staged=staged,
            mime_type=mime,
            description=description,
            tags=tags,
            custom=custom,
            created_by=session_id,
        )
        try:
            ref: ArtifactRef = await self._supervisor.ref(SESSION_KIND, session_id).ask(message)
        except BaseException:
            await writes.discard(self._storage, staged)
            raise
        return ref

    def _writable(self, sid: bytes, session_id: str, size: int) -> writes.Budget:
        loaded = load(self._kv, [sid])[0]
        if loaded is None:
            raise SessionNotFoundError(f"no session {session_id}")
        record, counters = loaded
        if record.status is not SessionStatus.ACTIVE:
            raise SessionNotActiveError(
                f"session {session_id} is {record.status.value}; only active sessions accept writes"
            )
        return writes.check_quota(session_id, record.config, counters, size)

    async def store_file(
        self,
        session_id: str,
        path: str | os.PathLike[str],
        type: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> ArtifactRef:
        """Store a file under one of ``file_roots`` (symlinks resolved first), named by its
        base name. A file that changes size while read fails; nothing is stored."""
        resolved = self._allowed_file(path)
        return await self.store(session_id, type, resolved.name, _read_file(resolved), metadata)

    def _allowed_file(self, path: str | os.PathLike[str]) -> Path:
        if not isinstance(path, str | os.PathLike):
            raise InvalidArgumentError(
                f"a file path must be text, not {builtins.type(path).__name__}"
            )
        try:
            resolved = Path(path).resolve(strict=True)
        except (OSError, RuntimeError):
            raise ValidationError(f"no readable file at {os.fspath(path)!r}") from None
        if not any(resolved.is_relative_to(root) for root in self.file_roots):
            raise AccessDeniedError(
                f"{os.fspath(path)!r} is outside the folders files may be stored from "
                f"({', '.join(map(str, self.file_roots)) or 'none'})"
            )
        if not resolved.is_file():
            raise ValidationError(f"{os.fspath(path)!r} is not a regular file")
        return resolved

    # -- reading --------------------------------------------------------------------------

    async def get(
        self, session_id: str, artifact: ArtifactSpec, version: int | None = None
    ) -> Artifact:
        """Content and metadata of an artifact (by id, or by name and version, default latest)."""
        record = self._resolve(session_id, artifact, version)
        try:
            content = await self._blobs.read(record.content_hash)
        except BlobNotFoundError:
            raise ArtifactNotFoundError(f"artifact {record.id} was deleted") from None
        return Artifact(content, layout.to_info(record))

    async def info(
        self, session_id: str, artifact: ArtifactSpec, version: int | None = None
    ) -> ArtifactInfo:
        """Metadata only, without reading the content."""
        record = self._resolve(session_id, artifact, version)
        await trio.lowlevel.checkpoint()
        return layout.to_info(record)

    async def stream(
        self, session_id: str, artifact: ArtifactSpec, version: int | None = None
    ) -> AsyncIterator[bytes]:
        """The content chunk by chunk (each verified before it is yielded)."""
        record = self._resolve(session_id, artifact, version)
        try:
            chunks = self._blobs.stream(record.content_hash)
        except BlobNotFoundError:
            raise ArtifactNotFoundError(f"artifact {record.id} was deleted") from None
        async for chunk in chunks:
            yield chunk

    async def list(self, session_id: str) -> builtins.list[ArtifactInfo]:
        """The latest version of each name, the earliest stored name first."""
        sid = self._session(session_id)
        found = [layout.to_info(r) for r in layout.latest_of_each(self._kv, sid)]
        await trio.lowlevel.checkpoint()
        return found

    async def versions(self, session_id: str, name: str) -> builtins.list[ArtifactInfo]:
        """Every version of ``name``, version 1 first (``ArtifactNotFound`` if none)."""
        sid = self._session(session_id)
        found = layout.versions(self._kv, sid, validate.artifact_name(name))
        await trio.lowlevel.checkpoint()
        if not found:
            raise ArtifactNotFoundError(f"no artifact {name!r} in session {session_id}")
        return [layout.to_info(r) for r in found]

    # -- deleting -------------------------------------------------------------------------

    async def delete(
        self, session_id: str, artifact: ArtifactSpec, version: int | None = None
    ) -> int:
        """Delete one version (an id, or a name and ``version``) or every version of a name;
        how many versions went."""
        session_id = validate.session_id(session_id)[0]
        if isinstance(artifact, ArtifactRef | ArtifactInfo):
            artifact = artifact.id
        if validate.is_artifact_id(artifact):
            message = DeleteArtifact(artifact_id=artifact)
        else:
            validate.artifact_name(artifact)
            message = DeleteArtifact(name=artifact, version=_version(version))
        count: int = await self._supervisor.ref(SESSION_KIND, session_id).ask(message)
        return count

    # -- helpers --------------------------------------------------------------------------

    def _session(self, session_id: str) -> bytes:
        session_id, sid = validate.session_id(session_id)
        if self._kv.get(session_layout.record_key(sid)) is None:
            raise SessionNotFoundError(f"no session {session_id}")
        return sid

    def _resolve(
        self, session_id: str, artifact: ArtifactSpec, version: int | None
    ) -> ArtifactRecord:
        sid = self._session(session_id)
        session_id = session_layout.text_of(sid)
        if isinstance(artifact, ArtifactRef | ArtifactInfo):
            artifact = artifact.id
        if validate.is_artifact_id(artifact):
            record = layout.by_id(self._kv, validate.artifact_id(artifact))
            if record is None or record.session_id != session_id:
                raise ArtifactNotFoundError(f"no artifact {artifact} in session {session_id}")
            return record
        name = validate.artifact_name(artifact)
        found = layout.by_name(self._kv, sid, name, _version(version))
        if found is None:
            which = "" if version is None else f" version {version}"
            raise ArtifactNotFoundError(f"no artifact {artifact!r}{which} in session {session_id}")
        return found


def _version(version: object) -> int | None:
    if version is None:
        return None
    if type(version) is not int:
        raise InvalidArgumentError(f"a version must be an integer, not {type(version).__name__}")
    if version < 1:
        raise ValidationError(f"versions count from 1, not {version}")
    return version


async def _read_file(path: Path) -> AsyncIterator[bytes]:
    """The file's bytes piece by piece; raises if it changes size while being read."""
    async with await trio.open_file(path, "rb") as file:
        expected = os.fstat(file.fileno()).st_size
        seen = 0
        while piece := await file.read(_FILE_PIECE):
            seen += len(piece)
            if seen > expected:
                break
            yield piece
        if seen != expected or os.fstat(file.fileno()).st_size != expected:
            raise ValidationError(
                f"{str(path)!r} changed size while it was read ({expected} bytes at first, "
                f"{seen} read); nothing was stored"
            )
