"""How a session sits in the index space: its record, counters, variables, journal, indexes.

A session is split so that the hot path stays small. The record (name, tags, metadata,
config, status...) changes only at creation and on lifecycle transitions; the counters (last
journal sequence, last update, operation/artifact/byte counts) are a fixed 40-byte struct
rewritten by every operation. Secondary indexes are empty values under ordered keys; all
but the by-name and by-update ones are ordered by creation time, so an equality filter and
the default order are served by one range scan.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from enum import Enum
from typing import Any, NamedTuple

import attrs
import msgpack

from satchel.runtime._errors import IntegrityError
from satchel.storage import Batch, RecordCodec, prefix_upper_bound
from satchel.storage import _keys as keys
from satchel.storage._codec import converter

from .._model import SessionConfig, SessionStatus

_U64 = struct.Struct(">Q")
_COUNTERS = struct.Struct(">QqQQQ")
ID_BYTES = 16


class Deadline(Enum):
    """Why a session needs attention at a given time."""

    MAX_DURATION = b"d"
    IDLE = b"i"
    RETENTION = b"r"
    ARCHIVE_RETENTION = b"x"


@attrs.frozen
class SessionRecord:
    """What is stored for a session besides its counters, variables and journal."""

    id: str
    name: str
    description: str
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    parent_id: str | None
    config: SessionConfig
    status: SessionStatus
    created_us: int
    ended_us: int | None = None
    failure_reason: str | None = None
    # (due in µs, Deadline value) pairs this session has in the deadline index.
    deadlines: tuple[tuple[int, bytes], ...] = ()
    # The session whose budget this one's operations also count against (``_budgets``).
    budget_of: str | None = None
    # The key a caller chose for it (its id is derived from the key), and the application and
    # user it belongs to, if given.
    key: str | None = None
    app: str | None = None
    user: str | None = None


def _from_version_1(fields: dict[str, Any]) -> dict[str, Any]:
    return {**fields, "key": None, "app": None, "user": None}


_unstructure_config = converter.get_unstructure_hook(SessionConfig)
_unstructure_map = converter.get_unstructure_hook(dict[str, Any])
_unstructure_deadlines = converter.get_unstructure_hook(tuple[tuple[int, bytes], ...])
#: The last config unstructured and its map: sessions mostly share the runtime's defaults
#: (a config is frozen; holding it keeps its identity from being reused). One tuple,
#: replaced whole, so a thread never pairs one config with another's map.
_last_config: tuple[Any, Any] = (None, None)


def _unstructure_record(record: SessionRecord) -> dict[str, Any]:
    # What cattrs' generated hook gives (every create writes one), at half its cost.
    global _last_config
    config, cached = record.config, _last_config
    if config is not cached[0]:
        cached = _last_config = (config, _unstructure_config(config))
    return {
        "id": record.id,
        "name": record.name,
        "description": record.description,
        "tags": list(record.tags),
        "metadata": _unstructure_map(record.metadata) if record.metadata else {},
        "parent_id": record.parent_id,
        "config": cached[1],
        "status": record.status,
        "created_us": record.created_us,
        "ended_us": record.ended_us,
        "failure_reason": record.failure_reason,
        "deadlines": _unstructure_deadlines(record.deadlines) if record.deadlines else [],
        "budget_of": record.budget_of,
        "key": record.key,
        "app": record.app,
        "user": record.user,
    }


_structure_config = converter.get_structure_hook(SessionConfig)
#: The last config map structured and its config: sessions mostly share the runtime's
#: defaults, and structuring one (with its checks) is most of a record's cost. A config is
#: frozen, and equal maps structure to equal configs. One tuple, replaced whole.
_last_config_map: tuple[Any, Any] = (None, None)


def _structure_record(raw: Any) -> SessionRecord:
    # What cattrs' structure gives for a record of the usual shape, in a third of its time
    # (a query reads one record per session it returns). Anything else raises, and the codec
    # lets cattrs decide and word the error.
    global _last_config_map
    config_map, cached = raw["config"], _last_config_map
    if type(config_map) is not dict:
        raise TypeError("not the usual shape")
    if config_map != cached[0]:
        cached = _last_config_map = (config_map, _structure_config(config_map, SessionConfig))
    tags, metadata, deadlines = raw["tags"], raw["metadata"], raw["deadlines"]
    if type(tags) is not list or type(metadata) is not dict or type(deadlines) is not list:
        raise TypeError("not the usual shape")
    for text in (raw["id"], raw["name"], raw["description"], *tags, *metadata):
        if type(text) is not str:
            raise TypeError("not the usual shape")
    for text in (
        raw["parent_id"], raw["failure_reason"], raw["budget_of"], raw["key"], raw["app"],
        raw["user"],
    ):  # fmt: skip
        if text is not None and type(text) is not str:
            raise TypeError("not the usual shape")
    created, ended = raw["created_us"], raw["ended_us"]
    if type(created) is not int or (ended is not None and type(ended) is not int):
        raise TypeError("not the usual shape")
    for pair in deadlines:
        if type(pair) is not list or len(pair) != 2:
            raise TypeError("not the usual shape")
        if type(pair[0]) is not int or type(pair[1]) is not bytes:
            raise TypeError("not the usual shape")
    return SessionRecord(
        raw["id"],
        raw["name"],
        raw["description"],
        tuple(tags),
        dict(metadata),
        raw["parent_id"],
        cached[1],
        SessionStatus(raw["status"]),
        created,
        ended,
        raw["failure_reason"],
        tuple([(due, why) for due, why in deadlines]),
        raw["budget_of"],
        raw["key"],
        raw["app"],
        raw["user"],
    )


RECORD_CODEC = RecordCodec(
    SessionRecord,
    kind="session",
    version=2,
    upgrades={1: _from_version_1},
    unstructure=_unstructure_record,
    fast=_structure_record,
)


class Counters(NamedTuple):
    """The part of a session every operation changes (a tuple: built on every write, and
    a third of the cost of a frozen attrs record)."""

    seq: int = 0
    updated_us: int = 0
    operations: int = 0
    artifacts: int = 0
    total_bytes: int = 0

    def encode(self) -> bytes:
        """The 40 bytes stored."""
        return _COUNTERS.pack(*self)

    @classmethod
    def decode(cls, data: bytes) -> Counters:
        """The counters stored as ``data``."""
        if len(data) != _COUNTERS.size:
            raise IntegrityError(f"session counters are {len(data)} bytes, not {_COUNTERS.size}")
        return cls(*_COUNTERS.unpack(data))


# ``Counters.updated_us`` alone, where it sits in the stored counters (after ``seq``).
_UPDATED_AT = struct.Struct(">q")


def updated_us_of(data: bytes) -> int:
    """``Counters.decode(data).updated_us`` without the rest: a query ordered by update time
    reads the counters of every session updated in the same bucket."""
    if len(data) != _COUNTERS.size:
        raise IntegrityError(f"session counters are {len(data)} bytes, not {_COUNTERS.size}")
    updated: int = _UPDATED_AT.unpack_from(data, 8)[0]
    return updated


_U64_MAX = (1 << 64) - 1


def u64(value: int) -> bytes:
    """``value`` as 8 big-endian bytes (clamped to 0..2^64-1), so keys sort by it."""
    return _U64.pack(min(max(0, value), _U64_MAX))


def seq_bytes(seq: int) -> bytes:
    """A journal sequence number (always in range) as it ends a journal key."""
    return _U64.pack(seq)


def record_key(sid: bytes) -> bytes:
    """Where the record of session ``sid`` is."""
    return keys.SESSION + sid


def counters_key(sid: bytes) -> bytes:
    """Where the counters of session ``sid`` are."""
    return keys.SESSION_COUNTERS + sid


def var_prefix(sid: bytes) -> bytes:
    """The prefix of every variable of session ``sid``."""
    return keys.SESSION_VAR + sid


def journal_prefix(sid: bytes) -> bytes:
    """The prefix of every journal entry of session ``sid``."""
    return keys.JOURNAL + sid


def journal_key(sid: bytes, seq: int) -> bytes:
    """Where journal entry ``seq`` of session ``sid`` is."""
    return keys.JOURNAL + sid + u64(seq)


_packer = msgpack.Packer(use_bin_type=True)


def encode_entry(
    at_us: int, kind: str, data: dict[str, Any], cause: dict[str, Any] | None = None
) -> bytes:
    """A journal entry's stored bytes (its sequence is in the key); ``cause`` names the
    entry, in this session or another, that led to this one."""
    packed: bytes = _packer.pack(
        (at_us, kind, data) if cause is None else (at_us, kind, data, cause)
    )
    return packed


#: What decoding bytes that are no journal entry raises (msgpack's errors are ValueErrors or
#: its UnpackException; a value of another shape fails unpacking or indexing).
_UNDECODABLE = (ValueError, TypeError, IndexError, msgpack.UnpackException)


def decode_entry_with_cause(
    value: bytes,
) -> tuple[int, str, dict[str, Any], dict[str, Any] | None]:
    """``(at_us, kind, data, cause)`` of a stored journal entry; ``IntegrityError`` if the
    bytes do not decode (a damaged record). Their types are not checked here, on replay's
    path: ``check_entry`` does that where an entry leaves satchel."""
    try:
        entry = msgpack.unpackb(value, raw=False, strict_map_key=False)
        return entry[0], entry[1], entry[2], entry[3] if len(entry) > 3 else None
    except _UNDECODABLE as error:
        raise IntegrityError(f"a journal entry does not decode: {error!r}") from None


def check_entry(at_us: object, kind: object, data: object, cause: object) -> None:
    """``IntegrityError`` unless a decoded journal entry is a time, a kind, its data and its
    cause (a damaged record is not handed on to readers or subscribers)."""
    if (
        type(at_us) is not int
        or type(kind) is not str
        or type(data) is not dict
        or (cause is not None and type(cause) is not dict)
    ):
        raise IntegrityError("a journal entry is not a time, a kind, its data and its cause")


def decode_entry(value: bytes) -> tuple[int, str, dict[str, Any]]:
    """``(at_us, kind, data)`` of a stored journal entry; ``IntegrityError`` if the bytes do
    not decode (a damaged record)."""
    try:
        at_us, kind, data = msgpack.unpackb(value, raw=False, strict_map_key=False)[:3]
    except _UNDECODABLE as error:
        raise IntegrityError(f"a journal entry does not decode: {error!r}") from None
    return at_us, kind, data


def encode_value(value: Any) -> bytes:
    """A variable's stored bytes."""
    packed: bytes = _packer.pack(value)
    return packed


def decode_value(data: bytes) -> Any:
    """A variable's value from its stored bytes."""
    return msgpack.unpackb(data, raw=False)


# Index letters. Each index key ends with the 16-byte session id.
BY_CREATED = keys.SESSION_INDEX + b"c"
BY_UPDATED = keys.SESSION_INDEX + b"u"
BY_NAME = keys.SESSION_INDEX + b"n"
BY_STATUS = keys.SESSION_INDEX + b"s"
BY_TAG = keys.SESSION_INDEX + b"t"
BY_PARENT = keys.SESSION_INDEX + b"p"
BY_BUDGET = keys.SESSION_INDEX + b"b"
BY_APP = keys.SESSION_INDEX + b"a"
BY_USER = keys.SESSION_INDEX + b"w"

_STATUS_BYTE = {status: bytes([i + 1]) for i, status in enumerate(SessionStatus)}


def status_prefix(status: SessionStatus) -> bytes:
    """The prefix of the by-status index for ``status`` (creation-ordered)."""
    return BY_STATUS + _STATUS_BYTE[status]


def tag_prefix(tag: str) -> bytes:
    """The prefix of the by-tag index for ``tag`` (creation-ordered)."""
    return BY_TAG + tag.encode() + b"\x00"


def spent_prefix(holder: bytes) -> bytes:
    """The prefix of the operations deleted sessions had counted against ``holder``."""
    return keys.SESSION_SPENT + holder


def budget_prefix(holder: bytes) -> bytes:
    """The prefix of the sessions counting against the budget of ``holder``."""
    return BY_BUDGET + holder


def app_prefix(app: str) -> bytes:
    """The prefix of the sessions of application ``app`` (creation-ordered)."""
    return BY_APP + app.encode() + b"\x00"


def user_prefix(app: str | None, user: str) -> bytes:
    """The prefix of the sessions of ``user`` in application ``app`` (creation-ordered)."""
    return BY_USER + (app or "").encode() + b"\x00" + user.encode() + b"\x00"


def parent_prefix(parent: bytes) -> bytes:
    """The prefix of the children of ``parent`` (creation-ordered)."""
    return BY_PARENT + parent


def name_sort_key(name: str) -> bytes:
    """The by-name index orders names case-insensitively."""
    return name.casefold().encode()


#: The by-update index orders sessions by the 64th of a second of their last update; the
#: exact order within one comes from the counters (see ``by_update_time``). A query reads the
#: counters of every session in each bucket it reaches, and a second can hold thousands of
#: busy sessions (earlier versions bucketed by the second); a write moves its session's
#: entry when the bucket changes (a delete and a put, which on PostgreSQL also costs a
#: heavier statement), so a burst of writes within ~16 ms moves it once.
UPDATE_BUCKET_US = 15_625
#: Added to every such bucket, so that they sort after those of earlier versions, which
#: bucketed by the second (``legacy_updated_key``); a runtime moves those when it opens
#: (``move_earlier_update_entries``).
FINE_BUCKETS = 1 << 63
_LEGACY_BUCKET_US = 1_000_000


def updated_key(sid: bytes, updated_us: int) -> bytes:
    """The by-update index key of a session updated at ``updated_us`` (its value is the
    session's creation time, as in the by-name index)."""
    return BY_UPDATED + u64(FINE_BUCKETS + max(updated_us // UPDATE_BUCKET_US, 0)) + sid


def legacy_updated_key(sid: bytes, updated_us: int) -> bytes:
    """The by-update index key earlier versions gave a session updated at ``updated_us``
    (bucketed by the second); a data folder holds it until it is opened (see
    ``FINE_BUCKETS``)."""
    return BY_UPDATED + u64(updated_us // _LEGACY_BUCKET_US) + sid


def same_update_bucket(a_us: int, b_us: int) -> bool:
    """Whether two update times share one by-update index entry."""
    return a_us // UPDATE_BUCKET_US == b_us // UPDATE_BUCKET_US


def status_key(sid: bytes, record: SessionRecord) -> bytes:
    """The by-status index key of ``record``."""
    return status_prefix(record.status) + u64(record.created_us) + sid


def search_text(record: SessionRecord) -> bytes:
    """What ``search`` looks in: the name and description, case-folded, NUL-separated."""
    return f"{record.name.casefold()}\x00{record.description.casefold()}".encode()


def index_entries(sid: bytes, record: SessionRecord) -> list[tuple[bytes, bytes]]:
    """Every index entry of ``record`` except the by-update one (which moves with counters).

    Keys of the creation-ordered indexes end with ``created + sid`` (their *suffix*), so a
    query can test any session it meets against another such index by one multi-get. The
    by-creation entry holds the search text; the by-name one the creation time, from which
    the suffix is rebuilt.
    """
    created = u64(record.created_us)
    found = [
        (BY_CREATED + created + sid, search_text(record)),
        (BY_NAME + name_sort_key(record.name) + b"\x00" + sid, created),
        (status_prefix(record.status) + created + sid, b""),  # status_key(sid, record)
    ]
    found.extend((tag_prefix(tag) + created + sid, b"") for tag in record.tags)
    if record.parent_id is not None:
        found.append((parent_prefix(bytes_of(record.parent_id)) + created + sid, b""))
    if record.budget_of is not None:
        found.append((budget_prefix(bytes_of(record.budget_of)) + created + sid, b""))
    if record.app is not None:
        found.append((app_prefix(record.app) + created + sid, b""))
    if record.user is not None:
        found.append((user_prefix(record.app, record.user) + created + sid, b""))
    return found


def deadline_key(due_us: int, sid: bytes, reason: bytes) -> bytes:
    """The deadline index key asking for session ``sid`` to be looked at at ``due_us``."""
    return keys.DEADLINE + u64(due_us) + sid + reason


def move_deadlines(
    batch: Batch,
    sid: bytes,
    old: Iterable[tuple[int, bytes]],
    new: Iterable[tuple[int, bytes]],
) -> list[int]:
    """Put in ``batch`` the index changes of session ``sid`` from ``old`` to ``new`` deadlines
    (``()`` for none); the due times that were added."""
    before, after = set(old), set(new)
    for due, reason in before - after:
        batch.delete(deadline_key(due, sid, reason))
    added = after - before
    for due, reason in added:
        batch.put(deadline_key(due, sid, reason), b"")
    return [due for due, _ in added]


def parse_deadline_key(key: bytes) -> tuple[int, bytes, bytes]:
    """``(due_us, sid, reason)`` of a deadline index key."""
    start = len(keys.DEADLINE)
    due = _U64.unpack_from(key, start)[0]
    sid = key[start + 8 : start + 8 + ID_BYTES]
    return due, sid, key[start + 8 + ID_BYTES :]


DEADLINES_UPPER = prefix_upper_bound(keys.DEADLINE)


def bytes_of(session_id: str) -> bytes:
    """The 16 bytes of a canonical session id (already validated: a key is not one)."""
    if len(session_id) != 36:
        raise ValueError(f"not a canonical session id: {session_id!r}")
    return bytes.fromhex(session_id.replace("-", ""))


def text_of(sid: bytes) -> str:
    """The canonical text of 16 session id bytes."""
    h = sid.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
