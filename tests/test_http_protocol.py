"""The protocol layer: paths that are not UTF-8, errors hypercorn answers itself, and
``Connection: close`` on streamed answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from satchel import open_runtime
from satchel._serve import ServerInfo, serve

from .test_http import LIMITS, Server, kind, new_session


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """A server on a fresh data folder."""
    async with open_runtime(tmp_path / "data", limits=LIMITS) as rt, anyio.create_task_group() as n:
        info: ServerInfo = await n.start(serve, rt, "127.0.0.1", 0)
        headers = {"Authorization": f"Bearer {info.token}"}
        async with httpx.AsyncClient(base_url=info.url, headers=headers) as client:
            yield Server(rt, info, client)
        n.cancel_scope.cancel()


async def until_closed(s: Server, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` raw and read until the server closes the connection: the status,
    headers and body."""
    url = httpx.URL(s.info.url)
    received = b""
    with anyio.fail_after(30):  # a connection left open would never end
        async with await anyio.connect_tcp(url.host, url.port or 80) as stream:
            await stream.send(request)
            try:
                while True:
                    received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
    top, _, body = received.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return int(lines[0].split()[1]), headers, body


async def test_a_path_that_is_not_utf8_is_400(server: Server) -> None:
    """%FF and %FE in a path are a 400, not two spellings of one replacement character;
    an escaped UTF-8 name still works."""
    sid = await new_session(server)
    for bad in ("%FF", "%FE", "a%C3"):
        answer = await server.http.put(f"/sessions/{sid}/state/{bad}", json={"value": 1})
        assert kind(answer) == (400, "BadRequest"), bad
    assert (await server.http.get(f"/sessions/{sid}/state")).json() == {"variables": {}}
    put = await server.http.put(f"/sessions/{sid}/state/%C3%A9t%C3%A9", json={"value": 1})
    assert put.status_code == 204
    assert (await server.http.get(f"/sessions/{sid}/state")).json() == {"variables": {"été": 1}}


async def test_protocol_errors_carry_the_error_body(server: Server) -> None:
    """Headers too large (431) and a malformed request (400), answered before the app runs,
    still carry the JSON error body."""
    big = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    status, headers, body = await until_closed(server, big)
    assert status == 431 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["kind"] == "HeadersTooLarge"
    status, headers, body = await until_closed(server, b"NOT HTTP AT ALL\r\n\r\n")
    assert status == 400 and json.loads(body)["error"]["kind"] == "BadRequest"
    deep = '{"x":' + "[" * 100_000 + "]" * 100_000 + "}"
    sid = await new_session(server)
    put = await server.http.put(
        f"/sessions/{sid}/artifacts/a", content=b"x", headers={"X-Satchel-Metadata": deep}
    )
    assert kind(put) == (431, "HeadersTooLarge")


@pytest.mark.parametrize("what", ["/artifacts/a.bin", "/export", ""])
async def test_connection_close_is_honoured(server: Server, what: str) -> None:
    """A request with ``Connection: close`` gets its whole answer and then the connection
    ends, streamed answers (downloads, exports) included."""
    sid = await new_session(server)
    content = b"z" * 300_000
    await server.http.put(f"/sessions/{sid}/artifacts/a.bin", content=content)
    request = (
        f"GET /sessions/{sid}{what} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Authorization: Bearer {server.info.token}\r\n\r\n"
    ).encode()
    status, headers, body = await until_closed(server, request)
    assert status == 200 and len(body) == int(headers["content-length"])
    if what == "/artifacts/a.bin":
        assert body == content
