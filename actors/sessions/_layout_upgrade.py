"""Bringing what an earlier version stored into the current key layout, when a runtime opens.

Earlier versions bucketed the by-update index by the second (``layout.legacy_updated_key``).
Such an entry sorts before every entry of the current layout, whatever its time, so a session
imported (or written while the clock was set back) with an older time would be listed as
newer than it; and a session's writes move only its entry of the current layout. Each is
moved before the runtime serves anything, in pages: one batch a page, each move expecting the
old entry and the session's counters as they were read. A session written meanwhile (by
another process on a shared store) fails its page's batch: its entries are then moved one by
one, each read again. One that another writer keeps changing is left, with a warning, to the
next open (``check`` accepts it meanwhile).
"""

from __future__ import annotations

import logging

from satchel.runtime._errors import IntegrityError, WriteConflictError
from satchel.storage import Batch, Equals, RecordStore

from . import _session_layout as layout

log = logging.getLogger("satchel.sessions")

#: Entries moved by one batch.
PAGE = 256
#: Tries of one entry whose move keeps conflicting.
_ATTEMPTS = 5


async def move_earlier_update_entries(records: RecordStore, page: int = PAGE) -> int:
    """Move every by-update entry of the earlier layout into the current one; how many were
    moved (one whose session has no counters, or damaged ones, is left for ``check``)."""
    lower = layout.BY_UPDATED
    upper = layout.BY_UPDATED + layout.u64(layout.FINE_BUCKETS)
    moved = 0
    while found := await records.scan(lower, upper, limit=page):
        moves = await _moves(records, found)
        try:
            await records.write(_joined(moves))
            moved += len(moves)
        except WriteConflictError:
            for key, _ in found:  # one was written meanwhile: each again, read afresh
                moved += await _move_one(records, key)
        lower = found[-1][0] + b"\x00"
    return moved


async def _move_one(records: RecordStore, key: bytes) -> int:
    """Move the entry ``key`` (1), or find it gone or its session without counters (0)."""
    for _ in range(_ATTEMPTS):
        value = await records.get(key)
        if value is None:
            return 0  # deleted with its session meanwhile
        moves = await _moves(records, [(key, value)])
        if not moves:
            return 0
        try:
            await records.write(moves[0])
            return 1
        except WriteConflictError:
            continue
    log.warning("a by-update entry of an earlier layout kept changing; left: %r", key)
    return 0


async def _moves(records: RecordStore, found: list[tuple[bytes, bytes]]) -> list[Batch]:
    """A batch moving each entry of ``found`` whose session has counters."""
    sids = [key[-layout.ID_BYTES :] for key, _ in found]
    counters = await records.get_many([layout.counters_key(sid) for sid in sids])
    moves = []
    for (key, value), sid, raw in zip(found, sids, counters, strict=True):
        if raw is None:
            continue
        try:
            updated_us = layout.updated_us_of(raw)
        except IntegrityError:
            continue  # damaged counters: left for ``check`` to name (the folder still opens)
        move = Batch()
        move.delete(key, expect=Equals(value))
        move.put(layout.counters_key(sid), raw, expect=Equals(raw))
        move.put(layout.updated_key(sid, updated_us), value)
        moves.append(move)
    return moves


def _joined(moves: list[Batch]) -> Batch:
    joined = Batch()
    for move in moves:
        joined.extend(move)
    return joined
