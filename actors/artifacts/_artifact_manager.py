"""``rt.artifacts``: store, read, list and delete the artifacts of sessions.

Stores and deletes go to the owning session's actor (which stages content with the storage
actor and commits one batch). Reads go straight to the store: every version is immutable
once stored, and a version deleted mid-read reads as ``ArtifactNotFound``.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, final

import anyio
import anyio.lowlevel

from satchel.runtime import ActorRef, Supervisor
from satchel.runtime._errors import (
    AccessDeniedError,
    ArtifactNotFoundError,
    BlobNotFoundError,
    InvalidArgumentError,
    SessionNotActiveError,
    SessionNotFoundError,
    ValidationError,
)
from satchel.storage import BlobStore, RecordStore

from .. import _validate as validate
from .._messages import DeleteArtifact, RecordHooks, RevokeArtifact, ShareArtifact, StoreArtifact
from .._model import SessionStatus
from ..hooks._hooks import HookPoint, Hooks
from ..sessions import _session_layout as session_layout
from ..sessions._session import SESSION_KIND
from ..sessions._session_records import SessionRecords
from . import _access as access
from . import _artifact_layout as layout
from . import _artifact_query as artifact_query
from . import _artifact_reads as reads
from . import _artifact_writes as writes
from ._artifact_model import Artifact, ArtifactInfo, ArtifactRecord, ArtifactRef
from ._artifact_records import ArtifactRecords
from ._audit import AuditEntry, AuditLog

ArtifactSpec = str | ArtifactRef | ArtifactInfo  # an id, a name, or a ref/metadata table
#: Content up to this size is hashed and encoded in the owning session's turn (short enough
#: not to hold up the event loop); larger content goes through the storage actor.
INLINE_MAX = 64 * 1024


@final
class ArtifactManager:
    """Every artifact of a runtime, by session."""

    def __init__(
        self,
        records: RecordStore,
        blobs: BlobStore,
        supervisor: Supervisor,
        storage: ActorRef,
        file_roots: Sequence[str | os.PathLike[str]],
        audit: AuditLog,
        hooks: Hooks,
        caller: str | None = None,
        data_folder: str | os.PathLike[str] | None = None,
        cache: reads.ReadCache | None = None,
    ) -> None:
        self._records = records
        self._artifacts = ArtifactRecords(records)
        self._sessions = SessionRecords(records)
        self._blobs = blobs
        self._supervisor = supervisor
        self._storage = storage
        self._audit = audit
        self._hooks = hooks
        self.file_roots = tuple(Path(root).resolve() for root in file_roots)
        #: Never a source of files, whatever the roots (it holds every session's data).
        self.data_folder = None if data_folder is None else Path(data_folder).resolve()
        #: The session this view acts as (``None``: the host, which may do everything).
        self.caller = caller
        #: Shared by every view of the runtime's artifacts.
        self._cache = reads.ReadCache() if cache is None else cache

    def as_session(self, session_id: str) -> ArtifactManager:
        """This manager acting as session ``session_id``: its own artifacts with every
        right, other sessions' only as granted; ``session_id`` arguments of ``None`` or
        ``""`` mean that session."""
        caller = validate.session_id(session_id)[0]
        return ArtifactManager(
            self._records,
            self._blobs,
            self._supervisor,
            self._storage,
            self.file_roots,
            self._audit,
            self._hooks,
            caller,
            self.data_folder,
            self._cache,
        )

    # -- storing --------------------------------------------------------------------------

    async def store(
        self,
        session_id: str | None,
        name: str,
        content: bytes | AsyncIterable[bytes],
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
        session_id, sid = self._owner(session_id)
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
        fields: dict[str, Any] = {
            "name": name,
            "type": kind,
            "mime_type": mime,
            "description": description,
            "tags": tags,
            "custom": custom,
            "created_by": self.caller or session_id,
            "caller": self.caller,
            "hook_records": tuple(hook_records),
        }
        owner = self._supervisor.ref(SESSION_KIND, session_id)
        inline_max = min(INLINE_MAX, self._blobs.limits.chunk_size)
        if isinstance(content, bytes | bytearray | memoryview) and known <= inline_max:
            # Small content is staged by the session actor itself: nothing is written
            # before its commit, so there is nothing to refuse early or discard.
            inline = StoreArtifact(staged=None, content=bytes(content), **fields)
            ref: ArtifactRef = await owner.ask(inline)
            return ref
        # Refused early from what is stored, so no content is staged for nothing; the
        # session actor decides again (and audits) when it commits.
        if self.caller is not None and self.caller != session_id:
            if not await self._artifacts.name_exists(sid, name.encode()):
                raise AccessDeniedError(
                    f"session {self.caller} may not create artifact {name!r} in session "
                    f"{session_id}"
                )
            await self._authorize_name(
                sid, name, access.Permission.WRITE, "write", None, quiet=True
            )
        budget = await self._writable(sid, session_id, known)
        staged = await writes.stage(self._storage, content, budget)
        try:
            ref = await owner.ask(StoreArtifact(staged=staged, **fields))
        except BaseException:
            await writes.discard(self._storage, staged)
            raise
        return ref

    async def _writable(self, sid: bytes, session_id: str, size: int) -> writes.Budget:
        loaded = (await self._sessions.load([sid]))[0]
        if loaded is None:
            raise SessionNotFoundError(f"Session not found: {session_id}")
        record, counters = loaded
        if record.status is not SessionStatus.ACTIVE:
            raise SessionNotActiveError(
                f"session {session_id} is {record.status.value}; only active sessions accept writes"
            )
        return writes.check_quota(session_id, record.config, counters, size)

    async def store_file(
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
        roots = None if anywhere else self.file_roots
        real, file = writes.open_allowed(path, roots, self.data_folder)
        try:
            content = writes.read_file(file, real)
            return await self.store(session_id, real.name, content, type=type, metadata=metadata)
        finally:
            file.close()

    # -- reading --------------------------------------------------------------------------

    async def get(
        self, session_id: str | None, artifact: ArtifactSpec, version: int | None = None
    ) -> Artifact:
        """Content and metadata of an artifact (by id, or by name and version, default latest)."""
        started = time.perf_counter()
        record = await self._readable(session_id, artifact, version, "get")
        # Kept by hash: the record just read names it, so its blob is there.
        content = self._cache.content(record.content_hash)
        if content is None:
            try:
                content = await self._blobs.read(record.content_hash, referenced=True)
            except BlobNotFoundError:
                raise ArtifactNotFoundError(f"Artifact not found: {record.id} (deleted)") from None
            self._cache.keep(record.content_hash, content)
        if self._hooks.observed:  # no coroutine per read when nothing observes
            await self._read_done(record, "get", started)
        return Artifact(content, layout.to_info(record))

    async def info(
        self, session_id: str | None, artifact: ArtifactSpec, version: int | None = None
    ) -> ArtifactInfo:
        """Metadata only, without reading the content."""
        started = time.perf_counter()
        record = await self._readable(session_id, artifact, version, "info")
        if self._hooks.observed:  # no coroutine per read when nothing observes
            await self._read_done(record, "info", started)
        await anyio.lowlevel.checkpoint()
        return layout.to_info(record)

    async def stream(
        self, session_id: str | None, artifact: ArtifactSpec, version: int | None = None
    ) -> AsyncIterator[bytes]:
        """The content chunk by chunk (each verified before it is yielded)."""
        started = time.perf_counter()
        record = await self._readable(session_id, artifact, version, "stream")
        try:
            chunks = await self._blobs.stream(record.content_hash)
        except BlobNotFoundError:
            raise ArtifactNotFoundError(f"Artifact not found: {record.id} (deleted)") from None
        async with contextlib.aclosing(chunks):  # a reader that stops early closes it now
            async for chunk in chunks:
                yield chunk
        if self._hooks.observed:  # no coroutine per read when nothing observes
            await self._read_done(record, "stream", started)

    async def list(self, session_id: str | None = None) -> builtins.list[ArtifactInfo]:
        """The latest version of each name, the earliest stored name first (of another
        session: those this caller may read)."""
        sid = await self._session(session_id)
        found = await self._artifacts.latest_of_each(sid)
        await anyio.lowlevel.checkpoint()
        return [layout.to_info(r) for r in await self._visible(sid, found)]

    async def versions(self, session_id: str | None, name: str) -> builtins.list[ArtifactInfo]:
        """Every version of ``name``, version 1 first (``ArtifactNotFound`` if none; of
        another session: those this caller may read)."""
        sid = await self._session(session_id)
        name_bytes = validate.artifact_name(name)
        sees_all = self._sees_all(sid)
        if not sees_all:
            await self._refuse_stranger(sid)  # before "not found": a stranger learns no name
        # Versions all visible (the common case) are each read straight into their info.
        infos = await self._artifacts.version_infos(sid, name_bytes) if sees_all else None
        found = await self._artifacts.versions(sid, name_bytes) if infos is None else []
        await anyio.lowlevel.checkpoint()
        if not (infos or found):
            owner = session_layout.text_of(sid)
            raise ArtifactNotFoundError(f"Artifact not found: {name!r} in session {owner}")
        if infos:
            return infos
        visible = [layout.to_info(r) for r in await self._visible(sid, found)]
        if not visible:
            raise AccessDeniedError(
                f"session {self.caller} may read no version of artifact {name!r} of session "
                f"{session_layout.text_of(sid)}"
            )
        return visible

    async def query(self, **filters: Any) -> builtins.list[ArtifactInfo]:
        """Versions matching the spec's filters (``session_id``, ``type``, ``name_pattern``,
        ``tags``, ``metadata``, ``created_after``/``created_before``,
        ``min_size``/``max_size``, ``all_versions``, ``order_by``, ``descending``, ``offset``,
        ``limit``), among those this caller may read. ``tags`` match the artifact's tags;
        ``metadata`` matches custom metadata keys (``tags`` kept there is not a tag)."""
        unknown = sorted(set(filters) - artifact_query.QUERY_FIELDS)
        if unknown:
            raise InvalidArgumentError(f"unknown query fields: {', '.join(unknown)}")
        query = artifact_query.make_query(**filters)
        readable = None
        if self.caller is not None:
            caller = session_layout.bytes_of(self.caller)
            granted = await access.readable_suffixes(self._artifacts, caller)
            readable = artifact_query.Readable(caller, granted)
        found = await artifact_query.run_query(self._artifacts, query, readable)
        await anyio.lowlevel.checkpoint()
        return found

    # -- sharing --------------------------------------------------------------------------

    async def share(
        self,
        session_id: str | None,
        artifact: ArtifactSpec,
        target_session_id: str,
        permission: str = "read",
    ) -> None:
        """Grant ``permission`` (``read``, ``write`` or ``admin``) on an artifact to another
        session: on one version if ``artifact`` is an id, on every version of a name if it
        is a name. Needs ``admin`` (the owner has it)."""
        access.permission(permission)
        session_id = self._owner(session_id)[0]
        message = ShareArtifact(
            target_session_id, permission, *self._subject(artifact), caller=self.caller
        )
        await self._supervisor.ref(SESSION_KIND, session_id).ask(message)

    async def revoke(
        self, session_id: str | None, artifact: ArtifactSpec, target_session_id: str
    ) -> bool:
        """Remove the grant ``share`` made on the same artifact; whether there was one."""
        session_id = self._owner(session_id)[0]
        message = RevokeArtifact(target_session_id, *self._subject(artifact), caller=self.caller)
        removed: bool = await self._supervisor.ref(SESSION_KIND, session_id).ask(message)
        return removed

    async def audit_log(
        self,
        session_id: str | None,
        artifact: ArtifactSpec,
        *,
        offset: int = 0,
        limit: int | None = None,
    ) -> builtins.list[AuditEntry]:
        """The audit log of an artifact's name, oldest first (needs ``admin``)."""
        validate.page(offset, limit)
        record = await self._resolve(session_id, artifact, None)
        owner = validate.session_id(record.session_id)[1]
        # The log covers every version of the name, so a grant on one version is not enough.
        await self._authorize_name(owner, record.name, access.Permission.ADMIN, "audit", record.id)
        entries = await self._audit.read(owner, record.name, offset=offset, limit=limit)
        await anyio.lowlevel.checkpoint()
        return entries

    async def id_of_content(self, session_id: str | None, content_hash: str, version: int) -> str:
        """The id of the version ``version`` holding ``content_hash`` in the session: what
        rs-llmspell's id tables (``{content_hash, session_id, sequence}``) name."""
        sid = await self._session(session_id)
        # Before the search: a caller with no grant there learns nothing, found or not.
        await self._refuse_stranger(sid)
        found = await self._artifacts.by_content(sid, content_hash, _version(version))
        if not found:
            raise ArtifactNotFoundError(
                f"Artifact not found: version {version} holding {content_hash[:16]} in session "
                f"{session_layout.text_of(sid)}"
            )
        if len(found) > 1:
            raise InvalidArgumentError(
                f"{len(found)} artifacts hold that content at version {version}: name it by id"
            )
        return found[0].id

    # -- deleting -------------------------------------------------------------------------

    async def delete(
        self, session_id: str | None, artifact: ArtifactSpec, version: int | None = None
    ) -> int:
        """Delete one version (an id, or a name and ``version``) or every version of a name;
        how many versions went."""
        session_id = self._owner(session_id)[0]
        artifact_id, name = self._subject(artifact)
        if name is not None:
            message = DeleteArtifact(name=name, version=_version(version), caller=self.caller)
        else:
            message = DeleteArtifact(artifact_id=artifact_id, caller=self.caller)
        count: int = await self._supervisor.ref(SESSION_KIND, session_id).ask(message)
        return count

    # -- helpers --------------------------------------------------------------------------

    def _owner(self, session_id: str | None) -> tuple[str, bytes]:
        """The session an operation is about; ``None`` or ``""`` is the caller's own."""
        if session_id is None or session_id == "":
            if self.caller is None:
                raise InvalidArgumentError("a session id is needed: the host has no session")
            session_id = self.caller
        return validate.session_id(session_id)

    async def _session(self, session_id: str | None) -> bytes:
        session_id, sid = self._owner(session_id)
        if not await self._sessions.has_record(sid):
            await self._refuse_stranger(sid)
            raise SessionNotFoundError(f"Session not found: {session_id}")
        return sid

    async def _refuse_stranger(self, sid: bytes) -> None:
        """A caller with no grant in session ``sid`` learns nothing of it: whether it or a
        name exists there, it is refused alike (``AccessDenied``, the same words)."""
        caller = self.caller
        if caller is None:
            return
        caller_sid = session_layout.bytes_of(caller)
        if caller_sid != sid and not await self._artifacts.has_grant_in(caller_sid, sid):
            raise AccessDeniedError(
                f"session {caller} has no grant in session {session_layout.text_of(sid)}"
            )

    @staticmethod
    def _subject(artifact: ArtifactSpec) -> tuple[str | None, str | None]:
        """``(artifact_id, name)`` of an artifact argument, one of them set."""
        if isinstance(artifact, ArtifactRef | ArtifactInfo):
            artifact = artifact.id
        if validate.is_artifact_id(artifact):
            return artifact, None
        validate.artifact_name(artifact)
        return None, artifact

    async def _readable(
        self, session_id: str | None, artifact: ArtifactSpec, version: int | None, how: str
    ) -> ArtifactRecord:
        record = await self._resolve(session_id, artifact, version)
        granted = await self._authorize(record, access.Permission.READ, "read", hold_grant=True)
        if self._hooks.has(HookPoint.ARTIFACT_ACCESSED):
            await self._accessed(record, how)
        if granted:
            # Audited once the hooks let the read go on (a cancelled read was not made).
            await self._audit_decision(record, "read", allowed=True)
        return record

    async def _read_done(self, record: ArtifactRecord, how: str, started: float) -> None:
        """Tell the ``artifact_accessed`` observers a read finished."""
        if self._hooks.observes(HookPoint.ARTIFACT_ACCESSED):
            data = self._read_data(record, how)
            data["duration_us"] = round((time.perf_counter() - started) * 1e6)
            await self._hooks.notify(HookPoint.ARTIFACT_ACCESSED, record.session_id, data)

    def _read_data(self, record: ArtifactRecord, how: str) -> dict[str, Any]:
        """What ``artifact_accessed`` hooks see of a read."""
        return {
            "id": record.id,
            "name": record.name,
            "version": record.version,
            "caller": self.caller,
            "how": how,
        }

    async def _accessed(self, record: ArtifactRecord, how: str) -> None:
        """Run the ``artifact_accessed`` hooks (a cancel refuses the read); their records go
        to the owning session's journal through its actor, which alone appends to it."""
        data = self._read_data(record, how)
        _, records = await self._hooks.run(HookPoint.ARTIFACT_ACCESSED, record.session_id, data)
        if records:
            await self._supervisor.ref(SESSION_KIND, record.session_id).tell(RecordHooks(records))

    async def _authorize(
        self,
        record: ArtifactRecord,
        needed: access.Permission,
        action: str,
        *,
        hold_grant: bool = False,
    ) -> bool:
        """Another session needs a grant; its decision is audited (a granted one left to the
        caller when ``hold_grant``). Whether a granted decision was held back."""
        caller = self.caller
        if caller is None or caller == record.session_id:
            return False
        held = await access.permission_of(self._artifacts, record, session_layout.bytes_of(caller))
        allowed = held is not None and held.allows(needed)
        if allowed and hold_grant:
            return True
        await self._audit_decision(record, action, allowed=allowed)
        if not allowed:
            await self._refuse_stranger(session_layout.bytes_of(record.session_id))
            raise AccessDeniedError(
                f"session {caller} has no {needed.value} grant on artifact {record.name!r} "
                f"of session {record.session_id}"
            )
        return False

    async def _audit_decision(self, record: ArtifactRecord, action: str, *, allowed: bool) -> None:
        await self._audit.write(
            validate.session_id(record.session_id)[1],
            at_us=round(self._supervisor.clock() * 1_000_000),
            caller=self.caller,
            action=action,
            granted=allowed,
            name=record.name,
            artifact_id=record.id,
        )

    async def _authorize_name(
        self,
        owner: bytes,
        name: str,
        needed: access.Permission,
        action: str,
        artifact_id: str | None,
        *,
        quiet: bool = False,
    ) -> None:
        """Another session needs ``needed`` on every version of ``name``; the decision is
        audited (a ``quiet`` one only when refused: the actor audits what it allows)."""
        caller = self.caller
        if caller is None or session_layout.bytes_of(caller) == owner:
            return
        caller_sid = session_layout.bytes_of(caller)
        held = await access.name_permission(self._artifacts, owner, name.encode(), caller_sid)
        allowed = held is not None and held.allows(needed)
        if not allowed or not quiet:
            await self._audit.write(
                owner,
                at_us=round(self._supervisor.clock() * 1_000_000),
                caller=caller,
                action=action,
                granted=allowed,
                name=name,
                artifact_id=artifact_id,
            )
        if not allowed:
            raise AccessDeniedError(
                f"session {caller} has no {needed.value} grant on artifact {name!r} of "
                f"session {session_layout.text_of(owner)}"
            )

    def _sees_all(self, sid: bytes) -> bool:
        """Whether this caller may read every version in session ``sid``."""
        return self.caller is None or session_layout.bytes_of(self.caller) == sid

    async def _visible(
        self, sid: bytes, records: builtins.list[ArtifactRecord]
    ) -> builtins.list[ArtifactRecord]:
        """Of another session's versions, those this caller may read; ``AccessDenied`` if
        it holds no grant in that session at all."""
        caller = self.caller
        if caller is None or self._sees_all(sid):
            return records
        caller_sid = session_layout.bytes_of(caller)
        if not await self._artifacts.has_grant_in(caller_sid, sid):
            raise AccessDeniedError(
                f"session {caller} has no grant in session {session_layout.text_of(sid)}"
            )
        held = [await access.permission_of(self._artifacts, r, caller_sid) for r in records]
        return [r for r, p in zip(records, held, strict=True) if p is not None]

    async def _resolve(
        self, session_id: str | None, artifact: ArtifactSpec, version: int | None
    ) -> ArtifactRecord:
        session_id, sid = self._owner(session_id)
        try:
            artifact_id, name = self._subject(artifact)
            wanted = _version(version)
        except (InvalidArgumentError, ValidationError):
            await self._session(session_id)  # a missing session is reported first
            raise
        # The session's record is read with the artifact's (one round trip, not two).
        if artifact_id is not None:
            aid = validate.artifact_id(artifact_id)
            exists, record = await reads.by_id(self._artifacts, sid, aid)
        else:
            assert name is not None
            exists, record = await reads.by_name(
                self._artifacts, self._cache, sid, name.encode(), wanted
            )
        if not exists:
            await self._refuse_stranger(sid)
            raise SessionNotFoundError(f"Session not found: {session_id}")
        session_id = session_layout.text_of(sid)
        if record is not None and (artifact_id is None or record.session_id == session_id):
            return record
        await self._refuse_stranger(sid)
        if artifact_id is not None:
            raise ArtifactNotFoundError(
                f"Artifact not found: {artifact_id} in session {session_id}"
            )
        which = "" if version is None else f" version {version}"
        raise ArtifactNotFoundError(f"Artifact not found: {name!r}{which} in session {session_id}")


#: Versions are kept in four bytes.
MAX_VERSION = (1 << 32) - 1


def _version(version: object) -> int | None:
    if version is None:
        return None
    if type(version) is not int:
        raise InvalidArgumentError(f"a version must be an integer, not {type(version).__name__}")
    if not 1 <= version <= MAX_VERSION:
        raise ValidationError(f"versions count from 1 to {MAX_VERSION}, not {version}")
    return version
