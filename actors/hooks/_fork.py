"""What forking a session writes: a new session holding the variables and artifact versions
of another as they were after one journal entry, in one batch.

Artifact content is shared, not copied: each version gets a new id and record in the fork and
one more reference on the same blob. A version deleted from the origin since that entry can no
longer be copied (its metadata, and perhaps its blob, are gone); it is left out and named in
the fork's first journal entry, which also holds the starting state, so the fork replays on
its own.
"""

from __future__ import annotations

from typing import Any

from satchel.storage import ABSENT, Batch, RecordReads
from satchel.storage import _keys as keys

from .. import _validate as validate
from ..artifacts import _artifact_index as index
from ..artifacts import _artifact_layout as artifact_layout
from ..artifacts._artifact_model import ARTIFACT_CODEC, ArtifactRecord
from ..artifacts._artifact_records import ArtifactRecords
from ..sessions import _event_log as event_log
from ..sessions import _session_layout as layout
from ._replay import SessionState

ForkRef = tuple[str, bytes]  # the hash of a blob the fork references, and the owner key


async def fork_batch(
    records: RecordReads,
    state: SessionState,
    record: layout.SessionRecord,
    sid: bytes,
    correlation: str,
    hook_records: list[dict[str, Any]],
) -> tuple[Batch, list[ForkRef], dict[str, Any], dict[str, Any]]:
    """The batch creating session ``record`` from ``state``; the blob references it takes,
    and the data and cause of its first journal entry."""
    now = record.created_us
    batch = Batch()
    copied, refs, missing = await _copy_artifacts(records, state, record.id, sid, batch)
    for key, value in state.variables.items():
        batch.put(layout.var_prefix(sid) + key.encode(), layout.encode_value(value))
    data: dict[str, Any] = {
        "name": record.name,
        "tags": record.tags,
        "parent_session_id": record.parent_id,
        "origin_session_id": state.session_id,
        "origin_seq": state.seq,
        "variables": state.variables,
        "artifacts": [_journal_form(r) for r in copied],
        "missing": missing,
        "correlation_id": correlation,
    }
    if state.last_event:
        data["events"] = [list(event) for event in state.events]
        data["last_event"] = state.last_event
        data["last_event_at"] = state.last_event_at
        log = {p: (at, d) for p, at, d in state.events}
        for log_key, log_value in event_log.rebuilt(
            log, state.last_event, state.last_event_at, sid
        ).items():
            batch.put(log_key, log_value)
    if hook_records:
        data["hooks"] = hook_records
    counters = layout.Counters(1, now, 0, len(copied), sum(r.size for r in copied))
    batch.put(layout.record_key(sid), layout.RECORD_CODEC.encode(record))
    # A keyed fork's counters expect none, as a keyed creation's do (add_created): another
    # process creating the same key at once must not be written over.
    keyed = ABSENT if record.key is not None else None
    batch.put(layout.counters_key(sid), counters.encode(), expect=keyed)
    cause = {"session_id": state.session_id, "seq": state.seq}
    batch.put(layout.journal_key(sid, 1), layout.encode_entry(now, "session_forked", data, cause))
    for index_key, index_value in layout.index_entries(sid, record):
        batch.put(index_key, index_value)
    batch.put(layout.updated_key(sid, now), layout.u64(now))
    layout.move_deadlines(batch, sid, (), record.deadlines)
    return batch, refs, data, cause


async def _copy_artifacts(
    records: RecordReads,
    state: SessionState,
    session_id: str,
    sid: bytes,
    batch: Batch,
) -> tuple[list[ArtifactRecord], list[ForkRef], list[dict[str, Any]]]:
    """Add each still-stored version of ``state`` to the fork; the copies, their blob
    references, and the versions left out."""
    copied: list[ArtifactRecord] = []
    refs: list[ForkRef] = []
    missing: list[dict[str, Any]] = []
    names: dict[bytes, list[ArtifactRecord]] = {}
    puts: list[tuple[bytes, bytes]] = []
    # One scan of the origin's versions rather than a lookup per id; a version still stored
    # holds a reference on its blob, so the blob is there for the fork to reference too.
    origin_sid = validate.session_id(state.session_id)[1]
    stored = {r.id: r for _, r in await ArtifactRecords(records).all_of_session(origin_sid)}
    fresh_ids = iter(validate.new_artifact_ids(len(state.artifacts)))
    for version in state.artifacts:
        origin = stored.get(version.id)
        if origin is None:
            missing.append({"id": version.id, "name": version.name, "version": version.version})
            continue
        text_id, aid = next(fresh_ids)
        copy = ArtifactRecord(
            text_id,
            session_id,
            origin.name,
            origin.version,
            origin.type,
            origin.mime_type,
            origin.description,
            origin.tags,
            origin.custom,
            origin.content_hash,
            origin.size,
            origin.stored_size,
            origin.compressed,
            origin.created_us,
            origin.created_by,
        )
        name = copy.name.encode()
        owner = artifact_layout.record_key(sid, name, copy.version)
        tail = owner[len(keys.ARTIFACT) :]
        puts.append((owner, ARTIFACT_CODEC.encode(copy)))
        puts.append((artifact_layout.id_key(aid), tail))
        puts += index.entries(copy, tail, index.suffix(copy.created_us, aid))
        refs.append((copy.content_hash, owner))
        copied.append(copy)
        names.setdefault(name, []).append(copy)
    for name, versions in names.items():
        latest = max(versions, key=lambda r: r.version)
        first = min(r.created_us for r in versions)
        newest = index.suffix_of(latest)
        puts.append((index.LATEST + newest, b""))
        puts.append(
            (
                artifact_layout.name_key(sid, name),
                artifact_layout.encode_name_value(latest.version, first, newest),
            )
        )
    batch.put_all(puts)
    return copied, refs, missing


def _journal_form(record: ArtifactRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "version": record.version,
        "hash": record.content_hash,
        "size": record.size,
        "type": record.type,
    }
