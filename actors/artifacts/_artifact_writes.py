"""What a session actor writes for its artifacts: staging content, then one batch per store
or delete (records, id and name entries, journal, counters and blob references)."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import attrs

from satchel.runtime import ActorRef
from satchel.runtime._errors import (
    AccessDeniedError,
    ArtifactNotFoundError,
    InvalidArgumentError,
    QuotaExceededError,
    SatchelError,
    ValidationError,
)
from satchel.storage import Batch, RecordReads, StagedBlob, prefix_upper_bound
from satchel.storage import _keys as keys

from .. import _validate as validate
from .._messages import DeleteArtifact, StoreArtifact
from .._model import SessionConfig
from ..sessions._session_layout import Counters
from . import _access as access
from . import _artifact_index as index
from . import _artifact_layout as layout
from . import _audit as audit
from ._artifact_heads import NameState
from ._artifact_model import ARTIFACT_CODEC, ArtifactRecord, ArtifactRef
from ._artifact_records import ArtifactRecords
from ._storage import AbortUpload, AppendUpload, DiscardStaged, FinishUpload, OpenUpload, StageBytes


async def stage(
    storage: ActorRef, content: bytes | AsyncIterable[bytes], budget: Budget
) -> StagedBlob:
    """Hand content to the storage actor: whole, or piece by piece from a stream, stopping
    a stream as soon as it passes the session's byte ``budget``."""
    if isinstance(content, bytes | bytearray | memoryview):
        staged: StagedBlob = await storage.ask(StageBytes(bytes(content)))
        return staged
    upload: int = await storage.ask(OpenUpload())
    try:
        seen = 0
        async for piece in content:
            if not isinstance(piece, bytes | bytearray | memoryview):
                raise InvalidArgumentError(
                    f"artifact content streams bytes, not {type(piece).__name__}"
                )
            seen += len(piece)
            budget.check(seen)
            await storage.ask(AppendUpload(upload, bytes(piece)))
        finished: StagedBlob = await storage.ask(FinishUpload(upload))
        return finished
    except BaseException:
        with anyio.CancelScope(shield=True):
            # If the storage actor is gone, its uploads went with it.
            with contextlib.suppress(SatchelError):
                await storage.ask(AbortUpload(upload))
            if isinstance(content, AsyncGenerator):
                # Finalize the caller's generator now, not whenever the GC gets to it.
                await content.aclose()
        raise


async def discard(storage: ActorRef, staged: StagedBlob) -> None:
    """Drop content staged for a store that did not happen."""
    # If that fails, chunks it wrote stay pending and are removed at the next open.
    with anyio.CancelScope(shield=True), contextlib.suppress(SatchelError):
        await storage.ask(DiscardStaged(staged))


@attrs.frozen
class Budget:
    """The bytes a session may still store (``None``: no limit), to stop a stream early."""

    session_id: str
    left: int | None

    def check(self, size: int) -> None:
        """Raise ``QuotaExceeded`` if ``size`` bytes would not fit."""
        if self.left is not None and size > self.left:
            raise QuotaExceededError(
                f"session {self.session_id} has {self.left} bytes left under max_bytes; "
                f"the content is {size} bytes or more"
            )


def check_quota(session_id: str, config: SessionConfig, counters: Counters, size: int) -> Budget:
    """Refuse a store of ``size`` bytes that would pass a quota; the bytes left after it."""
    if config.max_operations is not None and counters.operations >= config.max_operations:
        raise QuotaExceededError(
            f"session {session_id} has used its {config.max_operations} operations (max_operations)"
        )
    if config.max_artifacts is not None and counters.artifacts >= config.max_artifacts:
        raise QuotaExceededError(
            f"session {session_id} holds {counters.artifacts} artifacts "
            f"(max_artifacts {config.max_artifacts})"
        )
    if config.max_bytes is None:
        return Budget(session_id, None)
    budget = Budget(session_id, config.max_bytes - counters.total_bytes)
    budget.check(size)
    return budget


def store_batch(
    sid: bytes,
    session_id: str,
    message: StoreArtifact,
    staged: StagedBlob,
    now_us: int,
    batch: Batch,
    named: NameState,
) -> tuple[ArtifactRef, dict[str, Any], bytes, bytes]:
    """Add to ``batch`` the staged content as the next version of a name whose head and
    retired key are ``named``; its ref, journal data, owner key and the name's new head."""
    name = message.name.encode()
    if named.head is None:
        # A name deleted whole keeps its last number: a client caching ``version=N`` must
        # never read other bytes under it.
        last, first, latest = layout.decode_retired(named.retired), now_us, None
    else:
        last, first, latest = layout.decode_name_value(named.head)
    version = last + 1
    text_id, aid = validate.new_artifact_id()
    blob = staged.ref
    record = ArtifactRecord(
        id=text_id,
        session_id=session_id,
        name=message.name,
        version=version,
        type=message.type,
        mime_type=message.mime_type,
        description=message.description,
        tags=message.tags,
        custom=message.custom,
        content_hash=blob.hash,
        size=blob.size,
        stored_size=blob.stored_size,
        compressed=blob.compressed,
        created_us=now_us,
        created_by=message.created_by,
    )
    owner = layout.record_key(sid, name, version)
    tail = owner[len(keys.ARTIFACT) :]
    suffix = index.suffix(now_us, aid)
    batch.put(owner, ARTIFACT_CODEC.encode(record))
    batch.put(layout.id_key(aid), tail)
    if latest is not None:
        batch.delete(index.LATEST + latest)
    for key, value in index.entries(record, tail, suffix):
        batch.put(key, value)
    batch.put(index.LATEST + suffix, b"")
    head = layout.encode_name_value(version, first, suffix)
    named.write(batch, sid, name, head)
    ref = ArtifactRef(text_id, session_id, message.name, version, blob.hash, blob.size)
    data = {"id": text_id, "name": message.name, "version": version, "hash": blob.hash}
    data |= {"size": blob.size, "type": message.type}
    return ref, data, owner, head


async def doomed(
    records: RecordReads, sid: bytes, session_id: str, message: DeleteArtifact
) -> list[ArtifactRecord]:
    """The versions ``message`` deletes (``ArtifactNotFound`` if there are none)."""
    artifacts = ArtifactRecords(records)
    if message.artifact_id is not None:
        record = await artifacts.by_id(validate.artifact_id(message.artifact_id))
        found = [] if record is None or record.session_id != session_id else [record]
        what = message.artifact_id
    else:
        assert message.name is not None
        name = message.name.encode()
        if message.version is None:
            found = await artifacts.versions(sid, name)
        else:
            one = await artifacts.by_name(sid, name, message.version)
            found = [] if one is None else [one]
        what = repr(message.name) + (
            "" if message.version is None else f" version {message.version}"
        )
    if not found:
        raise ArtifactNotFoundError(f"Artifact not found: {what} in session {session_id}")
    return found


async def delete_batch(
    reads: RecordReads,
    sid: bytes,
    records: list[ArtifactRecord],
    batch: Batch,
    caller: str | None = None,
) -> tuple[list[tuple[str, bytes]], dict[str, Any]]:
    """Add to ``batch`` the deletion of ``records`` (versions of one name) and the grants
    that die with them; the blob drops and journal data (naming ``caller``, a session deleting
    under a grant: the name's audit log may go with it)."""
    artifacts = ArtifactRecords(reads)
    drops = []
    name = records[0].name.encode()
    owners = [layout.record_key(sid, name, record.version) for record in records]
    for record, owner in zip(records, owners, strict=True):
        batch.delete(owner)
        batch.delete(layout.id_key(validate.artifact_id(record.id)))
        drops.append((record.content_hash, owner))
    for key in index.keys_of(records, (owner[len(keys.ARTIFACT) :] for owner in owners)):
        batch.delete(key)
    going = {r.version for r in records}
    remaining = [r for r in await artifacts.versions(sid, name) if r.version not in going]
    if not remaining:
        # The name is gone: its audit log goes with it (a new artifact of that name must
        # not inherit who read the old one).
        last, _, _ = layout.decode_name_value(await artifacts.head(sid, name) or b"")
        batch.delete(layout.name_key(sid, name))
        batch.put(layout.retired_key(sid, name), layout.encode_retired(last))
        log = audit.prefix_of(sid, name)
        batch.delete_range(log, prefix_upper_bound(log))
    else:
        # Deleting the latest version makes the newest remaining one the latest.
        newest = index.suffix_of(remaining[-1])
        batch.put(index.LATEST + newest, b"")
        named = await artifacts.head(sid, name)
        last, first, _ = layout.decode_name_value(named or b"")
        batch.put(layout.name_key(sid, name), layout.encode_name_value(last, first, newest))
    aids = [validate.artifact_id(r.id) for r in records]
    await access.drop_for_versions(artifacts, batch, sid, name, aids, whole=not remaining)
    gone = [{"id": r.id, "version": r.version, "hash": r.content_hash} for r in records]
    data: dict[str, Any] = {"name": records[0].name, "deleted": gone}
    if caller is not None:
        data["caller"] = caller
    return drops, data


#: How much of a file ``read_file`` reads at a time.
_FILE_PIECE = 1 << 20


async def read_file(raw: BinaryIO, path: Path) -> AsyncIterator[bytes]:
    """The open file's bytes piece by piece; raises if it changes size while being read."""
    expected = os.fstat(raw.fileno()).st_size
    seen = 0
    while piece := await anyio.to_thread.run_sync(raw.read, _FILE_PIECE):
        seen += len(piece)
        if seen > expected:
            break
        yield piece
    if seen != expected or os.fstat(raw.fileno()).st_size != expected:
        raise ValidationError(
            f"{str(path)!r} changed size while it was read ({expected} bytes at first, "
            f"{seen} read); nothing was stored"
        )


def check_allowed(
    real: Path,
    path: str | os.PathLike[str],
    data_folder: Path | None,
    roots: Sequence[Path] | None,
) -> None:
    """``AccessDeniedError`` unless the file really at ``real`` may be stored: never one in
    the data folder, and (``roots`` given) only one under a root."""
    if data_folder is not None and real.is_relative_to(data_folder):
        raise AccessDeniedError(f"{os.fspath(path)!r} is inside the data folder")
    if roots is not None and not any(real.is_relative_to(r) for r in roots):
        raise AccessDeniedError(
            f"{os.fspath(path)!r} is outside the folders files may be stored from "
            f"({', '.join(map(str, roots)) or 'none'})"
        )


def opened_path(fd: int, path: str | os.PathLike[str]) -> Path:
    """Where the file open as ``fd`` is (Linux tells by the descriptor; elsewhere the path is
    resolved again, which a swap between open and check could still fool)."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return Path(path).resolve(strict=True)


def open_allowed(
    path: str | os.PathLike[str], roots: Sequence[Path] | None, data_folder: Path | None
) -> tuple[Path, BinaryIO]:
    """The file at ``path``, open, and where it really is (``check_allowed``: under one of
    ``roots`` if given, never in ``data_folder``). Checked once open, on what was opened: a
    path swapped meanwhile (a symlink put in its place) cannot lead elsewhere."""
    if not isinstance(path, str | os.PathLike):
        raise InvalidArgumentError(f"a file path must be text, not {type(path).__name__}")
    try:
        # Non-blocking: opening a named pipe must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):
        raise ValidationError(f"no readable file at {os.fspath(path)!r}") from None
    try:
        real = opened_path(fd, path)
        check_allowed(real, path, data_folder, roots)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValidationError(f"{os.fspath(path)!r} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return real, os.fdopen(fd, "rb", buffering=0)
