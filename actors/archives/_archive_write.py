"""``export_session``: one session, whole, to a tar stream (see ``_archive_format``).

Consistency: every write to the store happens on the Trio thread as one atomic batch, and
every change to a session is one such batch. The records (session, counters, variables,
journal, artifact versions and names) are therefore read in one synchronous stretch, with
no checkpoint in between: no change of the session can land in the middle, so they are one
consistent view, as a snapshot would give. A live actor holds nothing unwritten (``save``
is a no-op by design), so there is nothing to flush first; calling ``save`` would only wake
the actor and run ``session_save`` hooks, which may journal.

Content is streamed afterwards, chunk by chunk. Stored content never changes, but a version
deleted during the export may take its blob with it; the export then fails with
``ArtifactNotFoundError`` rather than write an archive that is not that view.
"""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime

import anyio
import anyio.lowlevel
import attrs
import blake3
import msgpack

from satchel._version import __version__
from satchel.runtime._errors import (
    AccessDeniedError,
    ArtifactNotFoundError,
    BlobNotFoundError,
    IntegrityError,
    InvalidArgumentError,
    SessionNotFoundError,
)
from satchel.storage import BlobRef, RecordReads, Store

from .. import _validate as validate
from ..artifacts._artifact_manager import ArtifactManager
from ..artifacts._artifact_model import ARTIFACT_CODEC
from ..artifacts._artifact_records import ArtifactRecords
from ..sessions import _session_layout as layout
from ..sessions._manager import SessionManager
from . import _archive_format as fmt
from ._archive_records import ArchiveRecords


@attrs.frozen
class _Snapshot:
    """Everything of one session but its content, as stored at one instant."""

    record: bytes
    counters: bytes
    seq: int
    variables: list[tuple[bytes, bytes]]
    journal: list[tuple[int, bytes]]
    versions: list[bytes]
    names: list[tuple[bytes, bytes]]
    retired: list[tuple[bytes, bytes]]
    blobs: list[BlobRef]  # distinct, in the order versions first name them
    owners: dict[str, list[bytes]]  # content hash -> the version keys that reference it


def check_managers(sessions: object, artifacts: object, store: object) -> ArtifactManager:
    """Refuse arguments that are not a runtime's managers and store; the artifacts one."""
    for value, kind, name in (
        (sessions, SessionManager, "sessions"),
        (artifacts, ArtifactManager, "artifacts"),
        (store, Store, "store"),
    ):
        if not isinstance(value, kind):
            raise InvalidArgumentError(
                f"{name} must be a {kind.__name__} (rt.{name}), not {type(value).__name__}"
            )
    assert isinstance(artifacts, ArtifactManager)
    if artifacts.caller is not None:
        # Archives carry whole sessions: that is the host's business, not a session's.
        raise AccessDeniedError(
            f"session {artifacts.caller} cannot export or import sessions; use rt.artifacts"
        )
    return artifacts


def check_file(value: object, method: str, role: str) -> None:
    """Refuse a ``role`` that is not a binary file object with ``method``."""
    if isinstance(value, io.TextIOBase) or not callable(getattr(value, method, None)):
        kind = "writable" if method == "write" else "readable"
        raise InvalidArgumentError(
            f"{role} must be a {kind} binary file object, not {type(value).__name__}"
        )


def check_progress(progress: object) -> None:
    """Refuse a progress callback that cannot be called."""
    if progress is not None and not callable(progress):
        raise InvalidArgumentError(f"progress must be callable, not {type(progress).__name__}")


async def _snapshot(records: RecordReads, store: Store, session_id: str, sid: bytes) -> _Snapshot:
    """The session's records, read without yielding to any other task on a local store
    (see the module)."""
    stored, artifacts = ArchiveRecords(records), ArtifactRecords(records)
    raw_record, raw_counters = await stored.stored_session(sid)
    if raw_record is None or raw_counters is None:
        raise SessionNotFoundError(f"Session not found: {session_id}")
    seq = layout.Counters.decode(raw_counters).seq
    variables = await stored.stored_variables(sid)
    journal = await stored.stored_journal(sid)
    if [s for s, _ in journal] != list(range(1, seq + 1)):
        raise IntegrityError(
            f"session {session_id}: its journal holds {len(journal)} entries, its counters "
            f"say {seq} (see sessions.check())"
        )
    versions: list[bytes] = []
    blobs: dict[str, BlobRef] = {}
    owners: dict[str, list[bytes]] = {}
    for key, value in await artifacts.stored_versions(sid):
        record = ARTIFACT_CODEC.decode(value)
        versions.append(value)
        owners.setdefault(record.content_hash, []).append(key)
        if record.content_hash not in blobs:
            ref = await store.blobs.info(record.content_hash)
            if ref is None:
                raise IntegrityError(
                    f"session {session_id}: artifact {record.id} names blob "
                    f"{record.content_hash}, which is not stored (see store.check())"
                )
            blobs[record.content_hash] = ref
    names = await artifacts.heads(sid)
    retired = await artifacts.retired(sid)
    return _Snapshot(
        raw_record,
        raw_counters,
        seq,
        variables,
        journal,
        versions,
        names,
        retired,
        list(blobs.values()),
        owners,
    )


def _packed(value: object) -> list[bytes]:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return [data]


def _journal_pieces(journal: list[tuple[int, bytes]]) -> list[bytes]:
    """The journal member as pieces: an array header and one packed pair per entry, so the
    entries are not copied into one more buffer."""
    packer = msgpack.Packer(use_bin_type=True)
    pieces: list[bytes] = [packer.pack_array_header(len(journal))]
    pieces.extend(packer.pack([seq, entry]) for seq, entry in journal)
    return pieces


def _member(name: str, pieces: list[bytes]) -> fmt.Member:
    hasher = blake3.blake3()
    for piece in pieces:
        hasher.update(piece)
    return fmt.Member(name, sum(map(len, pieces)), hasher.hexdigest())


async def export_session(
    sessions: SessionManager,
    artifacts: ArtifactManager,
    store: Store,
    session_id: str,
    sink: fmt.BinarySink,
    *,
    progress: fmt.Progress | None = None,
) -> fmt.ArchiveReport:
    """Write session ``session_id`` to ``sink`` (a writable binary file; it need not seek) as
    a self-contained tar archive: its record, variables, journal, artifact versions and each
    distinct content once, with a manifest of BLAKE3 hashes. ``progress(done, total)`` is
    called as content bytes are written. Grants, shares and audit logs are not exported."""
    check_managers(sessions, artifacts, store)
    check_progress(progress)
    check_file(sink, "write", "sink")
    session_id, sid = validate.session_id(session_id)
    snap = await _snapshot(store.records, store, session_id, sid)
    fixed = {
        fmt.SESSION: _packed({"record": snap.record, "counters": snap.counters}),
        fmt.VARIABLES: _packed([list(pair) for pair in snap.variables]),
        fmt.ARTIFACTS: _packed(
            {
                "versions": snap.versions,
                "names": [list(pair) for pair in snap.names],
                "retired": [list(pair) for pair in snap.retired],
            }
        ),
        fmt.JOURNAL: _journal_pieces(snap.journal),
    }
    total = sum(blob.size for blob in snap.blobs)
    now = time.time()
    manifest = fmt.Manifest(
        session_id=session_id,
        exported_at=datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
        satchel_version=__version__,
        counts={
            "variables": len(snap.variables),
            "journal_entries": snap.seq,
            "artifacts": len(snap.versions),
            "names": len(snap.names),
            "blobs": len(snap.blobs),
        },
        total_bytes=total,
        members=(
            *(_member(name, pieces) for name, pieces in fixed.items()),
            *(fmt.Member(fmt.blob_member(b.hash), b.size, b.hash) for b in snap.blobs),
        ),
    )
    tar = fmt.TarWriter(sink, int(now))
    tar.add(fmt.MANIFEST, [manifest.encode()])
    for name, pieces in fixed.items():
        tar.add(name, pieces)
        await anyio.lowlevel.checkpoint()
    done = 0
    if progress is not None:
        progress(0, total)
    for blob in snap.blobs:
        tar.begin(fmt.blob_member(blob.hash), blob.size)
        try:
            async for chunk in await store.blobs.stream(blob.hash):
                tar.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        except (BlobNotFoundError, IntegrityError) as error:
            if not await ArtifactRecords(store.records).holds_any(snap.owners[blob.hash]):
                raise ArtifactNotFoundError(
                    f"session {session_id}: the artifact versions holding blob {blob.hash} "
                    "were deleted during the export; the output is incomplete, export again"
                ) from error
            raise
        tar.end()
    tar.close()
    return fmt.ArchiveReport(
        session_id=session_id,
        artifacts=len(snap.versions),
        blobs=len(snap.blobs),
        bytes=total,
        journal_entries=snap.seq,
        variables=len(snap.variables),
    )
