"""Giving the heap freed by a wave of passivations back to the system.

An actor's memory is freed when it is passivated, but the C library keeps freed heap pages
for reuse: after thousands of sessions went idle the process stays at its peak size. Where
the C library is glibc, ``malloc_trim(0)`` returns every whole free page of its heaps. It
costs a few milliseconds over a large heap and holds the allocator meanwhile, so the
supervisor calls it in a worker thread, and only after the number of live actors has fallen
to half of the most it reached since the last trim, by at least ``MIN_DROP`` actors.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import final

#: The fewest actors passivated since the high-water mark that make a trim worth it.
MIN_DROP = 1000


def _find_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes  # not in every Python build
    except ImportError:
        return None
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only; not musl
    if trim is None:
        return None
    trim.argtypes = (ctypes.c_size_t,)
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_MALLOC_TRIM = _find_malloc_trim()


def release_free_heap() -> bool:
    """Return the C library's free heap pages to the system; whether it could (glibc)."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


@final
class TrimSchedule:
    """When a wave of passivations has freed enough to be worth a trim."""

    __slots__ = ("_high", "enabled", "min_drop")

    def __init__(self, min_drop: int = MIN_DROP) -> None:
        self.min_drop = min_drop
        #: Off where the C library cannot trim (not glibc), or after a trim failed.
        self.enabled = _MALLOC_TRIM is not None
        self._high = 0

    def grew(self, live: int) -> None:
        """``live`` actors are resident after an activation."""
        if live > self._high:
            self._high = live

    def due(self, live: int) -> bool:
        """After a passivation, with ``live`` left: whether to trim now (then the mark
        starts again from ``live``)."""
        high = self._high
        if high - live < self.min_drop or live * 2 > high:
            return False
        self._high = live
        return True
