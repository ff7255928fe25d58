"""``import_session``: verify an archive (see ``_archive_format``) and store its session.

The archive is read once, as a stream. The manifest comes first, so every later member is
checked as it arrives: its name and size against the manifest, then its BLAKE3 hash. The
records come before any content and are checked completely — each decodes, every field that
goes into a key is valid, and counters, journal, versions, names and blobs agree — before a
single content byte is staged. Content is then staged blob by blob (hashed as it streams in,
and refused if it is not the content its name claims); a blob the target already holds is
only hashed, and referenced. Last, every record, index entry and blob reference goes into
one batch, one atomic write. Whatever fails before that write discards the staged content:
nothing is half-stored, and nothing stored before is touched.
"""

from __future__ import annotations

import itertools
import tarfile
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import anyio
import anyio.lowlevel
import attrs
import blake3
import msgpack

from satchel.runtime._errors import (
    IntegrityError,
    InvalidArgumentError,
    SessionExistsError,
    ValidationError,
)
from satchel.storage import Batch, BlobWriter, StagedBlob, Store
from satchel.storage import _keys as keys

from .. import _lifecycle as lifecycle
from .. import _validate as validate
from .._check import OPERATION_KINDS
from ..artifacts import _artifact_index as index
from ..artifacts import _artifact_layout as artifact_layout
from ..artifacts._artifact_manager import ArtifactManager
from ..artifacts._artifact_model import ARTIFACT_CODEC, ArtifactRecord
from ..artifacts._artifact_records import ArtifactRecords
from ..hooks._replay import event_log_of
from ..sessions import _event_log as event_log
from ..sessions import _session_layout as layout
from ..sessions._manager import SessionManager
from ..sessions._query import scope
from ..sessions._session_records import SessionRecords
from . import _archive_format as fmt
from ._archive_records import ArchiveRecords
from ._archive_rename import renamed
from ._archive_write import check_file, check_managers, check_progress

T = TypeVar("T")
_U64_MAX = (1 << 64) - 1
_LAST_US = validate.LAST_US  # every time read back becomes a datetime
_U32_MAX = (1 << 32) - 1
_NIL = "00000000-0000-0000-0000-000000000000"
_WITH_RETIRED = ["names", "retired", "versions"]
#: The kinds the import rebuilds the event log from (checked first).
_EVENT_KINDS = frozenset({"events_appended", "event_popped", "events_cleared", "session_forked"})
_DEADLINES = frozenset(d.value for d in layout.Deadline)


@attrs.define
class _Records:
    """The records of an archive, checked, with their stored bytes."""

    session_id: str
    sid: bytes
    record_raw: bytes = b""
    counters_raw: bytes = b""
    record: layout.SessionRecord | None = None
    counters: layout.Counters = attrs.Factory(layout.Counters)
    variables: list[tuple[bytes, bytes]] = attrs.Factory(list)
    journal: list[tuple[int, bytes]] = attrs.Factory(list)
    versions: list[tuple[bytes, ArtifactRecord]] = attrs.Factory(list)
    names: list[tuple[bytes, bytes]] = attrs.Factory(list)
    retired: list[tuple[bytes, bytes]] = attrs.Factory(list)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise fmt.refuse(message)


def _unpack(name: str, data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise fmt.refuse(f"{name} is not valid msgpack ({error})") from None


def _pairs(name: str, value: object, first: type) -> list[tuple[Any, bytes]]:
    """``value`` checked to be a list of ``[first, bytes]`` pairs."""
    _expect(type(value) is list, f"{name} must hold a list")
    found = []
    for pair in cast(list[Any], value):
        _expect(
            type(pair) is list and len(pair) == 2 and type(pair[0]) is first,
            f"{name} holds a malformed entry",
        )
        _expect(type(pair[1]) is bytes, f"{name} holds a malformed entry")
        found.append((pair[0], pair[1]))
    return found


def _decoded(what: str, decode: Callable[[bytes], T], data: bytes) -> T:
    """``decode(data)``, with a damaged stored form reported as a bad archive."""
    try:
        return decode(data)
    except IntegrityError as error:
        raise fmt.refuse(f"{what}: {error}") from None


def _read_session(records: _Records, data: bytes) -> None:
    body = _unpack(fmt.SESSION, data)
    _expect(
        type(body) is dict
        and sorted(body) == ["counters", "record"]
        and all(type(v) is bytes for v in body.values()),
        f"{fmt.SESSION} must hold the record and counters",
    )
    records.record_raw, records.counters_raw = body["record"], body["counters"]
    record = _decoded("the session record", layout.RECORD_CODEC.decode, body["record"])
    records.counters = _decoded("the counters", layout.Counters.decode, body["counters"])
    _expect(record.id == records.session_id, f"the record is of session {record.id!r:.60}")
    _expect(record.id != _NIL, "the nil UUID names no session")
    _read_scope(record)
    validate.text("session name", record.name, validate.MAX_NAME_BYTES)
    validate.text(
        "session description", record.description, validate.MAX_DESCRIPTION_BYTES, nul_ok=True
    )
    _expect(validate.tags(record.tags) == record.tags, "the session's tags repeat")
    validate.json_like("session metadata", record.metadata)
    if record.parent_id is not None:
        _expect(
            validate.session_id(record.parent_id)[0] == record.parent_id,
            "the parent id is not canonical",
        )
        _expect(record.parent_id != record.id, "the session is its own parent")
    moments = (record.created_us, record.ended_us or 0, records.counters.updated_us)
    for moment in (*moments, *(d for d, _ in record.deadlines)):
        _expect(0 <= moment <= _LAST_US, f"time {moment} is out of range")
    _expect(all(r in _DEADLINES for _, r in record.deadlines), "a deadline has an unknown reason")
    _expect(
        all(lifecycle.deadline_fits(record.status, r) for _, r in record.deadlines),
        f"a deadline does not fit the status {record.status.value!r}",
    )
    records.record = record


def _read_scope(record: layout.SessionRecord) -> None:
    """A record's key, app and user as a store writes them: the key names the record's id."""
    if record.key is not None:
        _expect(
            validate.session_id_for(record.key)[0] == record.id,
            "the session's key does not name its id",
        )
    for field in ("app", "user"):
        value = getattr(record, field)
        if value is not None:
            _expect(value == scope(field, value), f"the session's {field} is malformed")
    _expect(record.user is None or record.app is not None, "the session's user has no app")


def _read_variables(records: _Records, data: bytes) -> None:
    pairs = _pairs(fmt.VARIABLES, _unpack(fmt.VARIABLES, data), bytes)
    # In key order and each once, as the store lists them.
    _expect(
        all(a < b for (a, _), (b, _) in itertools.pairwise(pairs)),
        "variables repeat or are out of order",
    )
    for key, value in pairs:
        try:
            text = key.decode()
        except UnicodeDecodeError:
            raise fmt.refuse(f"variable name {key!r:.80} is not UTF-8") from None
        validate.state_key(text)
        try:
            layout.decode_value(value)
        except (ValueError, TypeError, msgpack.UnpackException):
            raise fmt.refuse(f"variable {text!r} does not decode") from None
    records.variables = pairs


def _read_artifacts(records: _Records, data: bytes) -> None:
    body = _unpack(fmt.ARTIFACTS, data)
    _expect(
        type(body) is dict and sorted(body) in (["names", "versions"], _WITH_RETIRED),
        f"{fmt.ARTIFACTS} must hold the versions and names (and retired names)",
    )
    versions = body["versions"]
    _expect(type(versions) is list, "versions must be a list")
    for raw in versions:
        _expect(type(raw) is bytes, "a version is not a stored record")
        record = _decoded("an artifact record", ARTIFACT_CODEC.decode, raw)
        _check_version(records.session_id, record)
        records.versions.append((raw, record))
    records.names = _pairs("names", body["names"], bytes)
    records.retired = _pairs("retired", body.get("retired", []), bytes)
    live = {name for name, _ in records.names}
    for name, value in records.retired:
        validate.artifact_name(_utf8(name, "a retired name"))
        _expect(name not in live, f"retired name {name!r:.80} still has versions")
        _expect(len(value) == 4 and value != bytes(4), f"retired name {name!r:.80}: bad value")


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise fmt.refuse(f"{what} {data!r:.80} is not UTF-8") from None


def _check_version(session_id: str, record: ArtifactRecord) -> None:
    """Every field of a version that goes into a key or an index must be what a store made."""
    _expect(record.session_id == session_id, f"version {record.id!r:.60} is of another session")
    validate.artifact_id(record.id)
    validate.artifact_name(record.name)
    validate.artifact_type(record.type)
    validate.mime_type(record.mime_type)
    if record.description is not None:
        validate.text("description", record.description, validate.MAX_DESCRIPTION_BYTES)
    _expect(validate.tags(record.tags) == record.tags, f"the tags of {record.id} repeat")
    validate.json_like("custom metadata", record.custom)
    validate.session_id(record.created_by)
    _expect(fmt.is_hash(record.content_hash), f"{record.id}: a malformed content hash")
    _expect(1 <= record.version <= _U32_MAX, f"version number {record.version} is out of range")
    for number in (record.size, record.stored_size):
        _expect(0 <= number <= _U64_MAX, f"{record.id}: {number} is out of range")
    _expect(0 <= record.created_us <= _LAST_US, f"{record.id}: time out of range")


def _read_journal(records: _Records, data: bytes) -> None:
    entries = _pairs(fmt.JOURNAL, _unpack(fmt.JOURNAL, data), int)
    operations = 0
    for expected, (seq, entry) in enumerate(entries, 1):
        _expect(seq == expected, f"journal entry {expected} is missing or out of order")
        try:
            at_us, kind, body, cause = layout.decode_entry_with_cause(entry)
        except (ValueError, TypeError, IndexError, msgpack.UnpackException):
            raise fmt.refuse(f"journal entry {seq} does not decode") from None
        _expect(
            type(at_us) is int and type(kind) is str and type(body) is dict,
            f"journal entry {seq} is malformed",
        )
        _expect(0 <= at_us <= _LAST_US, f"journal entry {seq}: time out of range")
        _expect(cause is None or type(cause) is dict, f"journal entry {seq} is malformed")
        if kind in _EVENT_KINDS:
            try:
                event_log.check_entry(kind, body)
            except ValidationError as error:
                raise fmt.refuse(f"journal entry {seq}: {error}") from None
        operations += kind in OPERATION_KINDS
    records.journal = entries
    counters = records.counters
    _expect(counters.seq == len(entries), "the counters and the journal disagree")
    _expect(counters.operations == operations, "the counters and the journal disagree")


def _check_whole(records: _Records, manifest: fmt.Manifest) -> None:
    """What holds across members: versions, names, counters and blobs agree."""
    counters = records.counters
    versions = [record for _, record in records.versions]
    _expect(
        (counters.artifacts, counters.total_bytes)
        == (len(versions), sum(r.size for r in versions)),
        "the counters and the artifact versions disagree",
    )
    _expect(len({r.id for r in versions}) == len(versions), "an artifact id repeats")
    latest: dict[bytes, ArtifactRecord] = {}
    for record in versions:
        name = record.name.encode()
        before = latest.get(name)
        _expect(before is None or before.version < record.version, "versions are out of order")
        latest[name] = record
    _expect(
        [name for name, _ in records.names] == sorted(latest),
        "the artifact names and versions disagree",
    )
    for name, value in records.names:
        _expect(len(value) == 36, f"the entry of name {name!r:.80} is malformed")
        last, _, newest = artifact_layout.decode_name_value(value)
        _expect(
            last >= latest[name].version and newest == index.suffix_of(latest[name]),
            f"the entry of name {name!r:.80} does not match its versions",
        )
    sizes = {m.name: m.size for m in manifest.blobs}
    for record in versions:
        size = sizes.get(fmt.blob_member(record.content_hash))
        _expect(size == record.size, f"version {record.id} has no blob of its size")
    used = {fmt.blob_member(r.content_hash) for r in versions}
    _expect(used == set(sizes), "the archive carries a blob no version references")
    counts = {
        "variables": len(records.variables),
        "journal_entries": len(records.journal),
        "artifacts": len(versions),
        "names": len(records.names),
        "blobs": len(sizes),
    }
    _expect(counts == manifest.counts, "the manifest's counts do not match the members")


_READERS = {
    fmt.SESSION: _read_session,
    fmt.VARIABLES: _read_variables,
    fmt.ARTIFACTS: _read_artifacts,
    fmt.JOURNAL: _read_journal,
}


class _Import:
    """One import in progress: what it has staged, to commit or discard."""

    def __init__(self, store: Store, progress: fmt.Progress | None, new_id: bool) -> None:
        self.store = store
        self.progress = progress
        self.new_id = new_id
        self.writers: list[BlobWriter] = []
        self.staged: dict[str, StagedBlob] = {}
        self.reused = 0

    async def discard(self) -> None:
        """Drop every chunk staged so far."""
        for writer in self.writers:
            await writer.abort()
        for staged in self.staged.values():
            await self.store.blobs.discard(staged)

    async def read(self, source: fmt.BinarySource) -> tuple[fmt.Manifest, _Records]:
        """Read and check the whole archive, staging its content."""
        with _open_tar(source) as tar:
            members = _members(tar)
            manifest = fmt.parse_manifest(_content(tar, _next(members, fmt.MANIFEST, None)))
            records = _Records(manifest.session_id, layout.bytes_of(manifest.session_id))
            if not self.new_id:
                await _require_absent(self.store, records)
            for expected in manifest.members[: len(fmt.FIXED)]:
                data = _content(tar, _next(members, expected.name, expected.size))
                _expect(_hash(data) == expected.blake3, f"{expected.name} does not match its hash")
                _READERS[expected.name](records, data)
                await anyio.lowlevel.checkpoint()
            _check_whole(records, manifest)
            if self.new_id:
                records = renamed(records)
            await _require_absent(self.store, records)
            done = 0
            if self.progress is not None:
                self.progress(0, manifest.total_bytes)
            for expected in manifest.blobs:
                done = await self._blob(
                    tar, _next(members, expected.name, expected.size), done, manifest.total_bytes
                )
            extra = next(members, None)
            _expect(extra is None, f"unexpected member {extra and extra.name!r:.120}")
        return manifest, records

    async def _blob(
        self, tar: tarfile.TarFile, member: tarfile.TarInfo, done: int, total: int
    ) -> int:
        """Hash one blob member as it streams in, staging it unless the target holds it."""
        digest = fmt.blob_hash(member.name)
        assert digest is not None
        blobs = self.store.blobs
        writer = None if await blobs.info(digest) is not None else blobs.writer()
        if writer is not None:
            self.writers.append(writer)
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        stream = _open(tar, member)
        while piece := _read(stream, blobs.limits.chunk_size):
            hasher.update(piece)
            if writer is not None:
                await writer.add(piece)
            done += len(piece)
            if self.progress is not None:
                self.progress(done, total)
            await anyio.lowlevel.checkpoint()
        if hasher.hexdigest() != digest:
            raise fmt.refuse(f"blob {digest}: its content does not match its content hash")
        if writer is None:
            self.reused += 1
        else:
            self.staged[digest] = await writer.finish()
        return done

    async def commit(self, records: _Records) -> None:
        """Write every record, index entry and blob reference in one batch."""
        record = records.record
        assert record is not None
        sid, counters = records.sid, records.counters
        # Checked again: other tasks ran while the content streamed in.
        await _require_absent(self.store, records)
        batch = Batch()
        batch.put(layout.record_key(sid), records.record_raw)
        batch.put(layout.counters_key(sid), records.counters_raw)
        for key, value in records.variables:
            batch.put(layout.var_prefix(sid) + key, value)
        for seq, entry in records.journal:
            batch.put(layout.journal_key(sid, seq), entry)
        # The event log is derived from the journal, as the indexes are from the records.
        kinds = (layout.decode_entry_with_cause(entry)[1:3] for _, entry in records.journal)
        for log_key, log_value in event_log.rebuilt(*event_log_of(kinds), sid).items():
            batch.put(log_key, log_value)
        for key, value in layout.index_entries(sid, record):
            batch.put(key, value)
        batch.put(layout.updated_key(sid, counters.updated_us), layout.u64(record.created_us))
        layout.move_deadlines(batch, sid, (), record.deadlines)
        refs: list[tuple[StagedBlob | str, bytes]] = []
        latest: dict[bytes, ArtifactRecord] = {}
        for raw, version in records.versions:
            name = version.name.encode()
            owner = artifact_layout.record_key(sid, name, version.version)
            tail = owner[len(keys.ARTIFACT) :]
            batch.put(owner, raw)
            batch.put(artifact_layout.id_key(validate.artifact_id(version.id)), tail)
            for key, value in index.entries(version, tail):
                batch.put(key, value)
            refs.append((self.staged.get(version.content_hash, version.content_hash), owner))
            latest[name] = version
        for name, value in records.names:
            batch.put(artifact_layout.name_key(sid, name), value)
            batch.put(index.LATEST + index.suffix_of(latest[name]), b"")
        for name, value in records.retired:
            batch.put(artifact_layout.retired_key(sid, name), value)
        # Raises before writing anything if a reused blob went meanwhile.
        await self.store.blobs.commit(batch, add=refs)


def _open_tar(source: fmt.BinarySource) -> tarfile.TarFile:
    try:
        # Stream mode: the source is read once, front to back, and never seeks.
        return tarfile.open(fileobj=cast(Any, source), mode="r|")
    except tarfile.TarError as error:
        raise fmt.refuse(f"not a tar archive ({error})") from None


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The archive's members, with tar's own errors reported as a bad archive."""
    iterator = iter(tar)
    while True:
        try:
            member = next(iterator, None)
        except (tarfile.TarError, EOFError) as error:
            raise fmt.refuse(f"the archive is truncated or damaged ({error})") from None
        if member is None:
            return
        yield member


def _next(members: Iterator[tarfile.TarInfo], name: str, size: int | None) -> tarfile.TarInfo:
    """The next member, which must be the regular file ``name`` of ``size`` bytes."""
    member = next(members, None)
    if member is None:
        raise fmt.refuse(f"the archive is truncated: {name} is missing")
    _expect(member.name == name, f"member {member.name!r:.120} is not the expected {name}")
    _expect(member.isreg(), f"member {name} is not a regular file")
    if size is None:
        _expect(member.size <= fmt.MAX_MANIFEST_BYTES, "the manifest is too large")
    else:
        _expect(member.size == size, f"member {name} is {member.size} bytes, not {size}")
    return member


def _open(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Any:
    stream = tar.extractfile(member)
    assert stream is not None  # a regular file
    return stream


def _read(stream: Any, size: int) -> bytes:
    try:
        data: bytes = stream.read(size)
    except (tarfile.TarError, EOFError) as error:
        raise fmt.refuse(f"the archive is truncated ({error})") from None
    return data


def _content(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    data = _read(_open(tar, member), member.size)
    _expect(len(data) == member.size, f"the archive is truncated in {member.name}")
    return data


def _hash(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


async def _require_absent(store: Store, records: _Records) -> None:
    """Refuse a session, or artifact ids, that the target already has."""
    sid, artifacts = records.sid, ArtifactRecords(store.records)
    if await SessionRecords(store.records).has_record(sid):
        raise SessionExistsError(f"session {records.session_id} already exists in the target")
    if await ArchiveRecords(store.records).has_leftovers(sid) or await artifacts.has_any(sid):
        raise SessionExistsError(
            f"session {records.session_id} has leftover data in the target; "
            "run sessions.check(fix=True) first"
        )
    for _, version in records.versions:
        if await artifacts.has_id(validate.artifact_id(version.id)):
            raise SessionExistsError(f"artifact {version.id} already exists in the target")


async def import_session(
    sessions: SessionManager,
    artifacts: ArtifactManager,
    store: Store,
    source: fmt.BinarySource,
    *,
    progress: fmt.Progress | None = None,
    new_id: bool = False,
) -> fmt.ArchiveReport:
    """Verify the archive read from ``source`` (a readable binary file; it need not seek)
    and store its session as it was exported: same id, records, variables, journal and
    artifact versions, with content already stored here shared. ``progress(done, total)``
    is called as content bytes are read. Refuses (``ValidationError``) anything the
    format does not allow, and a session that exists here (``SessionExistsError``). With
    ``new_id`` the session and its artifact versions get fresh ids (the journal names them),
    so an archive can be imported beside its original, or twice."""
    check_managers(sessions, artifacts, store)
    check_progress(progress)
    check_file(source, "read", "source")
    job = _Import(store, progress, new_id)
    try:
        try:
            manifest, records = await job.read(source)
        except InvalidArgumentError as error:
            # Validators call a value of the wrong type an argument error; here it is a
            # value in the archive.
            raise fmt.refuse(str(error)) from None
        await job.commit(records)
    except BaseException:
        with anyio.CancelScope(shield=True):  # cancellation must not cut it short
            await job.discard()
        raise
    record = records.record
    assert record is not None
    await sessions.note_deadlines(record.deadlines)
    parent = record.parent_id
    parent_missing = parent is not None and not await SessionRecords(store.records).has_record(
        layout.bytes_of(parent)
    )
    return fmt.ArchiveReport(
        session_id=record.id,
        artifacts=len(records.versions),
        blobs=len(manifest.blobs),
        bytes=manifest.total_bytes,
        journal_entries=len(records.journal),
        variables=len(records.variables),
        blobs_reused=job.reused,
        parent_missing=parent_missing,
    )
