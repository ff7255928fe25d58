"""Artifact downloads: the content hash as ETag, If-None-Match answered 304, one Range
answered 206 (416 past the end), a range cut from the chunk stream."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satchel import open_runtime
from satchel._serve import ServerInfo, serve

from .test_http import LIMITS, Server, kind, new_session

CONTENT = os.urandom(300_000)  # five chunks of 64 KiB


@pytest.fixture
async def stored(tmp_path: Path) -> AsyncIterator[tuple[Server, str]]:
    """A server holding CONTENT as ``/sessions/{id}/artifacts/a.bin``; the server and url."""
    async with open_runtime(tmp_path / "data", limits=LIMITS) as rt, anyio.create_task_group() as n:
        info: ServerInfo = await n.start(serve, rt, "127.0.0.1", 0)
        headers = {"Authorization": f"Bearer {info.token}"}
        async with httpx.AsyncClient(base_url=info.url, headers=headers) as client:
            server = Server(rt, info, client)
            url = f"/sessions/{await new_session(server)}/artifacts/a.bin"
            assert (await client.put(url, content=CONTENT)).status_code == 201
            yield server, url
        n.cancel_scope.cancel()


async def test_the_etag_is_the_content_hash_and_if_none_match_is_304(
    stored: tuple[Server, str],
) -> None:
    """A download's ETag is its content hash; asking again with it is a bodiless 304."""
    server, url = stored
    first = await server.http.get(url)
    meta = (await server.http.get(f"{url}/metadata")).json()
    assert first.headers["etag"] == f'"{meta["content_hash"]}"'
    assert first.headers["accept-ranges"] == "bytes"
    for header in (
        first.headers["etag"],
        f"W/{first.headers['etag']}",
        f'"x", {first.headers["etag"]}',
        "*",
    ):
        again = await server.http.get(url, headers={"If-None-Match": header})
        assert again.status_code == 304 and again.content == b"", header
        assert again.headers["etag"] == first.headers["etag"]
    other = await server.http.get(url, headers={"If-None-Match": '"other"'})
    assert other.status_code == 200 and other.content == CONTENT


@settings(max_examples=60, deadline=None, database=None)
@given(first=st.integers(0, len(CONTENT) + 10), length=st.integers(1, len(CONTENT) + 10))
def collect_ranges(into: list[tuple[int, int]], first: int, length: int) -> None:
    """Ranges to ask for, some past the end."""
    into.append((first, first + length - 1))


async def test_a_range_is_206_with_those_bytes(stored: tuple[Server, str]) -> None:
    """``bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` answer exactly those bytes, 206, with
    their Content-Range; a range starting past the end is 416 with the error body."""
    server, url = stored
    ranges: list[tuple[int, int]] = []
    collect_ranges(ranges)
    size = len(CONTENT)
    for first, last in [*ranges, (0, 0), (size - 1, size - 1), (65_535, 65_536)]:
        answer = await server.http.get(url, headers={"Range": f"bytes={first}-{last}"})
        if first >= size:
            assert kind(answer) == (416, "RangeNotSatisfiable")
            assert answer.headers["content-range"] == f"bytes */{size}"
            continue
        end = min(last, size - 1)
        assert answer.status_code == 206, (first, last)
        assert answer.content == CONTENT[first : end + 1], (first, last)
        assert answer.headers["content-range"] == f"bytes {first}-{end}/{size}"
    tail = await server.http.get(url, headers={"Range": "bytes=-1000"})
    assert tail.status_code == 206 and tail.content == CONTENT[-1000:]
    rest = await server.http.get(url, headers={"Range": "bytes=299000-"})
    assert rest.status_code == 206 and rest.content == CONTENT[299_000:]


async def test_ranges_it_cannot_serve_whole_are_ignored(stored: tuple[Server, str]) -> None:
    """Several ranges, another unit, a malformed range or an If-Range naming other content
    get the whole content, 200, as RFC 9110 allows."""
    server, url = stored
    etag = (await server.http.get(f"{url}/metadata")).json()["content_hash"]
    for headers in (
        {"Range": "bytes=0-1,5-6"},
        {"Range": "items=0-1"},
        {"Range": "bytes=9-3"},
        {"Range": "bytes=0-9", "If-Range": '"not-it"'},
    ):
        answer = await server.http.get(url, headers=headers)
        assert answer.status_code == 200 and answer.content == CONTENT, headers
    matching = await server.http.get(url, headers={"Range": "bytes=0-9", "If-Range": f'"{etag}"'})
    assert matching.status_code == 206 and matching.content == CONTENT[:10]


async def test_a_range_reads_only_the_chunks_up_to_its_end(
    stored: tuple[Server, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range ending in the first chunk stops the chunk stream there: the chunks after it
    are never read."""
    server, url = stored
    blobs = server.rt.store.blobs
    read: list[int] = []
    original = blobs._read_chunk

    def counting(digest: bytes, meta: object, index: int) -> bytes:
        read.append(index)
        return original(digest, meta, index)  # type: ignore[arg-type]

    monkeypatch.setattr(blobs, "_read_chunk", counting)
    answer = await server.http.get(url, headers={"Range": "bytes=10-20"})
    assert answer.content == CONTENT[10:21]
    assert read == [0]
