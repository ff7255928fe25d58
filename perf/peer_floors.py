"""Floors measured in the same run as the systems: the least the same work costs with no
store at all, as contenders of ``perf/interleave.py``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from peer_work import Op, Opener, folder, json_like

_RECORD = 200
_SLOTS = 4096


@asynccontextmanager
async def durable_write() -> AsyncIterator[Op]:
    """``pwrite`` of 200 bytes plus ``fdatasync`` into a preallocated, written file: the
    cheapest write that survives power loss here (no size or metadata change to commit)."""
    async with folder() as where:
        fd = os.open(where / "floor", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.write(fd, bytes(_RECORD * _SLOTS))
            os.fsync(fd)
            record = b"x" * _RECORD

            async def op(i: int) -> None:
                os.pwrite(fd, record, (i % _SLOTS) * _RECORD)
                os.fdatasync(fd)

            yield op
        finally:
            os.close(fd)


def file_write(size: int, *, sync: bool) -> Opener:
    """A new file of ``size`` JSON-like bytes (made before the clock runs), with ``fsync`` of
    the file if ``sync``: what keeping an artifact as a plain file costs."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        async with folder() as where:
            contents = [json_like(n, size) for n in range(16)]

            async def op(i: int) -> None:
                fd = os.open(where / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    os.write(fd, contents[i % 16])
                    if sync:
                        os.fsync(fd)
                finally:
                    os.close(fd)

            yield op

    return opened


def file_read(size: int, names: int = 10) -> Opener:
    """Reading a whole file of ``size`` bytes back (from the page cache)."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        async with folder() as where:
            for n in range(names):
                (where / f"f{n}").write_bytes(json_like(n, size))

            async def op(i: int) -> None:
                # Blocking on purpose: the peers read their files so, and this is their floor.
                with open(where / f"f{i % names}", "rb") as file:  # noqa: ASYNC230
                    file.read()

            yield op

    return opened
