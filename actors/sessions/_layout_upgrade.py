"""Bringing what an earlier version stored into the current key layout, when a runtime opens.

Earlier versions bucketed the by-update index by the second (``layout.legacy_updated_key``).
Such an entry sorts before every entry of the current layout, whatever its time, so a session
imported (or written while the clock was set back) with an older time would be listed as
newer than it. Each is moved once, in pages: one batch per page, each move expecting the
session's counters and the old entry as they were read, so a session written meanwhile (by
another process on a shared store) is left alone; its next write moves its entry itself (see
``OwnRecords.legacy_entry``).
"""

from __future__ import annotations

from satchel.runtime._errors import WriteConflictError
from satchel.storage import Batch, Equals, RecordStore

from . import _session_layout as layout

#: Entries moved by one batch.
PAGE = 256


async def move_earlier_update_entries(records: RecordStore, page: int = PAGE) -> int:
    """Move every by-update entry of the earlier layout into the current one; how many were
    moved (one whose session has no counters is left for ``check``)."""
    lower = layout.BY_UPDATED
    upper = layout.BY_UPDATED + layout.u64(layout.FINE_BUCKETS)
    moved = 0
    while found := await records.scan(lower, upper, limit=page):
        moves = await _moves(records, found)
        try:
            await records.write(_joined(moves))
            moved += len(moves)
        except WriteConflictError:
            for move in moves:  # one of them was written meanwhile: the others still move
                try:
                    await records.write(move)
                    moved += 1
                except WriteConflictError:
                    pass
        lower = found[-1][0] + b"\x00"
    return moved


async def _moves(records: RecordStore, found: list[tuple[bytes, bytes]]) -> list[Batch]:
    """A batch moving each entry of ``found`` whose session has counters."""
    sids = [key[-layout.ID_BYTES :] for key, _ in found]
    counters = await records.get_many([layout.counters_key(sid) for sid in sids])
    moves = []
    for (key, value), sid, raw in zip(found, sids, counters, strict=True):
        if raw is None:
            continue
        move = Batch()
        move.delete(key, expect=Equals(value))
        move.put(layout.counters_key(sid), raw, expect=Equals(raw))
        move.put(layout.updated_key(sid, layout.updated_us_of(raw)), value)
        moves.append(move)
    return moves


def _joined(moves: list[Batch]) -> Batch:
    joined = Batch()
    for move in moves:
        joined.extend(move)
    return joined
