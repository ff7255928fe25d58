"""Let the C allocator keep freed large buffers instead of handing them back to the kernel.

An artifact read or write allocates buffers of about a chunk (1 MiB) several times. With
glibc's defaults each of them, once freed, goes back to the kernel, and the next one is fresh
memory: on these machines a fresh page costs 1.5-2.6 µs to fault in, so reading a half-random
1 MiB artifact paid 482 faults (~1,150 µs in all). Raising glibc's mmap and trim thresholds
keeps those buffers in the heap, where the next one reuses warm pages (the same read: no
fault, ~590 µs).

It changes a setting of the whole process, so a library does not do it behind its host's
back: the CLI and the HTTP server call ``tune_allocator()``, and a host that embeds satchel
calls it if it wants the same (see docs/artifacts.md, "Speed").
"""

from __future__ import annotations

import ctypes
import sys

from .runtime._errors import ValidationError

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc refuses an mmap threshold above 32 MiB on 64-bit systems.
_MMAP_THRESHOLD_MAX = 32 << 20

MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 128 << 20


def tune_allocator(
    *, mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD
) -> bool:
    """Serve allocations up to ``mmap_threshold`` bytes from the heap and keep up to
    ``trim_threshold`` freed bytes there; ``True`` if applied, ``False`` where the C library
    is not glibc (nothing changes then)."""
    if not 0 < mmap_threshold <= _MMAP_THRESHOLD_MAX:
        raise ValidationError(
            f"mmap_threshold must be 1..{_MMAP_THRESHOLD_MAX} bytes, not {mmap_threshold}"
        )
    if trim_threshold <= 0:
        raise ValidationError(f"trim_threshold must be positive, not {trim_threshold}")
    if not sys.platform.startswith("linux"):
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the process's own C library
    if mallopt is None:  # musl and others have no mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )
