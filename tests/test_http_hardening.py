"""Bad input over HTTP is a 4xx with the error body, never a 500: deep JSON, huge numbers,
loose booleans, bodies over the limit (refused at once), protocol-layer errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from satchel import InvalidArgumentError, ValidationError, open_runtime
from satchel._http import make_app
from satchel._serve import ServerInfo, serve
from satchel.storage import BlobLimits

from .test_http import Server, kind, new_session

LIMITS = BlobLimits(chunk_size=64 << 10, max_size=1 << 20)
MAX_JSON = 256 << 10


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """A server whose JSON bodies are limited to 256 KiB and content to 1 MiB."""
    async with open_runtime(tmp_path / "data", limits=LIMITS) as rt, anyio.create_task_group() as n:
        limited = partial(serve, max_json_bytes=MAX_JSON)
        info: ServerInfo = await n.start(limited, rt, "127.0.0.1", 0)
        headers = {"Authorization": f"Bearer {info.token}"}
        async with httpx.AsyncClient(base_url=info.url, headers=headers) as client:
            yield Server(rt, info, client)
        n.cancel_scope.cancel()


async def exchange(
    s: Server, head: str, body: bytes = b"", more: AsyncIterator[bytes] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (request line and headers, token added) and ``body`` on a fresh
    connection, and ``more`` while the answer is read; the answer, read whole."""
    url = httpx.URL(s.info.url)
    head = head.replace("\n", "\r\n") + f"Authorization: Bearer {s.info.token}\r\n\r\n"
    with anyio.fail_after(30):  # a server waiting for the body would never answer
        stream = await anyio.connect_tcp(url.host, url.port or 80)
        async with stream, anyio.create_task_group() as tasks:
            await stream.send(head.encode() + body)

            async def keep_sending(source: AsyncIterator[bytes]) -> None:
                try:
                    async with aclosing(source):  # type: ignore[type-var]
                        async for piece in source:
                            await stream.send(piece)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    pass  # the server closed the connection

            if more is not None:
                tasks.start_soon(keep_sending, more)
            received = b""
            while b"\r\n\r\n" not in received:
                received += await stream.receive()
            top, _, rest = received.partition(b"\r\n\r\n")
            lines = top.decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
            while len(rest) < int(headers.get("content-length", "0")):
                rest += await stream.receive()
            tasks.cancel_scope.cancel()
    return int(lines[0].split()[1]), headers, rest


def error_kind(body: bytes) -> str:
    """The kind in an error body."""
    found: str = json.loads(body)["error"]["kind"]
    return found


async def test_deep_json_is_refused(server: Server) -> None:
    """JSON nested 100,000 deep, in a body or in the metadata header, is a 422, not a 500."""
    deep = b"[" * 100_000 + b"]" * 100_000
    assert kind(await server.http.post("/sessions", content=deep)) == (422, "InvalidArgument")
    wrapped = b'{"metadata": {"x": ' + deep + b"}}"
    assert kind(await server.http.post("/sessions", content=wrapped)) == (422, "InvalidArgument")
    sid = await new_session(server)
    header = {"X-Satchel-Metadata": '{"x":' + "[" * 10_000 + "]" * 10_000 + "}"}
    put = await server.http.put(f"/sessions/{sid}/artifacts/a", content=b"x", headers=header)
    assert kind(put) == (422, "InvalidArgument")
    nested_64 = {"x": json.loads("[" * 70 + "]" * 70)}
    answer = await server.http.post("/sessions", json={"metadata": nested_64})
    assert kind(answer) == (422, "ValidationError")


async def test_huge_numbers_are_refused(server: Server) -> None:
    """A 5,000-digit integer in a body or a query, and counts past 64 bits, are 4xx."""
    digits = "9" * 5000
    body = ('{"metadata": {"n": ' + digits + "}}").encode()
    assert kind(await server.http.post("/sessions", content=body)) == (422, "InvalidArgument")
    sid = await new_session(server)
    for value in (digits, str(2**64), str(-(2**64))):
        for path in ("/sessions", f"/sessions/{sid}/timeline"):
            for name in ("limit", "offset"):
                answer = await server.http.get(path, params={name: value})
                assert answer.status_code in (422, 413), (path, name, answer.text)
                assert answer.json()["error"]["kind"] in ("InvalidArgument", "ValidationError")
    version = await server.http.get(f"/sessions/{sid}/artifacts/a", params={"version": digits})
    assert kind(version) == (422, "InvalidArgument")


async def test_non_finite_numbers_are_refused(server: Server) -> None:
    """NaN and Infinity, which Python's parser takes by default, are malformed JSON."""
    for constant in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"metadata": {"x": ' + constant + b"}}"
        assert kind(await server.http.post("/sessions", content=body)) == (422, "InvalidArgument")


@pytest.mark.parametrize("fix", ["yes", 1, 0, "true", None, [], {}])
async def test_booleans_are_strict(server: Server, fix: Any) -> None:
    """Only true or false stands for a boolean in a body; the check is not run otherwise."""
    answer = await server.http.post("/control/check", json={"fix": fix})
    assert kind(answer) == (422, "InvalidArgument")


async def test_a_declared_json_body_over_the_limit_is_refused_at_once(server: Server) -> None:
    """A Content-Length over the limit gets its 413 before one byte of the body is sent."""
    head = f"POST /sessions HTTP/1.1\nHost: x\nContent-Length: {10**12}\n"
    status, headers, body = await exchange(server, head)
    assert status == 413 and error_kind(body) == "ValidationError"
    assert "max_json_bytes" in json.loads(body)["error"]["message"]
    assert headers["connection"] == "close"
    assert (await server.http.get("/sessions")).json() == []


async def test_a_declared_upload_over_the_limit_is_refused_at_once(server: Server) -> None:
    """An upload whose Content-Length is over the content limit is refused unread."""
    sid = await new_session(server)
    head = f"PUT /sessions/{sid}/artifacts/big HTTP/1.1\nHost: x\nContent-Length: {10**12}\n"
    status, _, body = await exchange(server, head, b"some of it")
    assert status == 413 and error_kind(body) == "ValidationError"
    assert (await server.http.get(f"/sessions/{sid}/artifacts")).json() == []


async def test_a_chunked_json_body_over_the_limit_is_refused(server: Server) -> None:
    """A body with no length that grows past the limit is refused once it crosses it,
    while the client goes on sending; one just under the limit is taken."""

    async def endless() -> AsyncIterator[bytes]:
        piece = b"y" * (16 << 10)
        while True:
            yield b"%x\r\n%s\r\n" % (len(piece), piece)

    head = "POST /sessions HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n"
    status, headers, body = await exchange(server, head, b'5\r\n{"x":\r\n', endless())
    assert status == 413 and error_kind(body) == "ValidationError"
    assert headers["connection"] == "close"
    under = b'{"name": "n"' + b" " * (MAX_JSON - 20) + b"}"
    created = await server.http.post("/sessions", content=under)
    assert created.status_code == 201, created.text


async def test_the_json_limit_is_checked(tmp_path: Path) -> None:
    """max_json_bytes must be a positive integer."""
    async with open_runtime(store="memory") as rt:
        with pytest.raises(ValidationError):
            make_app(rt, "t" * 32, max_json_bytes=0)
        with pytest.raises(InvalidArgumentError):
            make_app(rt, "t" * 32, max_json_bytes=True)
