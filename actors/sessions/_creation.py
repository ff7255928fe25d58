"""What a new session's record is made of: the config over the runtime's defaults, its id
(fresh, or derived from a key the caller chose), its application and user, and its
deadlines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from satchel.runtime._errors import (
    InvalidArgumentError,
    SessionExistsError,
    SessionNotFoundError,
    ValidationError,
    WriteConflictError,
)
from satchel.storage import Batch, RecordStore

from .. import _validate as validate
from .._lifecycle import ACTIVE
from .._model import SessionConfig
from . import _session_layout as layout
from ._query import scope
from ._session_records import SessionRecords
from ._session_update import check_metadata_size

_US = 1_000_000
_CONFIG_FIELDS = frozenset(a.name for a in attrs.fields(SessionConfig))


@attrs.frozen
class Creation:
    """The fields a new session is asked for (checked in ``new_record``)."""

    name: str = ""
    description: str = ""
    tags: Iterable[str] = ()
    metadata: Mapping[str, Any] | None = None
    parent_id: str | None = None
    config: SessionConfig | Mapping[str, Any] | None = None
    key: str | None = None
    app: str | None = None
    user: str | None = None


def merge_config(
    defaults: SessionConfig, given: SessionConfig | Mapping[str, Any] | None
) -> SessionConfig:
    """``given`` (a record, or a map of some fields) over the runtime's defaults."""
    if given is None:
        return defaults
    if isinstance(given, SessionConfig):
        return given
    if not isinstance(given, Mapping):
        raise InvalidArgumentError(f"config must be a map, not {type(given).__name__}")
    unknown = sorted(str(k) for k in given if k not in _CONFIG_FIELDS)
    if unknown:
        raise InvalidArgumentError(
            f"unknown session config field(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_CONFIG_FIELDS))}"
        )
    return attrs.evolve(defaults, **given)


async def new_record(
    sessions: SessionRecords,
    defaults: SessionConfig,
    fields: Creation,
    now: int,
    budget_of: str | None = None,
) -> tuple[layout.SessionRecord, bytes]:
    """The record of a new active session made of ``fields`` at ``now`` (µs), and its id's
    bytes; every field checked."""
    meta = validate.metadata(fields.metadata)
    parent = None if fields.parent_id is None else validate.session_id(fields.parent_id)[0]
    merged = merge_config(defaults, fields.config)
    if budget_of is not None:  # limits at most the holder's and the parent's
        bounds = [budget_of] if parent is None else [budget_of, parent]
        for found in await sessions.load([validate.session_id(b)[1] for b in bounds]):
            if found is None:
                raise SessionNotFoundError(f"Session not found: {budget_of} or {parent}")
            merged = merged.within(found[0].config)
    if fields.key is None:
        session_id, sid = validate.new_session_id()
    else:
        session_id, sid = validate.session_id_for(fields.key)
    if fields.user is not None and fields.app is None:
        raise InvalidArgumentError("a session's user belongs to an app: give app too")
    deadlines = []
    if merged.max_duration_s is not None:
        deadlines.append(
            (now + round(merged.max_duration_s * _US), layout.Deadline.MAX_DURATION.value)
        )
    if merged.idle_timeout_s is not None:
        deadlines.append((now + round(merged.idle_timeout_s * _US), layout.Deadline.IDLE.value))
    record = layout.SessionRecord(
        id=session_id,
        name=validate.text("session name", fields.name, validate.MAX_NAME_BYTES),
        description=validate.text(
            "session description",
            fields.description,
            validate.MAX_DESCRIPTION_BYTES,
            nul_ok=True,
        ),
        tags=validate.tags(fields.tags),
        metadata=meta,
        parent_id=parent,
        config=merged,
        status=ACTIVE,
        created_us=now,
        deadlines=tuple(deadlines),
        budget_of=None if budget_of is None else validate.session_id(budget_of)[0],
        key=None if fields.key is None else validate.session_key(fields.key),
        app=None if fields.app is None else scope("app", fields.app),
        user=None if fields.user is None else scope("user", fields.user),
    )
    return record, sid


async def refuse_taken(sessions: SessionRecords, record: layout.SessionRecord, sid: bytes) -> None:
    """A keyed session names one id: ``SessionExistsError`` if a session has it (read before
    a creation that counts against a budget, and after a creating write that failed its
    conditions, to tell a taken key from contention)."""
    if record.key is not None and await sessions.has_counters(sid):
        raise SessionExistsError(f"a session keyed {record.key!r} exists already ({record.id})")


def created_data(record: layout.SessionRecord) -> dict[str, Any]:
    """The ``session_created`` entry's data."""
    # Description, metadata and config are read from the record, which lives and dies with
    # the journal, rather than stored twice; a ``session_updated`` entry names any change.
    data: dict[str, Any] = {
        "name": record.name,
        "tags": record.tags,
        "parent_session_id": record.parent_id,
    }
    for field in ("key", "app", "user"):
        if getattr(record, field) is not None:
            data[field] = getattr(record, field)
    return data


def fork_name(name: str) -> str:
    """The default name of a fork: the origin's, marked, within the name limit."""
    suffix = " (fork)"
    room = validate.MAX_NAME_BYTES - len(suffix)
    return name.encode()[:room].decode(errors="ignore") + suffix


def session_id_for(key: str) -> str:
    """The id of the session keyed ``key`` (created with ``key=``), whether it exists or not."""
    return validate.session_id_for(key)[0]


def initial_state(
    state: Mapping[str, Any] | None, max_value_bytes: int
) -> list[tuple[str, Any, bytes]]:
    """A new session's variables, checked as ``set_state`` checks one: ``(name, value,
    stored bytes)`` each."""
    if state is None:
        return []
    if not isinstance(state, Mapping):
        raise InvalidArgumentError(f"state must be a map, not {type(state).__name__}")
    found = []
    for name, value in state.items():
        validate.state_key(name)
        field = f"state {name!r}"
        validate.json_like(field, value)
        encoded = validate.encoded(field, layout.encode_value, value)
        if len(encoded) > max_value_bytes:
            raise ValidationError(
                f"{field} encodes to {len(encoded)} bytes; the limit is {max_value_bytes} "
                "(max_value_bytes)"
            )
        found.append((name, value, encoded))
    return found


async def write_created(
    records: RecordStore,
    batch: Batch,
    record: layout.SessionRecord,
    sid: bytes,
    now: int,
    created: dict[str, Any],
    cause: dict[str, Any] | None,
) -> None:
    """Add a new session's record, counters, first journal entry and index entries to
    ``batch`` and write it."""
    encoded = validate.encoded("session metadata", layout.RECORD_CODEC.encode, record)
    if len(encoded) > validate.MAX_METADATA_BYTES:
        # Only a large record can hold metadata over its limit; small ones skip the encode.
        check_metadata_size(record.metadata)
    # A keyed session's counters expect none: a session with that key already, or another
    # process creating the same key at once, fails the write (SessionExistsError).
    SessionRecords.add_created(batch, sid, record, encoded, now, created, cause)
    try:
        await records.write(batch)
    except WriteConflictError:
        # Its key taken, as the counters' condition expects; else contention (other writers
        # held the records: PostgreSQL), which is no taken key: try again.
        await refuse_taken(SessionRecords(records), record, sid)
        raise
