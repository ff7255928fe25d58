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
from satchel.actors.artifacts._artifact_manager import ArtifactManager, ArtifactSpec
from satchel.actors.artifacts._artifact_model import Artifact, ArtifactInfo, ArtifactRef
from satchel.actors.artifacts._audit import AuditEntry


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
        name: str,
        content: bytes | Iterable[bytes],
        *,
        type: str,
        metadata: Mapping[str, Any] | None = None,
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
                name,
                self._portal.feed(content),
                type=type,
                metadata=metadata,
                hook_records=hook_records,
            )
        )

    def store_file(
        self,
        session_id: str | None,
        path: str | os.PathLike[str],
        *,
        type: str,
        metadata: Mapping[str, Any] | None = None,
        anywhere: bool = False,
    ) -> ArtifactRef:
        """Store a file under one of ``file_roots`` (symlinks resolved first; ``anywhere``
        lifts that, for a trusted host script), named by its base name; never one inside the
        data folder. A file that changes size while read fails; nothing is stored."""
        return self._portal.run(
            self._target.store_file(
                session_id, path, type=type, metadata=metadata, anywhere=anywhere
            )
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

    def id_of_content(self, session_id: str | None, content_hash: str, version: int) -> str:
        """The id of the version ``version`` holding ``content_hash`` in the session: what
        rs-llmspell's id tables (``{content_hash, session_id, sequence}``) name."""
        return self._portal.run(self._target.id_of_content(session_id, content_hash, version))

    def delete(
        self, session_id: str | None, artifact: ArtifactSpec, version: int | None = None
    ) -> int:
        """Delete one version (an id, or a name and ``version``) or every version of a name;
        how many versions went."""
        return self._portal.run(self._target.delete(session_id, artifact, version))
