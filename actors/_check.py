"""``check_sessions``: compare every session record with its counters, journal and indexes.

Everything but the records, counters, variables and journal is derived (index and deadline
entries), so ``fix=True`` rebuilds what is derived and removes what belongs to no session.
A journal whose length disagrees with its counters is reported, not repaired: which of the
two is right cannot be known.
"""

from __future__ import annotations

from typing import Any

import attrs

from satchel.runtime._errors import SatchelError
from satchel.storage import Batch, RecordStore, prefix_pairs, prefix_upper_bound
from satchel.storage import _keys as keys

from . import _validate as validate
from .artifacts import _access as access
from .artifacts import _artifact_index as index
from .artifacts import _artifact_layout as artifacts
from .artifacts._artifact_model import ARTIFACT_CODEC, ArtifactRecord
from .hooks._replay import event_log_of
from .sessions import _event_log as event_log
from .sessions import _session_layout as layout

#: Journal kinds that count as operations (``operation_count``).
_LOG_KINDS = frozenset({"events_appended", "event_popped", "events_cleared", "session_forked"})
OPERATION_KINDS = frozenset(
    {
        "state_set",
        "state_deleted",
        "artifact_stored",
        "artifact_deleted",
        "events_appended",
        "event_popped",
        "events_cleared",
    }
)
_OWNED = (
    keys.SESSION_COUNTERS,
    keys.SESSION_VAR,
    keys.JOURNAL,
    keys.ARTIFACT,
    keys.ARTIFACT_NAME,
    keys.ARTIFACT_RETIRED,
    keys.ARTIFACT_GRANT,
    keys.ARTIFACT_GRANTED,
    keys.ARTIFACT_AUDIT,
    keys.SESSION_SPENT,
    keys.SESSION_EVENT,
    keys.SESSION_EVENT_LAST,
)


@attrs.frozen
class SessionCheckReport:
    """What ``check_sessions`` found (and, with ``fix``, repaired)."""

    sessions: int
    problems: tuple[str, ...]
    fixed: bool

    @property
    def clean(self) -> bool:
        """Whether nothing was found wrong."""
        return not self.problems


async def check_sessions(records: RecordStore, *, fix: bool = False) -> SessionCheckReport:
    """Check every session; with ``fix``, rebuild derived entries and drop orphans."""
    problems: list[str] = []
    batch = Batch()
    expected: dict[bytes, bytes] = {}
    # An earlier layout's by-update key -> the expected one it stands for (see below).
    legacy: dict[bytes, bytes] = {}
    present: set[bytes] = set()  # sessions with a record, readable or not
    unreadable: set[bytes] = set()
    for sid, loaded in await _sessions(records, problems):
        present.add(sid)
        if loaded is None:
            unreadable.add(sid)
            continue
        record, counters = loaded
        expected.update(_derived(sid, record, counters))
        updated = counters.updated_us
        legacy[layout.legacy_updated_key(sid, updated)] = layout.updated_key(sid, updated)
        logged = await _check_journal(records, sid, counters, problems)
        await _check_artifacts(records, sid, counters, expected, problems)
        if logged is not None:  # (not rebuilt from a journal with damaged entries)
            await _check_event_log(records, sid, logged, problems, batch)
    await _compare_derived(records, expected, legacy, unreadable, problems, batch)
    await _find_orphans(records, present, problems, batch)
    await _check_grants(records, present, problems, batch)
    await _check_audit_logs(records, present, problems, batch)
    if fix and len(batch):
        await records.write(batch)
    return SessionCheckReport(len(present), tuple(problems), fix and bool(len(batch)))


async def _sessions(
    records: RecordStore, problems: list[str]
) -> list[tuple[bytes, tuple[layout.SessionRecord, layout.Counters] | None]]:
    """Every session with a record; ``None`` for one that cannot be read (left untouched:
    a newer satchel may read it, so nothing of it is taken for an orphan)."""
    found: list[tuple[bytes, tuple[layout.SessionRecord, layout.Counters] | None]] = []
    for key, value in await prefix_pairs(records, keys.SESSION):
        sid = key[len(keys.SESSION) :]
        name = layout.text_of(sid)
        raw_counters = await records.get(layout.counters_key(sid))
        try:
            record = layout.RECORD_CODEC.decode(value)
            if raw_counters is None:
                problems.append(f"session {name}: no counters")
                found.append((sid, None))
                continue
            counters = layout.Counters.decode(raw_counters)
        except SatchelError as error:
            problems.append(f"session {name}: {error}")
            found.append((sid, None))
            continue
        found.append((sid, (record, counters)))
    return found


def _derived(
    sid: bytes, record: layout.SessionRecord, counters: layout.Counters
) -> dict[bytes, bytes]:
    entries = dict(layout.index_entries(sid, record))
    entries[layout.updated_key(sid, counters.updated_us)] = layout.u64(record.created_us)
    for due, reason in record.deadlines:
        entries[layout.deadline_key(due, sid, reason)] = b""
    return entries


async def _check_journal(
    records: RecordStore, sid: bytes, counters: layout.Counters, problems: list[str]
) -> list[tuple[str, dict[str, Any]]] | None:
    """Compare the journal with the counters; the entries that make the event log (``None``
    if an entry is damaged: each is a problem, and the log is not rebuilt from the rest)."""
    seqs, operations = [], 0
    logged: list[tuple[str, dict[str, Any]]] = []
    name = layout.text_of(sid)
    damaged = False
    for key, value in await prefix_pairs(records, layout.journal_prefix(sid)):
        seq = int.from_bytes(key[-8:], "big")
        seqs.append(seq)
        try:
            at_us, kind, data = layout.decode_entry(value)
            layout.check_entry(at_us, kind, data, None)
            if kind in _LOG_KINDS:
                event_log.check_entry(kind, data)
        except SatchelError as error:
            problems.append(f"session {name}: journal entry {seq}: {error}")
            damaged = True
            continue
        operations += kind in OPERATION_KINDS
        if kind in _LOG_KINDS:
            logged.append((kind, data))
    if seqs != list(range(1, counters.seq + 1)):
        problems.append(
            f"session {name}: journal holds {len(seqs)} entries, counters say {counters.seq}"
        )
    if operations != counters.operations:
        problems.append(
            f"session {name}: journal holds {operations} operations, "
            f"counters say {counters.operations}"
        )
    return None if damaged else logged


async def _check_event_log(
    records: RecordStore,
    sid: bytes,
    logged: list[tuple[str, dict[str, Any]]],
    problems: list[str],
    batch: Batch,
) -> None:
    """The event log must be what the journal's appends, pops and clears leave (with fix,
    it is written again from the journal)."""
    expected = event_log.rebuilt(*event_log_of(logged), sid)
    found = dict(await prefix_pairs(records, event_log.events_prefix(sid)))
    last = await records.get(event_log.last_key(sid))
    if last is not None:
        found[event_log.last_key(sid)] = last
    if found != expected:
        problems.append(f"session {layout.text_of(sid)}: the event log differs from the journal")
        prefix = event_log.events_prefix(sid)
        batch.delete_range(prefix, prefix_upper_bound(prefix))
        batch.delete(event_log.last_key(sid))
        for key, value in expected.items():
            batch.put(key, value)


async def _check_artifacts(
    records: RecordStore,
    sid: bytes,
    counters: layout.Counters,
    expected: dict[bytes, bytes],
    problems: list[str],
) -> None:
    """Artifact records against the session's counters, their id entries and name entries."""
    count = size = 0
    last: dict[bytes, ArtifactRecord] = {}
    name = layout.text_of(sid)
    for key, value in await prefix_pairs(records, artifacts.session_prefix(sid)):
        try:
            record = ARTIFACT_CODEC.decode(value)
        except SatchelError as error:
            problems.append(f"session {name}: artifact {key!r}: {error}")
            continue
        count += 1
        size += record.size
        tail = key[len(keys.ARTIFACT) :]
        expected[artifacts.id_key(validate.artifact_id(record.id))] = tail
        expected.update(index.entries(record, tail))
        last[record.name.encode()] = record  # versions scan in order: the last is the latest
    for named, latest in last.items():
        newest = index.suffix_of(latest)
        expected[index.LATEST + newest] = b""
        raw = await records.get(artifacts.name_key(sid, named))
        entry = None if raw is None else artifacts.decode_name_value(raw)
        if entry is None or entry[0] < latest.version or entry[2] != newest:
            problems.append(
                f"session {name}: name entry of artifact {named!r} is missing or behind"
            )
    if (count, size) != (counters.artifacts, counters.total_bytes):
        problems.append(
            f"session {name}: {count} artifacts of {size} bytes stored, counters say "
            f"{counters.artifacts} of {counters.total_bytes}"
        )


async def _compare_derived(
    records: RecordStore,
    expected: dict[bytes, bytes],
    legacy: dict[bytes, bytes],
    unreadable: set[bytes],
    problems: list[str],
    batch: Batch,
) -> None:
    """Compare the stored index, deadline and artifact id entries with ``expected``; a
    session's by-update entry may be in an earlier layout (``legacy``: its key there -> the
    key expected), which an open moves unless the move kept conflicting."""
    for prefix in (keys.SESSION_INDEX, keys.DEADLINE, keys.ARTIFACT_ID, keys.ARTIFACT_INDEX):
        for key, value in await prefix_pairs(records, prefix):
            want = expected.pop(key, None)
            if want is None and key in legacy:
                current = legacy.pop(key)
                # Kept only while the session has no entry of the current layout: with both,
                # the earlier one is the duplicate (it sorts first, so the other is read).
                if await records.get(current) is None:
                    want = expected.pop(current, None)
            if (
                want is None
                and unreadable
                and await _owner(records, prefix, key, value) in unreadable
            ):
                continue
            if want is None:
                problems.append(f"index entry {key!r} belongs to no session")
                batch.delete(key)
            elif want != value:
                problems.append(f"index entry {key!r} holds a stale value")
                batch.put(key, want)
    for key, value in expected.items():
        problems.append(f"index entry {key!r} is missing")
        batch.put(key, value)


async def _owner(records: RecordStore, prefix: bytes, key: bytes, value: bytes) -> bytes:
    """The session an index, deadline or artifact id entry belongs to."""
    if prefix == keys.DEADLINE:
        return layout.parse_deadline_key(key)[1]
    if prefix == keys.ARTIFACT_ID:
        return value[: layout.ID_BYTES]
    if prefix == keys.ARTIFACT_INDEX:
        summary = await records.get(index.ALL + key[-index.SUFFIX_BYTES :])
        return b"" if summary is None else index.parse_summary(summary)[1][: layout.ID_BYTES]
    return key[-layout.ID_BYTES :]


async def _check_grants(
    records: RecordStore, live: set[bytes], problems: list[str], batch: Batch
) -> None:
    """Each grant needs its artifact, both sessions and its reverse entry (and the reverse)."""
    forward = set()
    for grant in await access.all_grants(records):
        exists = (
            grant.target in live
            and await records.get(artifacts.name_key(grant.owner, grant.name)) is not None
            and (
                grant.scope == access.WHOLE_NAME or await records.get(artifacts.id_key(grant.scope))
            )
        )
        if not exists:
            problems.append(f"grant on a missing artifact or session: {grant}")
            access.remove(batch, grant.owner, grant.name, grant.scope, grant.target)
        else:
            forward.add(access.granted_key(grant.target, grant.owner, grant.name, grant.scope))
    for key, _ in await prefix_pairs(records, keys.ARTIFACT_GRANTED):
        if key not in forward:
            problems.append(f"reverse grant entry {key!r} has no grant")
            batch.delete(key)
    missing = forward - {key for key, _ in await prefix_pairs(records, keys.ARTIFACT_GRANTED)}
    for key in sorted(missing):
        problems.append(f"reverse grant entry {key!r} is missing")
        batch.put(key, b"")


async def _check_audit_logs(
    records: RecordStore, live: set[bytes], problems: list[str], batch: Batch
) -> None:
    """An audit log belongs to an existing name (a log of a missing session is an orphan
    that ``_find_orphans`` removes)."""
    seen: set[bytes] = set()
    start = len(keys.ARTIFACT_AUDIT)
    for key, _ in await prefix_pairs(records, keys.ARTIFACT_AUDIT):
        log = key[:-8]  # the tag, owner, name and NUL before the entry number
        if log in seen:
            continue
        seen.add(log)
        owner, name = log[start : start + layout.ID_BYTES], log[start + layout.ID_BYTES : -1]
        if owner in live and await records.get(artifacts.name_key(owner, name)) is None:
            problems.append(f"audit log of missing artifact {name!r} of {layout.text_of(owner)}")
            batch.delete_range(log, prefix_upper_bound(log))


async def _find_orphans(
    records: RecordStore, live: set[bytes], problems: list[str], batch: Batch
) -> None:
    for prefix in _OWNED:
        lower = prefix
        upper = prefix_upper_bound(prefix)
        while first := await records.scan(lower, upper, limit=1):
            sid = first[0][0][len(prefix) : len(prefix) + layout.ID_BYTES]
            owned = prefix + sid
            end = prefix_upper_bound(owned)
            if sid not in live:
                problems.append(f"{prefix[:-1].decode()} entries of missing session {sid.hex()}")
                batch.delete_range(owned, end)
            lower = end
