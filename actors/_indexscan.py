"""What session and artifact queries share: the creation-time range of an index whose keys
end with a creation-time suffix, and choosing the most selective of several such indexes."""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Hashable, Iterator
from contextlib import aclosing
from typing import TypeVar

from satchel.storage import RecordReads, prefix_upper_bound

from .sessions._session_layout import u64

T = TypeVar("T")
H = TypeVar("H", bound=Hashable)
#: The most candidates tested by one multi-get per filter.
MAX_CHUNK = 1024


def created_range(
    prefix: bytes, after_us: int | None, before_us: int | None
) -> tuple[bytes, bytes]:
    """The keys of index ``prefix`` created after ``after_us`` and before ``before_us``
    (both exclusive), as ``(lower, upper)`` scan bounds."""
    lower = prefix if after_us is None else prefix + u64(after_us + 1)
    upper = prefix_upper_bound(prefix) if before_us is None else prefix + u64(before_us)
    return lower, upper


async def most_selective(
    records: RecordReads,
    prefixes: list[bytes],
    bounds: Callable[[bytes], tuple[bytes, bytes]],
    probe: int,
    *,
    count_one: bool,
) -> tuple[bytes, int]:
    """The index with the fewest entries within its ``bounds`` (counted up to ``probe``).
    A single index is returned uncounted unless ``count_one`` (its count is then needed)."""
    best, best_count = prefixes[0], probe
    if len(prefixes) == 1 and not count_one:
        return best, best_count
    for prefix in prefixes:
        lower, upper = bounds(prefix)
        count = len(await records.scan(lower, upper, limit=probe))
        if count < best_count:
            best, best_count = prefix, count
    return best, best_count


def first_chunk(offset: int, limit: int | None) -> int:
    """How many candidates to test at first: a small page should not pay for testing a
    large chunk."""
    if limit is None:
        return MAX_CHUNK
    return min(MAX_CHUNK, max(16, 2 * (offset + limit)))


def window(found: Iterator[T], offset: int, limit: int | None) -> Iterator[T]:
    """The page ``offset``..``offset + limit`` of ``found``."""
    return itertools.islice(found, offset, None if limit is None else offset + limit)


async def page_of(found: AsyncGenerator[H, None], offset: int, limit: int | None) -> list[H]:
    """``window`` of a lazy pipeline: the page ``offset``..``offset + limit`` of ``found``,
    read no further than its end; ``found`` is closed (and with it the stages it reads).

    An item met twice counts once: the index is read a page at a time, and on a store where
    other writers go on meanwhile (PostgreSQL), an entry moved by a write between two pages
    (a session renamed ahead of the scan) is met again."""
    page: list[H] = []
    stop = None if limit is None else offset + limit
    if stop is not None and stop <= offset:
        return page
    met: set[H] = set()
    async with aclosing(found):
        seen = 0
        async for item in found:
            if item in met:
                continue
            met.add(item)
            if seen >= offset:
                page.append(item)
            seen += 1
            if seen == stop:
                break
    return page


async def take(source: AsyncIterator[T], size: int) -> list[T]:
    """The next ``size`` items of ``source`` (fewer at its end), read no further."""
    taken: list[T] = []
    if size <= 0:
        return taken
    async for item in source:
        taken.append(item)
        if len(taken) == size:
            break
    return taken
