"""Reading sessions: one by id, and ``list`` queries served from the secondary indexes.

A query never loads a session record to decide whether it matches. Equality filters
(status, each tag, parent) have indexes ordered by creation time whose keys end with the same
*suffix* (creation time + id). In the default order the query scans the most selective of
them within the creation-time range and tests each suffix it meets against the other filters'
indexes with one multi-get per chunk; ``search`` reads the case-folded text kept as the value
of the by-creation index. Only the page returned (``limit`` sessions after ``offset``) is
loaded. Ordered by name or update time, a filter index with fewer than ``SMALL`` entries is
read whole and sorted; otherwise the order's own index (whose values give the suffix) is
scanned and tested the same way.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from typing import Any

import attrs

from satchel.runtime._errors import InvalidArgumentError, ValidationError
from satchel.storage import RecordReads, prefix_upper_bound

from .. import _indexscan as indexscan
from .. import _validate as validate
from .._model import SessionInfo, SessionStatus
from . import _session_layout as layout
from ._session_records import Loaded as Loaded
from ._session_records import SessionRecords
from ._session_records import load as load

ORDERS = ("created_at", "updated_at", "name")
#: An index range this small is read whole rather than scanning an order index.
SMALL = 512
#: How many index entries are counted to find the most selective filter.
PROBE = 256


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
    app: str | None = None
    user: str | None = None


QUERY_FIELDS = frozenset(
    {
        "app",
        "user",
        "status",
        "tags",
        "parent_session_id",
        "search",
        "created_after",
        "created_before",
        "order_by",
        "descending",
        "offset",
        "limit",
    }
)


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
    app: str | None = None,
    user: str | None = None,
) -> SessionQuery:
    """A ``SessionQuery`` from the spec's filters, each checked (``user`` within ``app``:
    the sessions created with both)."""
    if status is not None:
        if not isinstance(status, str):
            raise InvalidArgumentError(f"status must be a string, not {type(status).__name__}")
        try:
            status = SessionStatus(status)
        except ValueError:
            names = ", ".join(s.value for s in SessionStatus)
            raise ValidationError(f"unknown status {status!r}; use one of {names}") from None
    parent = None if parent_session_id is None else validate.session_id(parent_session_id)[0]
    if search is not None:
        validate.text("search", search, validate.MAX_DESCRIPTION_BYTES)
    if order_by not in ORDERS:
        raise ValidationError(f"cannot order sessions by {order_by!r}; use one of {ORDERS}")
    if type(descending) is not bool:
        raise InvalidArgumentError(f"descending must be a boolean, not {descending!r}")
    validate.page(offset, limit)
    if user is not None and app is None:
        raise InvalidArgumentError("a user is one of an app's: list(app=..., user=...)")
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
        app=None if app is None else scope("app", app),
        user=None if user is None else scope("user", user),
    )


def scope(field: str, value: object) -> str:
    """An application or user name: text of 1..256 UTF-8 bytes, no NUL."""
    checked = validate.text(field, value, validate.MAX_SESSION_KEY_BYTES)
    if not checked:
        raise ValidationError(f"{field} must not be empty")
    return checked


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
        # Times read from the store: one no date can hold is a damaged record.
        created_at=validate.stored_datetime(record.created_us, "a session record"),
        updated_at=validate.stored_datetime(counters.updated_us, "session counters"),
        ended_at=(
            None
            if record.ended_us is None
            else validate.stored_datetime(record.ended_us, "a session record")
        ),
        artifact_count=counters.artifacts,
        total_bytes=counters.total_bytes,
        operation_count=counters.operations,
        failure_reason=record.failure_reason,
        key=record.key,
        app=record.app,
        user=record.user,
    )


async def run_query(records: RecordReads, query: SessionQuery) -> list[SessionInfo]:
    """The sessions matching ``query``, in its order, paginated."""
    sessions = SessionRecords(records)
    filters = _filter_prefixes(query)
    # Index entries are read a page at a time, as the tests of the first chunk use them.
    page = indexscan.first_chunk(query.offset, query.limit)
    if query.order_by == "created_at":
        driver = (
            (await _most_selective(sessions, query, filters))[0] if filters else layout.BY_CREATED
        )
        lower, upper = _created_range(query, driver)
        entries = sessions.index_page_lists(lower, upper, reverse=query.descending, page=page)
        found = _tested(sessions, query, _suffixes(driver, entries), filters, driver)
        return await _page(sessions, query, found)
    if filters:
        driver, count = await _most_selective(sessions, query, filters, probe=SMALL)
        if count < SMALL:
            lower, upper = _created_range(query, driver)
            entries = sessions.index_page_lists(lower, upper, page=SMALL)  # one page: all
            tested = _tested(sessions, query, _suffixes(driver, entries), filters, driver)
            matched = await indexscan.page_of(tested, 0, None)
            loaded = [x for x in await sessions.load([s[8:] for s in matched]) if x is not None]
            loaded.sort(key=_sort_key(query.order_by), reverse=query.descending)
            return [to_info(*x) for x in indexscan.window(iter(loaded), query.offset, query.limit)]
    order = layout.BY_NAME if query.order_by == "name" else layout.BY_UPDATED
    upper = prefix_upper_bound(order)
    ordered = sessions.index_pages(order, upper, reverse=query.descending, page=page)
    if order == layout.BY_UPDATED:
        ordered = by_update_time(sessions, ordered, descending=query.descending)
    suffixes = _in_created_range(query, _order_suffixes(ordered))
    return await _page(sessions, query, _tested(sessions, query, suffixes, filters, None))


async def recently_updated(sessions: SessionRecords, count: int) -> list[str]:
    """The ids of the ``count`` most recently updated sessions, newest first."""
    upper = prefix_upper_bound(layout.BY_UPDATED)
    page = indexscan.first_chunk(0, count)
    index = sessions.index_pages(layout.BY_UPDATED, upper, reverse=True, page=page)
    newest = await indexscan.page_of(by_update_time(sessions, index, descending=True), 0, count)
    return [layout.text_of(key[-layout.ID_BYTES :]) for key, _ in newest]


async def _order_suffixes(
    entries: AsyncGenerator[tuple[bytes, bytes], None],
) -> AsyncGenerator[Suffix, None]:
    """The suffixes of an order index's entries (their values hold the creation time)."""
    async with aclosing(entries):
        async for key, value in entries:
            yield value + key[-layout.ID_BYTES :]


async def query_among(
    sessions: SessionRecords, sids: Iterable[str], query: SessionQuery
) -> list[SessionInfo]:
    """The sessions among ``sids`` matching ``query``, in its order, paginated. Only those
    sessions are read, so what a caller who may see only them gets, and how long it takes,
    is the same whether or not other sessions exist."""
    wanted = sorted({validate.session_id(sid)[1] for sid in sids})
    kept = [x for x in await sessions.load(wanted) if x is not None and _matches(x[0], query)]
    if query.order_by == "created_at":
        kept.sort(key=lambda x: (x[0].created_us, layout.bytes_of(x[0].id)))
    else:
        kept.sort(key=_sort_key(query.order_by))
    if query.descending:
        kept.reverse()
    return [to_info(*x) for x in indexscan.window(iter(kept), query.offset, query.limit)]


def _matches(record: layout.SessionRecord, query: SessionQuery) -> bool:
    """Whether one session passes every filter of ``query`` (as the indexes judge it)."""
    after, before = query.created_after_us, query.created_before_us
    return (
        (query.status is None or record.status == query.status)
        and all(tag in record.tags for tag in query.tags)
        and (query.parent_session_id is None or record.parent_id == query.parent_session_id)
        and (query.app is None or record.app == query.app)
        and (query.user is None or (record.user == query.user and record.app == query.app))
        and (query.search is None or query.search.encode() in layout.search_text(record))
        and (after is None or record.created_us > after)
        and (before is None or record.created_us < before)
    )


async def by_update_time(
    sessions: SessionRecords,
    entries: AsyncGenerator[tuple[bytes, bytes], None],
    *,
    descending: bool,
) -> AsyncGenerator[tuple[bytes, bytes], None]:
    """By-update index entries in exact update order: the index orders them by the 64th
    of a second (or, entries of an earlier layout, by the second: ``layout.updated_key``),
    and each bucket's entries are sorted by the update times in their counters."""
    bucket_end = len(layout.BY_UPDATED) + 8
    members: list[tuple[bytes, bytes]] = []
    bucket = b""
    async with aclosing(entries):
        async for entry in entries:
            if entry[0][:bucket_end] != bucket:
                if members:
                    for ranked in await _ranked(sessions, members, descending):
                        yield ranked
                    members = []
                bucket = entry[0][:bucket_end]
            members.append(entry)
    for ranked in await _ranked(sessions, members, descending):
        yield ranked


async def _ranked(
    sessions: SessionRecords, members: list[tuple[bytes, bytes]], descending: bool
) -> list[tuple[bytes, bytes]]:
    """The entries of one bucket of the by-update index in exact update order."""
    if len(members) <= 1:
        return members
    times = await sessions.update_times([key[-layout.ID_BYTES :] for key, _ in members])
    ranked = sorted(zip(times, members, strict=True), reverse=descending)
    return [entry for _, entry in ranked]


Suffix = bytes  # creation time (8 bytes) + session id (16 bytes)


async def _suffixes(
    prefix: bytes, pages: AsyncGenerator[list[tuple[bytes, bytes]], None]
) -> AsyncGenerator[Suffix, None]:
    # Pages, looped over here: an async generator a pair between the store and this one
    # cost a query over 100,000 sessions ~15% (each pair went through two).
    start = len(prefix)
    async with aclosing(pages):
        if prefix == layout.BY_CREATED:
            # The by-creation values are the search text: keep them for the search test.
            async for found in pages:
                for key, value in found:
                    yield key[start:] + value
        else:
            async for found in pages:
                for key, _ in found:
                    yield key[start:]


def _in_created_range(
    query: SessionQuery, suffixes: AsyncGenerator[Suffix, None]
) -> AsyncGenerator[Suffix, None]:
    after, before = query.created_after_us, query.created_before_us
    if after is None and before is None:
        return suffixes
    low = layout.u64(after + 1) if after is not None else b""
    high = layout.u64(before) if before is not None else b"\xff" * 8
    return _between(suffixes, low, high)


async def _between(
    suffixes: AsyncGenerator[Suffix, None], low: bytes, high: bytes
) -> AsyncGenerator[Suffix, None]:
    async with aclosing(suffixes):
        async for suffix in suffixes:
            if low <= suffix[:8] < high:
                yield suffix


async def _tested(
    sessions: SessionRecords,
    query: SessionQuery,
    candidates: AsyncGenerator[bytes, None],
    filters: list[bytes],
    driver: bytes | None,
) -> AsyncGenerator[Suffix, None]:
    """The suffixes among ``candidates`` in every filter index (and matching ``search``).

    Candidates from the by-creation index carry their search text after the suffix.
    """
    others = [p for p in filters if p != driver]
    needle = None if query.search is None else query.search.encode()
    carries_text = driver == layout.BY_CREATED
    size = indexscan.first_chunk(query.offset, query.limit)
    async with aclosing(candidates):
        while chunk := await indexscan.take(candidates, size):
            size = min(size * 4, indexscan.MAX_CHUNK)
            suffixes = [c[:_SUFFIX] for c in chunk]
            keep = [True] * len(chunk)
            for prefix in others:
                found = await sessions.in_index(prefix, suffixes)
                keep = [k and f for k, f in zip(keep, found, strict=True)]
            if needle is not None:
                texts = (
                    [c[_SUFFIX:] for c in chunk]
                    if carries_text
                    else await sessions.search_texts(suffixes)
                )
                keep = [
                    k and t is not None and needle in t for k, t in zip(keep, texts, strict=True)
                ]
            for suffix, kept in zip(suffixes, keep, strict=True):
                if kept:
                    yield suffix


_SUFFIX = 8 + layout.ID_BYTES


async def _page(
    sessions: SessionRecords, query: SessionQuery, found: AsyncGenerator[Suffix, None]
) -> list[SessionInfo]:
    """Load and describe the page of ``found`` the query asks for, in order."""
    page = [s[8:] for s in await indexscan.page_of(found, query.offset, query.limit)]
    return [to_info(*x) for x in await sessions.load(page) if x is not None]


def _filter_prefixes(query: SessionQuery) -> list[bytes]:
    """The creation-ordered index prefixes of the query's equality filters."""
    prefixes = []
    if query.user is not None:
        prefixes.append(layout.user_prefix(query.app, query.user))
    elif query.app is not None:
        prefixes.append(layout.app_prefix(query.app))
    if query.parent_session_id is not None:
        prefixes.append(layout.parent_prefix(layout.bytes_of(query.parent_session_id)))
    if query.status is not None:
        prefixes.append(layout.status_prefix(query.status))
    prefixes.extend(layout.tag_prefix(tag) for tag in query.tags)
    return prefixes


def _created_range(query: SessionQuery, prefix: bytes) -> tuple[bytes, bytes]:
    return indexscan.created_range(prefix, query.created_after_us, query.created_before_us)


async def _most_selective(
    sessions: SessionRecords, query: SessionQuery, prefixes: list[bytes], probe: int = PROBE
) -> tuple[bytes, int]:
    """The filter index with the fewest entries in range (counted up to ``probe``)."""
    return await sessions.most_selective(
        prefixes,
        lambda prefix: _created_range(query, prefix),
        probe,
        count_one=probe != PROBE,
    )


def _sort_key(order_by: str) -> Any:
    if order_by == "name":
        return lambda loaded: (layout.name_sort_key(loaded[0].name), layout.bytes_of(loaded[0].id))
    return lambda loaded: (loaded[1].updated_us, layout.bytes_of(loaded[0].id))
