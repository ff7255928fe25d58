"""What deleting sessions writes: every key of a session, and the sessions below one."""

from __future__ import annotations

from collections.abc import Collection

from satchel.runtime._errors import SessionHasChildrenError
from satchel.storage import Batch, RecordReads, RecordStore, prefix_upper_bound
from satchel.storage import _keys as keys

from .. import _validate as validate
from ..artifacts import _access as access
from ..artifacts import _artifact_index as index
from ..artifacts import _artifact_layout as artifacts
from ..artifacts import _audit as audit
from ..hooks import _schedules as schedules
from . import _session_layout as layout
from ._session_records import SessionRecords


async def descendants(records: RecordReads, sid: bytes) -> list[bytes]:
    """Every session below ``sid`` (``SessionRecords.descendants``), for a caller holding
    only the port."""
    return await SessionRecords(records).descendants(sid)


Drop = tuple[str, bytes]  # (content hash, owner key) of a blob reference to release


async def refuse_escaping_sharers(sessions: SessionRecords, doomed: Collection[bytes]) -> None:
    """Refuse to delete a budget holder while a session not deleted with it counts against
    its budget (that session would escape the budget)."""
    for holder in doomed:
        for sharer in await sessions.sharers(holder):
            if sharer not in doomed:
                raise SessionHasChildrenError(
                    f"session {layout.text_of(sharer)} counts against the budget of session "
                    f"{layout.text_of(holder)}; delete it first"
                )


async def delete_session(
    records: RecordStore,
    sessions: SessionRecords,
    batch: Batch,
    sid: bytes,
    record: layout.SessionRecord,
    counters: layout.Counters,
    doomed: Collection[bytes] = (),
) -> list[Drop]:
    """Add the removal of every key of session ``sid`` to ``batch`` (``sessions`` reads and
    removes its own; its artifacts, grants and schedules are read from ``records``); the
    blob references its artifacts held, to release in the same write (``BlobStore.commit``).
    The operations it counted against a budget holder not deleted with it (``doomed``) stay
    counted there."""
    if record.budget_of is not None and (holder := layout.bytes_of(record.budget_of)) not in doomed:
        # What the holder keeps for it (its creation, counted as one operation), and what
        # its own deleted sharers did.
        values = [
            await sessions.spent_by_sharer(holder, sid),
            *await sessions.spent_by_deleted(sid),
        ]
        operations = sum(int.from_bytes(value, "big") for value in values)
        sessions.add_spent_kept(batch, holder, sid, operations + counters.operations)
    sessions.add_spent_removal(batch, sid)
    drops = []
    for owner, artifact in await artifacts.all_of_session(records, sid):
        drops.append((artifact.content_hash, owner))
        batch.delete(artifacts.id_key(validate.artifact_id(artifact.id)))
        for key in index.keys_of([artifact], [owner[len(keys.ARTIFACT) :]]):
            batch.delete(key)
    await access.drop_for_session(records, batch, sid)
    await schedules.drop_for_session(records, batch, record.id)
    audit_log = audit.session_prefix(sid)
    batch.delete_range(audit_log, prefix_upper_bound(audit_log))
    also = (
        artifacts.session_prefix(sid),
        artifacts.names_prefix(sid),
        artifacts.retired_prefix(sid),
    )
    sessions.add_removal(batch, sid, record, counters, also)
    return drops
