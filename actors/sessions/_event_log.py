"""A session's event log: ordered, append-only (but for popping the last), each append
applying a state delta to the session's variables in the same write.

Events live under their session (``sev`` + session + position), so the last N, or those
after a time, are read from the end without the rest; the journal holds each change too
(``events_appended``, ``event_popped``, ``events_cleared``), so replay, fork and import
rebuild the log as it was at any entry.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs
import msgpack

from satchel.runtime._errors import (
    InvalidArgumentError,
    InvalidStateTransitionError,
    ValidationError,
)
from satchel.storage import Batch
from satchel.storage import _keys as keys

from .. import _validate as validate
from . import _session_layout as layout

if TYPE_CHECKING:
    from ._session_records import SessionRecords

_U64 = struct.Struct(">Q")
_LAST = struct.Struct(">QQ")  # the last position given, the last event's time (µs)
_LAST_US = validate.LAST_US
_EPOCH = validate.to_datetime(0)
#: The first microsecond a datetime can hold (1 January of the year 1, UTC).
_FIRST_US = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
#: What a damaged event's time is named by (``validate.stored_datetime``).
_AN_EVENT = "a session event"
_POSITION_MAX = (1 << 63) - 1
#: The most events one append may carry.
MAX_EVENTS_PER_APPEND = 10_000


@attrs.frozen
class SessionEvent:
    """One event of a session's log: its position (from 1, never reused), when it
    happened, and what it holds."""

    position: int
    at: datetime
    data: dict[str, Any]


# A read of the last N events makes N of them: filling the slots directly costs two thirds of
# the frozen class's __init__, which goes through object.__setattr__ by name for each field.
_new_object = object.__new__
_set_position = SessionEvent.__dict__["position"].__set__
_set_at = SessionEvent.__dict__["at"].__set__
_set_data = SessionEvent.__dict__["data"].__set__


def _event(position: int, at: datetime, data: dict[str, Any]) -> SessionEvent:
    """``SessionEvent(position, at, data)``, made faster (see above)."""
    event: SessionEvent = _new_object(SessionEvent)
    _set_position(event, position)
    _set_at(event, at)
    _set_data(event, data)
    return event


def events_prefix(sid: bytes) -> bytes:
    """The prefix of every event of session ``sid``, in position order."""
    return keys.SESSION_EVENT + sid


def event_key(sid: bytes, position: int) -> bytes:
    """Where event ``position`` of session ``sid`` is."""
    return keys.SESSION_EVENT + sid + _U64.pack(position)


def last_key(sid: bytes) -> bytes:
    """Where the last position given in session ``sid`` is kept."""
    return keys.SESSION_EVENT_LAST + sid


def log_end(raw: bytes | None) -> tuple[int, int]:
    """The last position given and the time of the last event appended (µs; 0, 0 if none)
    from what ``last_key`` holds."""
    if raw is None:
        return 0, 0
    position, at_us = _LAST.unpack(raw)
    return int(position), int(at_us)


# One packer, as the layout's: ``msgpack.packb`` builds a packer per call. A failed pack
# leaves it empty, and packing never awaits, so turns cannot interleave on it.
_pack = msgpack.Packer(use_bin_type=True).pack


def encode_event(at_us: int, data: Mapping[str, Any]) -> bytes:
    """An event's stored bytes."""
    packed: bytes = _pack([at_us, data])
    return packed


def decode_event(position: int, raw: bytes) -> SessionEvent:
    """An event from its stored bytes."""
    at_us, data = msgpack.unpackb(raw, raw=False)
    return _event(position, validate.stored_datetime(at_us, _AN_EVENT), data)


class Append(NamedTuple):
    """A checked append: its events and their time, the variables it sets and deletes (a
    tuple: made on every append, in half the time of a frozen attrs record)."""

    events: tuple[dict[str, Any], ...]
    at_us: int | None
    state: tuple[tuple[str, Any], ...]
    deleted: tuple[str, ...]
    expect_position: int | None
    expect_created_us: int | None = None
    #: The variables the append expects, and their values (a missing one reads as ``None``).
    expect_state: tuple[tuple[str, Any], ...] = ()


def created_micros(value: object) -> int:
    """A session's creation time (a datetime, or RFC 3339 text) in whole microseconds since
    the epoch, exactly (no float on the way: it is compared for equality)."""
    moment = value
    if type(value) is str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
    if not isinstance(moment, datetime):
        raise InvalidArgumentError("expect_created_at must be a datetime or RFC 3339 text")
    moment = validate.aware("expect_created_at", moment)
    us: int = (moment - _EPOCH) // timedelta(microseconds=1)
    if not _FIRST_US <= us <= _LAST_US:
        # An offset can carry a time past what a UTC datetime holds (the year 1 at +10:00);
        # no session was created then, and the refusal's message could not name it.
        raise ValidationError(
            f"expect_created_at must be a time from the year 1 to 9999 in UTC, not {value!r}"
        )
    return us


def checked_append(
    events: Sequence[Mapping[str, Any]],
    state: Mapping[str, Any] | None,
    delete: Iterable[str],
    expect_position: int | None,
    at: Any,
    expect_created_at: Any = None,
    expect_state: Mapping[str, Any] | None = None,
) -> Append:
    """The arguments of an append, checked (``state`` values may be ``None``: stored as
    null; ``delete`` names the variables it removes)."""
    # Exact types first: the lists and dicts nearly every caller passes skip the ABC checks.
    if type(events) is not list and (
        isinstance(events, Mapping) or not isinstance(events, Sequence)
    ):
        raise InvalidArgumentError("events must be a list of maps")
    if len(events) > MAX_EVENTS_PER_APPEND:
        raise ValidationError(f"an append holds at most {MAX_EVENTS_PER_APPEND} events")
    checked = []
    for event in events:
        if type(event) is not dict and not isinstance(event, Mapping):
            raise InvalidArgumentError(f"an event must be a map, not {type(event).__name__}")
        # A copy of the caller's map (its top level) is what is checked, stored and journaled.
        copy = dict(event)
        validate.json_like("an event", copy)
        checked.append(copy)
    pairs: tuple[tuple[str, Any], ...] = ()
    if state is not None:
        if type(state) is not dict and not isinstance(state, Mapping):
            raise InvalidArgumentError(f"state must be a map, not {type(state).__name__}")
        pairs = tuple(state.items())
        for key, _ in pairs:  # every name before any value, as before
            validate.state_key(key)
        for key, value in pairs:
            validate.json_like(("state", key), value)
    if isinstance(delete, str):
        raise InvalidArgumentError("delete must be a list of variable names")
    deleted = () if type(delete) is tuple and not delete else tuple(map(validate_key, delete))
    if deleted and pairs and set(deleted) & {k for k, _ in pairs}:
        raise InvalidArgumentError("a variable cannot be both set and deleted by one append")
    if not (checked or pairs or deleted):
        raise ValidationError("an append holds events or changes variables, or both")
    if expect_position is not None and (type(expect_position) is not int or expect_position < 0):
        raise InvalidArgumentError("expect_position must be a non-negative integer")
    at_us = None if at is None else validate.micros("at", at)
    if at_us is not None and not 0 <= at_us <= _LAST_US:
        raise ValidationError(f"at must be a time from 1970 to the year 9999, not {at!r}")
    created = None if expect_created_at is None else created_micros(expect_created_at)
    expected = () if expect_state is None else _expected_state(expect_state)
    return Append(tuple(checked), at_us, pairs, deleted, expect_position, created, expected)


def same_value(stored: Any, expected: Any) -> bool:
    """Whether a stored JSON-like value is ``expected``, kind by kind at every depth: a
    boolean, an integer and a float are three kinds (Python's ``==`` takes ``True`` for
    ``1`` and ``1`` for ``1.0``); a tuple is an array, as it is stored."""
    kind = type(expected)
    if kind is tuple:
        kind = list
    if type(stored) is not kind:
        return False
    if kind is dict:
        return stored.keys() == expected.keys() and all(
            same_value(stored[key], item) for key, item in expected.items()
        )
    if kind is list:
        return len(stored) == len(expected) and all(
            same_value(a, b) for a, b in zip(stored, expected, strict=True)
        )
    return bool(stored == expected)


def _expected_state(expect_state: object) -> tuple[tuple[str, Any], ...]:
    if type(expect_state) is not dict and not isinstance(expect_state, Mapping):
        raise InvalidArgumentError(f"expect_state must be a map, not {type(expect_state).__name__}")
    pairs = tuple((validate_key(k), v) for k, v in expect_state.items())
    for key, value in pairs:
        validate.json_like(("expect_state", key), value)
    return pairs


def validate_key(key: object) -> str:
    """A variable name, as ``set_state`` checks it."""
    validate.state_key(key)
    assert isinstance(key, str)
    return key


def append_batch(
    end: tuple[int, int],
    sid: bytes,
    session_id: str,
    append: Append,
    now_us: int,
    max_value_bytes: int,
    batch: Batch,
) -> dict[str, Any]:
    """Add the append to ``batch``, after the log's ``end`` (``log_end``: its last position
    and last event's time); its journal data (``events_appended``)."""
    last, last_at = end
    if append.expect_position is not None and append.expect_position != last:
        raise InvalidStateTransitionError(
            f"session {session_id} has {last} as its last event position, not "
            f"{append.expect_position}: it was changed since it was read"
        )
    # Times never go back along the log, so reading "after a time" from the end can stop at
    # the first event at or before it: an earlier time is raised to the last event's.
    at_us = max(now_us if append.at_us is None else append.at_us, last_at)
    prefix = keys.SESSION_EVENT + sid
    position = last
    for event in append.events:
        position += 1
        try:
            encoded = encode_event(at_us, event)
        except UnicodeEncodeError as error:
            raise validate.not_unicode("an event", error) from None
        if len(encoded) > max_value_bytes:
            _within(len(encoded), max_value_bytes, f"event {position} of session {session_id}")
        batch.put(prefix + _U64.pack(position), encoded)
    if append.state or append.deleted:
        variables = layout.var_prefix(sid)
        for key, value in append.state:
            try:
                encoded = layout.encode_value(value)
            except UnicodeEncodeError as error:
                raise validate.not_unicode(("state", key), error) from None
            if len(encoded) > max_value_bytes:
                _within(len(encoded), max_value_bytes, f"state {key!r} of session {session_id}")
            batch.put(variables + key.encode(), encoded)
        for key in append.deleted:
            batch.delete(variables + key.encode())
    if append.events:
        batch.put(keys.SESSION_EVENT_LAST + sid, _LAST.pack(position, at_us))
    data: dict[str, Any] = {"first": last + 1, "at": at_us, "events": list(append.events)}
    if append.state:
        data["state"] = dict(append.state)
    if append.deleted:
        data["deleted"] = list(append.deleted)
    return data


def _within(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise ValidationError(
            f"{what} encodes to {size} bytes; the limit is {limit} (max_value_bytes)"
        )


async def read(
    sessions: SessionRecords, sid: bytes, *, last: int | None, after_us: int | None
) -> list[SessionEvent]:
    """The session's events, oldest first: the last ``last`` of them, and of those only the
    ones after ``after_us`` (read back from the end: event times grow with positions)."""
    if last is None and after_us is None:
        return await sessions.events(sid)
    found: list[SessionEvent] = []
    unpack, position_at, dated = msgpack.unpackb, _U64.unpack_from, validate.stored_datetime
    new, set_position, set_at, set_data = _new_object, _set_position, _set_at, _set_data
    moment_us, moment = -1, _EPOCH  # the events of one append share their time: made once
    # Paged (``last`` a page when given): the read stops at the first event not after
    # ``after_us``, and a networked store is asked for no more than that.
    start, newest_first = sessions.events_newest_first(sid, page=last or 256)
    async with aclosing(newest_first):
        async for key, raw in newest_first:
            at_us, data = unpack(raw)
            if at_us != moment_us:
                if after_us is not None and at_us <= after_us:
                    break
                moment_us, moment = at_us, dated(at_us, _AN_EVENT)
            event = new(SessionEvent)  # ``_event``, inline: once per event read
            set_position(event, position_at(key, start)[0])
            set_at(event, moment)
            set_data(event, data)
            found.append(event)
            if len(found) == last:
                break
    found.reverse()
    return found


def rebuilt(
    events: Mapping[int, tuple[int, dict[str, Any]]], last: int, last_at: int, sid: bytes
) -> dict[bytes, bytes]:
    """The keys and values of the log ``events`` (position → (at µs, data)) whose last given
    position is ``last`` and last event time ``last_at`` (a fork's, an import's, check's)."""
    found = {
        event_key(sid, position): encode_event(at_us, data)
        for position, (at_us, data) in sorted(events.items())
    }
    if last:
        found[last_key(sid)] = _LAST.pack(last, last_at)
    return found


def check_entry(kind: str, data: Mapping[str, Any]) -> None:
    """Refuse (``ValidationError``) an event-log journal entry not as appends, pops, clears
    and forks write them: what an archive brings is checked before the log is rebuilt."""
    if kind == "events_appended":
        first, events, at_us = data.get("first"), data.get("events"), data.get("at")
        ok = (
            type(first) is int
            and 1 <= first <= _POSITION_MAX
            and isinstance(events, list)
            and all(isinstance(e, dict) for e in events)
            and type(at_us) is int
            and 0 <= at_us <= _LAST_US
            and isinstance(data.get("state", {}), dict)
            and isinstance(deleted := data.get("deleted", []), list)
            and all(isinstance(k, str) for k in deleted)
        )
    elif kind == "event_popped":
        position = data.get("position")
        ok = type(position) is int and 1 <= position <= _POSITION_MAX
    elif kind == "session_forked":
        ok = _fork_entry_ok(data)
    else:
        ok = type(data.get("count")) is int
    if not ok:
        raise ValidationError(f"a {kind} journal entry is malformed")


#: What a fork's journal entry holds of each artifact it copied (read back by replays).
_FORKED_ARTIFACT = frozenset({"id", "name", "version", "hash", "size", "type"})


def _fork_entry_ok(data: Mapping[str, Any]) -> bool:
    """Whether a fork's journal entry holds its variables, its artifacts and the log it
    copied (``events``, ``last_event``, ``last_event_at``) as ``session_forked`` writes them."""
    artifacts, events = data.get("artifacts"), data.get("events", [])
    last, last_at = data.get("last_event", 0), data.get("last_event_at", 0)
    return (
        isinstance(data.get("variables"), dict)
        and isinstance(artifacts, list)
        and all(isinstance(a, dict) and a.keys() >= _FORKED_ARTIFACT for a in artifacts)
        and type(last) is int
        and 0 <= last <= _POSITION_MAX
        and isinstance(events, list)
        and all(_copied_event_ok(event, last) for event in events)
        and type(last_at) is int
        and 0 <= last_at <= _LAST_US
    )


def _copied_event_ok(event: object, last: int) -> bool:
    """Whether ``event`` is ``[position, time µs, data]`` as a fork's entry copies it, at
    a position given before ``last`` (the next append gives the one after)."""
    if not (isinstance(event, list) and len(event) == 3):
        return False
    position, at_us, data = event
    return (
        type(position) is int
        and 1 <= position <= last
        and type(at_us) is int
        and 0 <= at_us <= _LAST_US
        and isinstance(data, dict)
    )
