"""What deleting sessions writes: every key of a session, and the sessions below one."""

from __future__ import annotations

from collections.abc import Collection

from satchel.runtime._errors import SessionHasChildrenError
from satchel.storage import Batch, RecordStore, prefix_pairs, prefix_upper_bound
from satchel.storage import _keys as keys

from .. import _validate as validate
from ..artifacts import _access as access
from ..artifacts import _artifact_index as index
from ..artifacts import _artifact_layout as artifacts
from ..artifacts import _audit as audit
from ..hooks import _schedules as schedules
from . import _event_log as event_log
from . import _session_layout as layout


async def descendants(records: RecordStore, sid: bytes) -> list[bytes]:
    """Every session below ``sid``, parents before their children (each once, even if the
    parent links of damaged data loop)."""
    found: list[bytes] = []
    seen = {sid}
    frontier = [sid]
    while frontier:
        parent = frontier.pop()
        for key, _ in await prefix_pairs(records, layout.parent_prefix(parent)):
            child = key[-layout.ID_BYTES :]
            if child not in seen:
                seen.add(child)
                found.append(child)
                frontier.append(child)
    return found


async def first_child(records: RecordStore, sid: bytes) -> bytes | None:
    """One child session of ``sid``, if it has any."""
    entry = await prefix_pairs(records, layout.parent_prefix(sid), limit=1)
    return entry[0][0][-layout.ID_BYTES :] if entry else None


Drop = tuple[str, bytes]  # (content hash, owner key) of a blob reference to release


async def refuse_escaping_sharers(records: RecordStore, doomed: Collection[bytes]) -> None:
    """Refuse to delete a budget holder while a session not deleted with it counts against
    its budget (that session would escape the budget)."""
    for holder in doomed:
        for key, _ in await prefix_pairs(records, layout.budget_prefix(holder)):
            if (sharer := key[-layout.ID_BYTES :]) not in doomed:
                raise SessionHasChildrenError(
                    f"session {layout.text_of(sharer)} counts against the budget of session "
                    f"{layout.text_of(holder)}; delete it first"
                )


async def delete_session(
    records: RecordStore,
    batch: Batch,
    sid: bytes,
    record: layout.SessionRecord,
    counters: layout.Counters,
    doomed: Collection[bytes] = (),
) -> list[Drop]:
    """Add the removal of every key of session ``sid`` to ``batch``; the blob references
    its artifacts held, to release in the same write (``BlobStore.commit``). The operations
    it counted against a budget holder not deleted with it (``doomed``) stay counted there."""
    spent = layout.spent_prefix(sid)
    if record.budget_of is not None and (holder := layout.bytes_of(record.budget_of)) not in doomed:
        key = layout.spent_prefix(holder) + sid  # holds its creation, counted as one operation
        values = [
            await records.get(key) or b"",
            *(v for _, v in await prefix_pairs(records, spent)),
        ]
        operations = sum(int.from_bytes(value, "big") for value in values)
        batch.put(key, layout.u64(operations + counters.operations))
    batch.delete_range(spent, prefix_upper_bound(spent))
    drops = []
    for owner, artifact in await artifacts.all_of_session(records, sid):
        drops.append((artifact.content_hash, owner))
        batch.delete(artifacts.id_key(validate.artifact_id(artifact.id)))
        for key in index.keys_of([artifact], [owner[len(keys.ARTIFACT) :]]):
            batch.delete(key)
    await access.drop_for_session(records, batch, sid)
    await schedules.drop_for_session(records, batch, record.id)
    for prefix in (
        audit.session_prefix(sid),
        layout.var_prefix(sid),
        layout.journal_prefix(sid),
        artifacts.session_prefix(sid),
        artifacts.names_prefix(sid),
        artifacts.retired_prefix(sid),
        event_log.events_prefix(sid),
        event_log.last_key(sid),
    ):
        batch.delete_range(prefix, prefix_upper_bound(prefix))
    for key, _value in layout.index_entries(sid, record):
        batch.delete(key)
    batch.delete(layout.updated_key(sid, counters.updated_us))
    layout.move_deadlines(batch, sid, record.deadlines, ())
    batch.delete(layout.record_key(sid))
    batch.delete(layout.counters_key(sid))
    return drops
