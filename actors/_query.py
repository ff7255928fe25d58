"""Reading sessions: one by id, and ``list`` queries served from the secondary indexes.

A query never loads every session. Equality filters (status, tag, parent) each have an index
ordered by creation time, so in the default order the query scans the smallest of them within
the creation-time range, checks the other filters on the records it meets, and stops once it
has ``offset + limit`` matches. Ordered by name or update time, a filter index with fewer than
``SMALL`` entries is read whole and sorted; otherwise the order's own index is scanned and
filtered. Only ``search`` alone (a substring, which no index serves) can scan many records.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import attrs
from satchel.storage import KeyValueStore, prefix_upper_bound

from satchel._errors import InvalidArgumentError, ValidationError

from . import _layout as layout
from . import _validate as validate
from ._model import SessionInfo, SessionStatus

ORDERS = ("created_at", "updated_at", "name")
#: An index range this small is read whole rather than scanning an order index.
SMALL = 512
#: How many index entries are counted to find the most selective filter.
PROBE = 256
_LOAD_CHUNK = 64


@attrs.frozen
class SessionQuery:
    """A validated ``list`` query (times in µs since the epoch, bounds exclusive)."""

    status: SessionStatus | None = None
    tags: tuple[str, ...] = ()
    parent_session_id: str | None = None
    search: str | None = None
    created_after_us: int | None = None
    created_before_us: int | None = None
    order_by: str = "created_at"
    descending: bool = False
    offset: int = 0
    limit: int | None = None


def make_query(
    *,
    status: str | SessionStatus | None = None,
    tags: Iterable[str] | None = None,
    parent_session_id: str | None = None,
    search: str | None = None,
    created_after: Any = None,
    created_before: Any = None,
    order_by: str = "created_at",
    descending: bool = False,
    offset: int = 0,
    limit: int | None = None,
) -> SessionQuery:
    """A ``SessionQuery`` from the spec's filters, each checked."""
    if status is not None:
        try:
            status = SessionStatus(status)
        except ValueError:
            names = ", ".join(s.value for s in SessionStatus)
            raise ValidationError(f"unknown status {status!r}; use one of {names}") from None
    parent = None if parent_session_id is None else validate.session_id(parent_session_id)[0]
    if search is not None:
        validate.text("search", search, validate.MAX_DESCRIPTION_BYTES, nul_ok=True)
    if order_by not in ORDERS:
        raise ValidationError(f"cannot order sessions by {order_by!r}; use one of {ORDERS}")
    if type(descending) is not bool:
        raise InvalidArgumentError(f"descending must be a boolean, not {descending!r}")
    for field, value in (("offset", offset), ("limit", limit)):
        if value is not None and (type(value) is not int or value < 0):
            raise ValidationError(f"{field} must be a non-negative integer, not {value!r}")
    return SessionQuery(
        status=status,
        tags=() if tags is None else validate.tags(tags),
        parent_session_id=parent,
        search=search.casefold() if search else None,
        created_after_us=_time("created_after", created_after),
        created_before_us=_time("created_before", created_before),
        order_by=order_by,
        descending=descending,
        offset=offset,
        limit=limit,
    )


def _time(field: str, value: Any) -> int | None:
    return None if value is None else validate.micros(field, value)


def to_info(record: layout.SessionRecord, counters: layout.Counters) -> SessionInfo:
    """The session table of a stored session."""
    return SessionInfo(
        id=record.id,
        name=record.name,
        description=record.description,
        tags=record.tags,
        metadata=record.metadata,
        status=record.status,
        parent_session_id=record.parent_id,
        config=record.config,
        created_at=validate.to_datetime(record.created_us),
        updated_at=validate.to_datetime(counters.updated_us),
        ended_at=None if record.ended_us is None else validate.to_datetime(record.ended_us),
        artifact_count=counters.artifacts,
        total_bytes=counters.total_bytes,
        operation_count=counters.operations,
        failure_reason=record.failure_reason,
    )


Loaded = tuple[layout.SessionRecord, layout.Counters]


def load(kv: KeyValueStore, sids: list[bytes]) -> list[Loaded | None]:
    """The record and counters of each session, ``None`` where there is none."""
    wanted = [k for sid in sids for k in (layout.record_key(sid), layout.counters_key(sid))]
    values = kv.get_many(wanted)
    found: list[Loaded | None] = []
    for raw_record, raw_counters in zip(values[::2], values[1::2], strict=True):
        if raw_record is None or raw_counters is None:
            found.append(None)
        else:
            found.append(
                (layout.RECORD_CODEC.decode(raw_record), layout.Counters.decode(raw_counters))
            )
    return found


def run_query(kv: KeyValueStore, query: SessionQuery) -> list[SessionInfo]:
    """The sessions matching ``query``, in its order, paginated."""
    sources = _filter_prefixes(query)
    if query.order_by == "created_at":
        prefix = _most_selective(kv, query, sources)[0] if sources else layout.BY_CREATED
        lower, upper = _created_range(query, prefix)
        keys = kv.scan(lower, upper, reverse=query.descending)
        return _paginate(query, _matching(kv, query, (key[-16:] for key, _ in keys)))
    if sources:
        prefix, count = _most_selective(kv, query, sources, probe=SMALL)
        if count < SMALL:
            lower, upper = _created_range(query, prefix)
            found = list(_matching(kv, query, (key[-16:] for key, _ in kv.scan(lower, upper))))
            found.sort(key=_sort_key(query.order_by), reverse=query.descending)
            return _paginate(query, iter(found))
    order_prefix = layout.BY_NAME if query.order_by == "name" else layout.BY_UPDATED
    keys = kv.scan(order_prefix, prefix_upper_bound(order_prefix), reverse=query.descending)
    return _paginate(query, _matching(kv, query, (key[-16:] for key, _ in keys)))


def _filter_prefixes(query: SessionQuery) -> list[bytes]:
    """The creation-ordered index prefixes of the query's equality filters."""
    prefixes = []
    if query.parent_session_id is not None:
        prefixes.append(layout.parent_prefix(layout.bytes_of(query.parent_session_id)))
    if query.status is not None:
        prefixes.append(layout.status_prefix(query.status))
    prefixes.extend(layout.tag_prefix(tag) for tag in query.tags)
    return prefixes


def _created_range(query: SessionQuery, prefix: bytes) -> tuple[bytes, bytes]:
    lower = prefix
    if query.created_after_us is not None:
        lower = prefix + layout.u64(query.created_after_us + 1)
    upper = prefix_upper_bound(prefix)
    if query.created_before_us is not None:
        upper = prefix + layout.u64(query.created_before_us)
    return lower, upper


def _most_selective(
    kv: KeyValueStore, query: SessionQuery, prefixes: list[bytes], probe: int = PROBE
) -> tuple[bytes, int]:
    """The filter index with the fewest entries in range (counted up to ``probe``)."""
    best, best_count = prefixes[0], probe
    if len(prefixes) == 1 and probe == PROBE:
        return best, best_count
    for prefix in prefixes:
        lower, upper = _created_range(query, prefix)
        count = sum(1 for _ in kv.scan(lower, upper, limit=probe))
        if count < best_count:
            best, best_count = prefix, count
    return best, best_count


def _matches(query: SessionQuery, record: layout.SessionRecord) -> bool:
    if query.status is not None and record.status is not query.status:
        return False
    if query.parent_session_id is not None and record.parent_id != query.parent_session_id:
        return False
    if query.tags and not set(query.tags).issubset(record.tags):
        return False
    created = record.created_us
    if query.created_after_us is not None and created <= query.created_after_us:
        return False
    if query.created_before_us is not None and created >= query.created_before_us:
        return False
    if query.search is not None:
        needle = query.search
        return needle in record.name.casefold() or needle in record.description.casefold()
    return True


def _matching(kv: KeyValueStore, query: SessionQuery, sids: Iterator[bytes]) -> Iterator[Loaded]:
    """The loaded sessions among ``sids`` that match, read in chunks, in order."""
    size = _LOAD_CHUNK
    if query.limit is not None:
        # A small page should not pay for loading a full chunk of records.
        size = min(size, max(8, query.offset + query.limit))
    while chunk := list(itertools.islice(sids, size)):
        size = _LOAD_CHUNK
        for loaded in load(kv, chunk):
            if loaded is not None and _matches(query, loaded[0]):
                yield loaded


def _sort_key(order_by: str) -> Any:
    if order_by == "name":
        return lambda loaded: (layout.name_sort_key(loaded[0].name), layout.bytes_of(loaded[0].id))
    return lambda loaded: (loaded[1].updated_us, layout.bytes_of(loaded[0].id))


def _paginate(query: SessionQuery, found: Iterator[Loaded]) -> list[SessionInfo]:
    stop = None if query.limit is None else query.offset + query.limit
    return [to_info(*loaded) for loaded in itertools.islice(found, query.offset, stop)]
