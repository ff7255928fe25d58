"""A reader that stops a download early closes what it was reading at once."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from satchel import open_runtime
from satchel.storage import BlobLimits


async def test_stopping_a_stream_closes_the_blob_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing an artifact stream after one chunk ends the blob store's read then, not when
    the garbage collector gets to it."""
    limits = BlobLimits(chunk_size=4096, compress_min=1 << 30)
    async with open_runtime(store="memory", limits=limits) as rt:
        sid = await rt.sessions.create()
        await rt.artifacts.store(sid, "big.bin", os.urandom(20_000), type="tool_result")
        blobs = rt.store.blobs
        inner = blobs._stream
        closed: list[bool] = []

        async def watched(*args: Any) -> AsyncGenerator[bytes, None]:
            reading = inner(*args)
            try:
                async with contextlib.aclosing(reading):
                    async for chunk in reading:
                        yield chunk
            finally:
                closed.append(True)

        monkeypatch.setattr(blobs, "_stream", watched)
        gc.disable()
        try:
            stream = rt.artifacts.stream(sid, "big.bin")
            assert len(await anext(stream)) == 4096
            await stream.aclose()  # type: ignore[attr-defined]
            assert closed == [True]
        finally:
            gc.enable()
