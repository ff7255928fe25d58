"""Artifact queries, served from the indexes of ``_artifact_index``.

In creation order, the query scans the most selective of its equality filters' indexes (or
the all-versions index) within the creation-time range, tests each version it meets against
the other filters by one multi-get per chunk, and tests size and name against the
all-versions entry's value. Ordered by size or name, a filter index with fewer than ``SMALL``
entries is read whole and sorted; otherwise the order's own index is scanned and tested the
same way. A caller restricted to what it may read is served from its readable set instead:
its own session's index merged with the versions granted to it. Only the page is loaded.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping
from contextlib import aclosing
from typing import Any

import attrs

from satchel.runtime._errors import InvalidArgumentError, ValidationError
from satchel.storage import prefix_upper_bound

from .. import _indexscan as indexscan
from .. import _validate as validate
from . import _artifact_index as index
from ._artifact_model import ArtifactInfo
from ._artifact_records import ArtifactRecords

ORDERS = ("created_at", "size", "name")
SMALL = 512
PROBE = 256
_S = index.SUFFIX_BYTES

QUERY_FIELDS = frozenset(
    {
        "session_id",
        "type",
        "name_pattern",
        "tags",
        "metadata",
        "created_after",
        "created_before",
        "min_size",
        "max_size",
        "all_versions",
        "order_by",
        "descending",
        "offset",
        "limit",
    }
)


@attrs.frozen
class ArtifactQuery:
    """A validated artifact query (times in µs since the epoch, exclusive; sizes inclusive)."""

    session_id: str | None = None
    type: str | None = None
    name_pattern: str | None = None  # case-folded
    tags: tuple[str, ...] = ()
    metadata: tuple[tuple[str, Any], ...] = ()
    created_after_us: int | None = None
    created_before_us: int | None = None
    min_size: int | None = None
    max_size: int | None = None
    all_versions: bool = False
    order_by: str = "created_at"
    descending: bool = False
    offset: int = 0
    limit: int | None = None


@attrs.frozen
class Readable:
    """What a restricted caller may read: its own session's versions and those granted."""

    own_sid: bytes
    granted: tuple[bytes, ...]  # suffixes, sorted


def make_query(
    *,
    session_id: str | None = None,
    type: str | None = None,
    name_pattern: str | None = None,
    tags: Iterable[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    created_after: Any = None,
    created_before: Any = None,
    min_size: int | None = None,
    max_size: int | None = None,
    all_versions: bool = False,
    order_by: str = "created_at",
    descending: bool = False,
    offset: int = 0,
    limit: int | None = None,
) -> ArtifactQuery:
    """An ``ArtifactQuery`` from the spec's filters, each checked."""
    if session_id is not None:
        session_id = validate.session_id(session_id)[0]
    if type is not None:
        type = validate.artifact_type(type)
    if name_pattern is not None:
        validate.text("name_pattern", name_pattern, validate.MAX_ARTIFACT_NAME_BYTES)
    pairs: tuple[tuple[str, Any], ...] = ()
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise InvalidArgumentError(
                f"metadata must be a map of custom keys to values, not {metadata!r}"
            )
        validate.json_like("metadata", dict(metadata))
        pairs = tuple(metadata.items())
    for field, value in (("min_size", min_size), ("max_size", max_size)):
        if value is not None and (builtins.type(value) is not int or value < 0):
            raise InvalidArgumentError(f"{field} must be an integer >= 0, not {value!r}")
    if order_by not in ORDERS:
        raise ValidationError(f"cannot order artifacts by {order_by!r}; use one of {ORDERS}")
    for field, flag in (("descending", descending), ("all_versions", all_versions)):
        if builtins.type(flag) is not bool:
            raise InvalidArgumentError(f"{field} must be a boolean, not {flag!r}")
    validate.page(offset, limit)
    return ArtifactQuery(
        session_id=session_id,
        type=type,
        name_pattern=name_pattern.casefold() if name_pattern else None,
        tags=() if tags is None else validate.tags(tags),
        metadata=pairs,
        created_after_us=None
        if created_after is None
        else validate.micros("created_after", created_after),
        created_before_us=None
        if created_before is None
        else validate.micros("created_before", created_before),
        min_size=min_size,
        max_size=max_size,
        all_versions=all_versions,
        order_by=order_by,
        descending=descending,
        offset=offset,
        limit=limit,
    )


async def run_query(
    records: ArtifactRecords, query: ArtifactQuery, readable: Readable | None
) -> list[ArtifactInfo]:
    """The versions matching ``query`` that ``readable`` allows (all if ``None``), paginated."""
    filters = _filter_prefixes(query, restricted=readable is not None)
    if readable is not None:
        candidates = await _readable_suffixes(records, query, readable)
        if query.order_by == "created_at":
            return await _page(records, query, _tested(records, query, candidates, filters, None))
        found = _tested(records, query, candidates, filters, None)
        return await _sorted_page(records, query, found)
    if query.order_by == "created_at":
        driver = (await _most_selective(records, query, filters))[0] if filters else index.ALL
        suffixes = _scan_suffixes(records, query, driver)
        return await _page(records, query, _tested(records, query, suffixes, filters, driver))
    if filters:
        driver, count = await _most_selective(records, query, filters, probe=SMALL)
        if count < SMALL:
            suffixes = _scan_suffixes(records, query, driver, page=SMALL)  # one page: all
            found = _tested(records, query, suffixes, filters, driver)
            return await _sorted_page(records, query, found)
    suffixes = _order_suffixes(records, query)
    return await _page(records, query, _tested(records, query, suffixes, filters, None))


Found = tuple[bytes, bytes]  # (suffix, all-versions entry value)


def _filter_prefixes(query: ArtifactQuery, *, restricted: bool) -> list[bytes]:
    prefixes = []
    if query.session_id is not None and not restricted:
        prefixes.append(index.session_prefix(validate.session_id(query.session_id)[1]))
    if query.type is not None:
        prefixes.append(index.type_prefix(query.type))
    prefixes.extend(index.tag_prefix(tag) for tag in query.tags)
    prefixes.extend(index.meta_prefix(k, v) for k, v in query.metadata)
    if not query.all_versions:
        prefixes.append(index.LATEST)
    return prefixes


def _created_range(query: ArtifactQuery, prefix: bytes) -> tuple[bytes, bytes]:
    return indexscan.created_range(prefix, query.created_after_us, query.created_before_us)


def _u64(value: int) -> bytes:
    return min(max(0, value), 2**64 - 1).to_bytes(8, "big")


def _in_created_range(query: ArtifactQuery, suffix: bytes) -> bool:
    stamp = suffix[:8]
    if query.created_after_us is not None and stamp <= _u64(query.created_after_us):
        return False
    return query.created_before_us is None or stamp < _u64(query.created_before_us)


async def _most_selective(
    records: ArtifactRecords, query: ArtifactQuery, prefixes: list[bytes], probe: int = PROBE
) -> tuple[bytes, int]:
    """The filter index with the fewest entries in range (counted up to ``probe``)."""
    return await records.most_selective(
        prefixes,
        lambda prefix: _created_range(query, prefix),
        probe,
        count_one=probe != PROBE,
    )


async def _scan_suffixes(
    records: ArtifactRecords, query: ArtifactQuery, prefix: bytes, page: int | None = None
) -> AsyncGenerator[Found, None]:
    """``(suffix, value)`` of a creation-ordered index within the query's time range; the
    value is the summary when ``prefix`` is the all-versions index, else empty. Read a
    ``page`` at a time (by default as many as the first chunk of tests takes)."""
    lower, upper = _created_range(query, prefix)
    start = len(prefix)
    page = page or indexscan.first_chunk(query.offset, query.limit)
    pairs = records.index_pages(lower, upper, reverse=query.descending, page=page)
    async with aclosing(pairs):
        async for key, value in pairs:
            yield key[start:], value


async def _order_suffixes(
    records: ArtifactRecords, query: ArtifactQuery
) -> AsyncGenerator[Found, None]:
    """Every version in size or name order, in the created range."""
    if query.order_by == "size":
        lower = index.BY_SIZE + _u64(query.min_size or 0)
        upper = prefix_upper_bound(index.BY_SIZE)
        if query.max_size is not None:
            upper = index.BY_SIZE + _u64(query.max_size + 1)
    else:
        lower, upper = index.BY_NAME, prefix_upper_bound(index.BY_NAME)
    page = indexscan.first_chunk(query.offset, query.limit)
    pairs = records.index_pages(lower, upper, reverse=query.descending, page=page)
    async with aclosing(pairs):
        async for key, _ in pairs:
            suffix = key[-_S:]
            if _in_created_range(query, suffix):
                yield suffix, b""


async def _readable_suffixes(
    records: ArtifactRecords, query: ArtifactQuery, readable: Readable
) -> AsyncGenerator[Found, None]:
    """The caller's readable versions in creation order (merging its own session's index
    with the granted versions), within the query's session and time range."""
    wanted = None if query.session_id is None else validate.session_id(query.session_id)[1]
    granted: Iterable[bytes] = (s for s in readable.granted if _in_created_range(query, s))
    if wanted is not None:
        granted = await _of_session(records, list(granted), wanted)
    own = None
    if wanted is None or wanted == readable.own_sid:
        ascending = attrs.evolve(query, descending=False)
        own = _scan_suffixes(records, ascending, index.session_prefix(readable.own_sid))
    merged = _merged(own, iter(granted))
    if not query.descending:
        return merged
    everything = await indexscan.page_of(merged, 0, None)
    return _found(suffix for suffix, _ in reversed(everything))


async def _merged(
    own: AsyncGenerator[Found, None] | None, granted: Iterator[bytes]
) -> AsyncGenerator[Found, None]:
    """``heapq.merge`` of the own session's suffixes (read lazily) and the granted ones (own
    first among equals)."""
    pending = next(granted, None)
    if own is not None:
        async with aclosing(own):
            async for suffix, _ in own:
                while pending is not None and pending < suffix:
                    yield pending, b""
                    pending = next(granted, None)
                yield suffix, b""
    while pending is not None:
        yield pending, b""
        pending = next(granted, None)


async def _found(suffixes: Iterable[bytes]) -> AsyncGenerator[Found, None]:
    for suffix in suffixes:
        yield suffix, b""


async def _of_session(records: ArtifactRecords, suffixes: list[bytes], sid: bytes) -> list[bytes]:
    values = await records.summaries(suffixes)
    return [
        s
        for s, v in zip(suffixes, values, strict=True)
        if v is not None and index.parse_summary(v)[1][:16] == sid
    ]


async def _tested(
    records: ArtifactRecords,
    query: ArtifactQuery,
    candidates: AsyncGenerator[Found, None],
    filters: list[bytes],
    driver: bytes | None,
) -> AsyncGenerator[Found, None]:
    """The candidates in every filter index other than ``driver`` that pass the size and
    name tests, with their all-versions values."""
    others = [p for p in filters if p != driver]
    size = indexscan.first_chunk(query.offset, query.limit)
    async with aclosing(candidates):
        while chunk := await indexscan.take(candidates, size):
            size = min(size * 4, indexscan.MAX_CHUNK)
            suffixes = [suffix for suffix, _ in chunk]
            keep = [True] * len(chunk)
            for prefix in others:
                found = await records.in_index(prefix, suffixes)
                keep = [k and f is not None for k, f in zip(keep, found, strict=True)]
            if driver == index.ALL:
                values: list[bytes | None] = [value for _, value in chunk]
            else:
                wanted = [s for s, k in zip(suffixes, keep, strict=True) if k]
                values = await records.summaries(wanted)
                values_iter = iter(values)
                values = [next(values_iter) if k else None for k in keep]
            for suffix, kept, value in zip(suffixes, keep, values, strict=True):
                if kept and value is not None and _summary_matches(query, value):
                    yield suffix, value


def _summary_matches(query: ArtifactQuery, value: bytes) -> bool:
    size, tail = index.parse_summary(value)
    if query.min_size is not None and size < query.min_size:
        return False
    if query.max_size is not None and size > query.max_size:
        return False
    if query.name_pattern is not None:
        return query.name_pattern in _name_of(tail).casefold()
    return True


def _name_of(tail: bytes) -> str:
    """The name in a record key tail (session(16) + name + NUL + version(4))."""
    return tail[16:-5].decode()


async def _page(
    records: ArtifactRecords, query: ArtifactQuery, found: AsyncGenerator[Found, None]
) -> list[ArtifactInfo]:
    page = await indexscan.page_of(found, query.offset, query.limit)
    return await records.infos([value for _, value in page])


async def _sorted_page(
    records: ArtifactRecords, query: ArtifactQuery, found: AsyncGenerator[Found, None]
) -> list[ArtifactInfo]:
    everything = await indexscan.page_of(found, 0, None)
    if query.order_by == "size":
        everything.sort(key=lambda f: (f[1][:8], f[0]), reverse=query.descending)
    else:
        everything.sort(
            key=lambda f: (index.name_order_key(_name_of(f[1][8:])), f[0]), reverse=query.descending
        )
    page = indexscan.window(iter(everything), query.offset, query.limit)
    return await records.infos([value for _, value in page])
