"""The sessions' repository over the record port: what the sessions package reads and writes,
named for what it means (a session's record and counters, its variables, journal and event
log, the sessions below it, its deadlines, the query indexes) rather than for the keys it is
kept under. The key layout (``_session_layout``, ``_event_log``'s keys) is this module's
detail: the rest of the package reads through these methods and builds its batches with them.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Sequence
from typing import Any, cast

from satchel.storage import (
    ABSENT,
    Batch,
    RecordReads,
    RecordStore,
    iter_pages,
    iter_pairs,
    prefix_upper_bound,
)
from satchel.storage import _keys as keys

from .. import _indexscan as indexscan
from .. import _validate as validate
from . import _event_log as event_log
from . import _session_layout as layout

_U64 = struct.Struct(">Q")

#: A session's record and counters, as read together.
Loaded = tuple[layout.SessionRecord, layout.Counters]


async def load(records: RecordReads, sids: Sequence[bytes]) -> list[Loaded | None]:
    """The record and counters of each session (one multi-get), ``None`` where there is
    none (``SessionRecords.load``; a function too, for callers holding only the port)."""
    wanted = [k for sid in sids for k in (layout.record_key(sid), layout.counters_key(sid))]
    values = await records.get_many(wanted)
    found: list[Loaded | None] = []
    for raw_record, raw_counters in zip(values[::2], values[1::2], strict=True):
        if raw_record is None or raw_counters is None:
            found.append(None)
        else:
            found.append(
                (layout.RECORD_CODEC.decode(raw_record), layout.Counters.decode(raw_counters))
            )
    return found


class SessionRecords:
    """Every session's records in one store (``RecordReads``).

    Promises: each read method is exactly one call of the port (one round trip on a networked
    store), but for the loops that say otherwise (``descendants``); the records and counters
    read together are read by one multi-get; nothing is cached, so a read sees what is
    committed. The ``add_*`` methods only put operations into a caller's batch (no I/O),
    with the conditions the sessions' invariants need (a keyed creation expects its counters
    absent); the caller writes the batch, with whatever else the change holds, atomically.
    """

    __slots__ = ("_records",)

    def __init__(self, records: RecordReads) -> None:
        self._records = records

    # -- a session's record and counters ------------------------------------------------

    def load(self, sids: Sequence[bytes]) -> Awaitable[list[Loaded | None]]:
        """The record and counters of each session, ``None`` where there is none."""
        return load(self._records, sids)

    async def load_one(self, sid: bytes) -> Loaded | None:
        """The record and counters of session ``sid`` (one multi-get), if it exists."""
        raw_record, raw_counters = await self._records.get_many(
            [layout.record_key(sid), layout.counters_key(sid)]
        )
        if raw_record is None or raw_counters is None:
            return None
        return layout.RECORD_CODEC.decode(raw_record), layout.Counters.decode(raw_counters)

    async def record(self, sid: bytes) -> layout.SessionRecord | None:
        """The record of session ``sid``, if it has one."""
        raw = await self._records.get(layout.record_key(sid))
        return None if raw is None else layout.RECORD_CODEC.decode(raw)

    async def has_record(self, sid: bytes) -> bool:
        """Whether session ``sid`` has a record (read undecoded)."""
        return await self._records.get(layout.record_key(sid)) is not None

    async def counters(self, sid: bytes) -> layout.Counters | None:
        """The counters of session ``sid``, if it has them."""
        raw = await self._records.get(layout.counters_key(sid))
        return None if raw is None else layout.Counters.decode(raw)

    async def has_counters(self, sid: bytes) -> bool:
        """Whether session ``sid`` has counters (read undecoded): what a keyed creation and
        the manager's reads take for the session existing."""
        return await self._records.get(layout.counters_key(sid)) is not None

    async def session_ids(self) -> list[str]:
        """The id of every session with a record, in key order."""
        start = len(keys.SESSION)
        pairs = await self._records.scan(keys.SESSION, prefix_upper_bound(keys.SESSION))
        return [layout.text_of(key[start:]) for key, _ in pairs]

    # -- variables ----------------------------------------------------------------------

    async def variables(self, sid: bytes, prefix: str = "") -> dict[str, Any]:
        """The variables of session ``sid`` whose names start with ``prefix``, by name."""
        start = len(layout.var_prefix(sid))
        lower = layout.var_prefix(sid) + prefix.encode()
        pairs = await self._records.scan(lower, prefix_upper_bound(lower))
        return {key[start:].decode(): layout.decode_value(raw) for key, raw in pairs}

    # -- the journal ----------------------------------------------------------------------

    async def journal(
        self, sid: bytes, first: int, limit: int | None
    ) -> list[tuple[int, int, str, dict[str, Any], dict[str, Any] | None]]:
        """At most ``limit`` journal entries of session ``sid`` from entry ``first`` on:
        ``(seq, at_us, kind, data, cause)`` each."""
        upper = prefix_upper_bound(layout.journal_prefix(sid))
        lower = layout.journal_key(sid, first)
        found = []
        for key, value in await self._records.scan(lower, upper, limit=limit):
            at_us, kind, data, cause = layout.decode_entry_with_cause(value)
            found.append((int.from_bytes(key[-8:], "big"), at_us, kind, data, cause))
        return found

    async def first_entry(self, sid: bytes) -> tuple[int, int] | None:
        """``(seq, at_us)`` of the oldest journal entry of session ``sid``, if any."""
        return await self._journal_end(sid, reverse=False)

    async def last_entry(self, sid: bytes) -> tuple[int, int] | None:
        """``(seq, at_us)`` of the newest journal entry of session ``sid``, if any."""
        return await self._journal_end(sid, reverse=True)

    async def _journal_end(self, sid: bytes, *, reverse: bool) -> tuple[int, int] | None:
        prefix = layout.journal_prefix(sid)
        upper = prefix_upper_bound(prefix)
        for key, value in await self._records.scan(prefix, upper, reverse=reverse, limit=1):
            return int.from_bytes(key[-8:], "big"), layout.decode_entry(value)[0]
        return None

    # -- the event log --------------------------------------------------------------------

    async def event_log_end(self, sid: bytes) -> tuple[int, int]:
        """The last position given in the event log of session ``sid`` and the time of its
        last event appended (µs; 0, 0 if none)."""
        return event_log.log_end(await self._records.get(event_log.last_key(sid)))

    async def newest_event(self, sid: bytes) -> event_log.SessionEvent | None:
        """The last event of session ``sid``, if it has any."""
        prefix = event_log.events_prefix(sid)
        upper = prefix_upper_bound(prefix)
        for key, raw in await self._records.scan(prefix, upper, reverse=True, limit=1):
            return event_log.decode_event(_U64.unpack(key[len(prefix) :])[0], raw)
        return None

    async def events(self, sid: bytes) -> list[event_log.SessionEvent]:
        """Every event of session ``sid``, oldest first (one scan)."""
        prefix = event_log.events_prefix(sid)
        start = len(prefix)
        pairs = await self._records.scan(prefix, prefix_upper_bound(prefix))
        return [event_log.decode_event(_U64.unpack_from(k, start)[0], v) for k, v in pairs]

    def events_newest_first(
        self, sid: bytes, page: int
    ) -> tuple[int, AsyncGenerator[tuple[bytes, bytes], None]]:
        """The stored events of session ``sid``, newest first, read ``page`` at a time (for a
        reader that stops early), and where a position starts in their keys."""
        prefix = event_log.events_prefix(sid)
        upper = prefix_upper_bound(prefix)
        return len(prefix), iter_pairs(self._records, prefix, upper, reverse=True, page=page)

    async def add_clear_events(self, batch: Batch, sid: bytes) -> int:
        """Add the removal of every event of session ``sid`` to ``batch``; how many there
        were (counted by one scan)."""
        prefix = event_log.events_prefix(sid)
        count = len(await self._records.scan(prefix, prefix_upper_bound(prefix)))
        batch.delete_range(prefix, prefix_upper_bound(prefix))
        return count

    # -- trees of sessions and shared budgets ---------------------------------------------

    async def children(self, parent: bytes) -> list[bytes]:
        """The child sessions of ``parent`` (one scan), oldest first."""
        prefix = layout.parent_prefix(parent)
        pairs = await self._records.scan(prefix, prefix_upper_bound(prefix))
        return [key[-layout.ID_BYTES :] for key, _ in pairs]

    async def first_child(self, sid: bytes) -> bytes | None:
        """One child session of ``sid``, if it has any."""
        prefix = layout.parent_prefix(sid)
        entry = await self._records.scan(prefix, prefix_upper_bound(prefix), limit=1)
        return entry[0][0][-layout.ID_BYTES :] if entry else None

    async def descendants(self, sid: bytes) -> list[bytes]:
        """Every session below ``sid`` (one scan per session met), parents before their
        children (each once, even if the parent links of damaged data loop)."""
        found: list[bytes] = []
        seen = {sid}
        frontier = [sid]
        while frontier:
            for child in await self.children(frontier.pop()):
                if child not in seen:
                    seen.add(child)
                    found.append(child)
                    frontier.append(child)
        return found

    async def sharers(self, holder: bytes) -> list[bytes]:
        """The sessions counting against the budget of ``holder`` directly (one scan)."""
        prefix = layout.budget_prefix(holder)
        pairs = await self._records.scan(prefix, prefix_upper_bound(prefix))
        return [key[-layout.ID_BYTES :] for key, _ in pairs]

    async def has_sharers(self, holder: bytes) -> bool:
        """Whether any session counts against the budget of ``holder``."""
        prefix = layout.budget_prefix(holder)
        return bool(await self._records.scan(prefix, prefix_upper_bound(prefix), limit=1))

    async def spent_by_sharer(self, holder: bytes, sharer: bytes) -> bytes:
        """What ``holder`` keeps counted for ``sharer`` (its creation, once it is written:
        ``add_creation_counted``), as stored (``b""`` if nothing)."""
        return await self._records.get(layout.spent_prefix(holder) + sharer) or b""

    async def spent_by_deleted(self, holder: bytes) -> list[bytes]:
        """The operations deleted sharers counted against ``holder``, as stored, each."""
        spent = layout.spent_prefix(holder)
        return [v for _, v in await self._records.scan(spent, prefix_upper_bound(spent))]

    @staticmethod
    def add_creation_counted(batch: Batch, holder: bytes, sharer: bytes) -> None:
        """Add to ``batch`` the entry that keeps the creation of ``sharer`` counted as one
        operation of ``holder`` (its deletion adds its own operations to it)."""
        batch.put(layout.spent_prefix(holder) + sharer, layout.u64(1))

    # -- deadlines ------------------------------------------------------------------------

    async def deadlines_due(
        self, from_us: int | None, until_us: int
    ) -> list[tuple[int, bytes, bytes]]:
        """``(due_us, sid, reason)`` of every deadline due from ``from_us`` (``None``: the
        first) to ``until_us`` (inclusive), in due order."""
        lower = keys.DEADLINE if from_us is None else keys.DEADLINE + layout.u64(from_us)
        upper = keys.DEADLINE + layout.u64(until_us + 1)
        found = await self._records.scan(lower, upper)
        return [layout.parse_deadline_key(key) for key, _ in found]

    async def next_deadline(self, after_us: int) -> int | None:
        """When the first deadline after ``after_us`` is due, if there is one."""
        lower = keys.DEADLINE + layout.u64(after_us + 1)
        first = await self._records.scan(lower, layout.DEADLINES_UPPER, limit=1)
        return layout.parse_deadline_key(first[0][0])[0] if first else None

    # -- query indexes --------------------------------------------------------------------

    def index_pages(
        self, lower: bytes, upper: bytes, *, reverse: bool = False, page: int = 256
    ) -> AsyncGenerator[tuple[bytes, bytes], None]:
        """The entries of an index range (``_session_layout``'s index prefixes), read
        ``page`` at a time (``storage.iter_pairs``)."""
        return iter_pairs(self._records, lower, upper, reverse=reverse, page=page)

    def index_page_lists(
        self, lower: bytes, upper: bytes, *, reverse: bool = False, page: int = 256
    ) -> AsyncGenerator[list[tuple[bytes, bytes]], None]:
        """``index_pages``, a list of entries at a time (``storage.iter_pages``)."""
        return iter_pages(self._records, lower, upper, reverse=reverse, page=page)

    def most_selective(
        self,
        prefixes: list[bytes],
        bounds: Callable[[bytes], tuple[bytes, bytes]],
        probe: int,
        *,
        count_one: bool,
    ) -> Awaitable[tuple[bytes, int]]:
        """The index with the fewest entries in its ``bounds`` (``_indexscan.most_selective``)."""
        return indexscan.most_selective(self._records, prefixes, bounds, probe, count_one=count_one)

    async def in_index(self, prefix: bytes, suffixes: list[bytes]) -> list[bool]:
        """Whether each session (by its creation-ordered *suffix*) has an entry in the index
        ``prefix`` (one multi-get)."""
        return [f is not None for f in await self._records.get_many([prefix + s for s in suffixes])]

    def search_texts(self, suffixes: list[bytes]) -> Awaitable[list[bytes | None]]:
        """What ``search`` looks in, of each session by its suffix (one multi-get)."""
        return self._records.get_many([layout.BY_CREATED + s for s in suffixes])

    async def update_times(self, sids: list[bytes]) -> list[int]:
        """When each session was last updated (µs; 0 for one without counters), one
        multi-get."""
        raw = await self._records.get_many([layout.counters_key(sid) for sid in sids])
        updated_us_of = layout.updated_us_of
        return [0 if r is None else updated_us_of(r) for r in raw]

    # -- batches --------------------------------------------------------------------------

    @staticmethod
    def add_variables(batch: Batch, sid: bytes, values: list[tuple[str, Any, bytes]]) -> None:
        """Add a new session's variables (``(name, value, stored bytes)`` each) to ``batch``."""
        for name, _, encoded in values:
            batch.put(layout.var_prefix(sid) + name.encode(), encoded)

    @staticmethod
    def add_created(
        batch: Batch,
        sid: bytes,
        record: layout.SessionRecord,
        encoded: bytes,
        now: int,
        created: dict[str, Any],
        cause: dict[str, Any] | None,
    ) -> None:
        """Add a new session's record (``encoded``), counters, first journal entry, index
        entries and deadlines to ``batch``. A keyed session's counters are put expecting
        none: its id is derived from its key, and another process creating the same key at
        once must not write over it (the batch then fails with ``WriteConflictError``)."""
        batch.put(layout.record_key(sid), encoded)
        keyed = ABSENT if record.key is not None else None
        batch.put(layout.counters_key(sid), layout.Counters(1, now).encode(), expect=keyed)
        batch.put(
            layout.journal_key(sid, 1),
            layout.encode_entry(now, "session_created", created, cause),
        )
        for entry, value in layout.index_entries(sid, record):
            batch.put(entry, value)
        batch.put(layout.updated_key(sid, now), layout.u64(now))
        if record.deadlines:
            layout.move_deadlines(batch, sid, (), record.deadlines)

    @staticmethod
    def add_status_change(
        batch: Batch, sid: bytes, old: layout.SessionRecord, new: layout.SessionRecord
    ) -> list[int]:
        """Add to ``batch`` the by-status entry and deadlines moved from ``old`` to ``new``
        (the record itself goes with the journal entry); the due times added."""
        batch.delete(layout.status_key(sid, old))
        batch.put(layout.status_key(sid, new), b"")
        return layout.move_deadlines(batch, sid, old.deadlines, new.deadlines)

    @staticmethod
    def add_update(
        batch: Batch, sid: bytes, old: layout.SessionRecord, new: layout.SessionRecord
    ) -> list[int]:
        """Add to ``batch`` the index entries and deadlines moved from ``old`` to ``new``;
        the due times of the deadlines added."""
        for key, _ in layout.index_entries(sid, old):
            batch.delete(key)
        for key, value in layout.index_entries(sid, new):
            batch.put(key, value)
        return layout.move_deadlines(batch, sid, old.deadlines, new.deadlines)

    @staticmethod
    def add_spent_kept(batch: Batch, holder: bytes, sid: bytes, operations: int) -> None:
        """Add to ``batch`` that ``holder`` keeps ``operations`` counted for the deleted
        session ``sid`` (they stay counted against its budget)."""
        batch.put(layout.spent_prefix(holder) + sid, layout.u64(operations))

    @staticmethod
    def add_spent_removal(batch: Batch, sid: bytes) -> None:
        """Add to ``batch`` the removal of what ``sid`` kept counted for deleted sharers."""
        spent = layout.spent_prefix(sid)
        batch.delete_range(spent, prefix_upper_bound(spent))

    @staticmethod
    def add_removal(
        batch: Batch,
        sid: bytes,
        record: layout.SessionRecord,
        counters: layout.Counters,
        also: Collection[bytes] = (),
    ) -> None:
        """Add to ``batch`` the removal of every key of session ``sid`` but its artifacts'
        (and of the key ranges ``also``, other concepts' prefixes of the session, in the
        order given, after its variables and journal)."""
        for prefix in (layout.var_prefix(sid), layout.journal_prefix(sid), *also):
            batch.delete_range(prefix, prefix_upper_bound(prefix))
        for prefix in (event_log.events_prefix(sid), event_log.last_key(sid)):
            batch.delete_range(prefix, prefix_upper_bound(prefix))
        for key, _value in layout.index_entries(sid, record):
            batch.delete(key)
        batch.delete(layout.updated_key(sid, counters.updated_us))
        batch.delete(layout.legacy_updated_key(sid, counters.updated_us))
        layout.move_deadlines(batch, sid, record.deadlines, ())
        batch.delete(layout.record_key(sid))
        batch.delete(layout.counters_key(sid))


class OwnRecords(SessionRecords):
    """The records of one session, as its actor reads and writes them (through the actor's
    store: in a cluster, the fenced one), with the keys it uses on every turn made once.

    Promises as ``SessionRecords``; the hot-path methods (``variable``, ``setting``,
    ``add_change``) make no object beyond what the bare port calls they replace made.
    """

    # Held by every live session actor: no slot more than the keys its turns use.
    __slots__ = ("_counters_key", "_journal_prefix", "_var_prefix", "sid")

    def __init__(self, store: RecordStore, sid: bytes) -> None:
        super().__init__(store)
        self.sid = sid
        self._journal_prefix = layout.journal_prefix(sid)
        self._counters_key = layout.counters_key(sid)
        self._var_prefix = layout.var_prefix(sid)

    async def variable(self, name: object) -> Any:
        """The value of variable ``name`` (checked), or ``None``."""
        raw = await self._records.get(self._var_prefix + validate.state_key(name))
        return None if raw is None else layout.decode_value(raw)

    async def variable_names(self) -> list[str]:
        """The names of the session's variables, in order."""
        prefix = self._var_prefix
        start = len(prefix)
        pairs = await self._records.scan(prefix, prefix_upper_bound(prefix))
        return [key[start:].decode() for key, _ in pairs]

    def setting(self, name: bytes, encoded: bytes) -> Batch:
        """A batch setting variable ``name`` (checked, as stored) to ``encoded``."""
        batch = Batch()
        batch.put(self._var_prefix + name, encoded)
        return batch

    def deleting(self, name: object) -> Batch:
        """A batch deleting variable ``name`` (checked here)."""
        batch = Batch()
        batch.delete(self._var_prefix + validate.state_key(name))
        return batch

    def add_change(
        self,
        batch: Batch,
        old: layout.Counters,
        new: layout.Counters,
        kind: str,
        data: dict[str, Any],
        created: bytes,
        record: layout.SessionRecord | None,
    ) -> None:
        """Add to ``batch`` what every journaled change writes: its journal entry (``kind``,
        ``data``) at ``new.seq``, the counters ``new`` (after ``old``), the by-update entry
        when it moves to another bucket (its value ``created``, the creation time as
        index values hold it), and ``record`` if the change made a new one."""
        now = new.updated_us
        batch.put(
            self._journal_prefix + layout.seq_bytes(new.seq), layout.encode_entry(now, kind, data)
        )
        batch.put(self._counters_key, new.encode())
        if not layout.same_update_bucket(now, old.updated_us):
            sid = self.sid
            batch.delete(layout.updated_key(sid, old.updated_us))
            batch.put(layout.updated_key(sid, now), created)
        if record is not None:
            batch.put(layout.record_key(self.sid), layout.RECORD_CODEC.encode(record))

    def _store(self) -> RecordStore:
        # ``__init__`` took a store; holding it a second time would cost every live actor.
        return cast(RecordStore, self._records)

    async def drop_deadline(self, due_us: int, reason: bytes) -> None:
        """Remove one deadline entry of the session (a stale one: no journal entry)."""
        batch = Batch()
        batch.delete(layout.deadline_key(due_us, self.sid, reason))
        await self._store().write(batch)

    async def move_deadlines(
        self, old: layout.SessionRecord, new: layout.SessionRecord
    ) -> list[int]:
        """Write the record ``new``, whose deadlines moved from ``old``'s (bookkeeping: no
        journal entry); the due times added."""
        batch = Batch()
        added = layout.move_deadlines(batch, self.sid, old.deadlines, new.deadlines)
        batch.put(layout.record_key(self.sid), layout.RECORD_CODEC.encode(new))
        await self._store().write(batch)
        return added

    def event_key(self, position: int) -> bytes:
        """Where event ``position`` of the session is (for a batch removing it)."""
        return event_log.event_key(self.sid, position)
