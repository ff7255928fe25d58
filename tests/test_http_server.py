"""The HTTP servers under the app (hypercorn on Trio, uvicorn on asyncio): kept-alive and
pipelined requests, the request-head limit, and what ``serve`` sets while it runs."""

from __future__ import annotations

import gc
import json
import socket
from pathlib import Path

import anyio
import httpx
import pytest

from satchel import open_runtime
from satchel._http_server import MAX_HEAD_BYTES, serve_uvicorn
from satchel._serve import GC_YOUNG, serve

from .test_http import Server, new_session, server  # noqa: F401 - the fixture


async def connect(s: Server) -> anyio.abc.SocketStream:
    """A raw connection to the server."""
    url = httpx.URL(s.info.url)
    return await anyio.connect_tcp(url.host, url.port or 80)


async def read_answers(stream: anyio.abc.SocketStream, count: int) -> list[tuple[int, bytes]]:
    """``count`` answers (status, body) read from ``stream``; each has a Content-Length."""
    buffered = b""
    answers = []
    with anyio.fail_after(30):
        while len(answers) < count:
            head, found, rest = buffered.partition(b"\r\n\r\n")
            if found:
                lines = head.decode("latin-1").split("\r\n")
                fields = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
                length = int(fields.get("content-length", "0"))
                if len(rest) >= length:
                    answers.append((int(lines[0].split()[1]), rest[:length]))
                    buffered = rest[length:]
                    continue
            buffered += await stream.receive()
    return answers


def request(s: Server, method: str, path: str, body: bytes = b"") -> bytes:
    """One request, with the token, as bytes."""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {s.info.token}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def test_requests_on_one_kept_connection(server: Server) -> None:  # noqa: F811
    """Many requests, one after the other, on one connection, are all answered."""
    sid = await new_session(server)
    async with await connect(server) as stream:
        for n in range(20):
            body = json.dumps({"value": n}).encode()
            await stream.send(request(server, "PUT", f"/sessions/{sid}/state/n", body))
            assert [status for status, _ in await read_answers(stream, 1)] == [204]
            await stream.send(request(server, "GET", f"/sessions/{sid}/state/n"))
            [(status, answer)] = await read_answers(stream, 1)
            assert status == 200 and json.loads(answer)["value"] == n


async def test_pipelined_requests_with_a_large_body(server: Server) -> None:  # noqa: F811
    """A large upload and the requests after it, sent at once on one connection, are
    answered in order: the upload's body does not count towards the next request's head."""
    sid = await new_session(server)
    upload = request(server, "PUT", f"/sessions/{sid}/artifacts/a.bin", b"x" * 300_000)
    read = request(server, "GET", f"/sessions/{sid}/state")
    async with await connect(server) as stream:
        await stream.send(upload + read + read)
        answers = await read_answers(stream, 3)
    assert [status for status, _ in answers] == [201, 200, 200]
    assert json.loads(answers[1][1]) == {"variables": {}}


async def test_an_unfinished_head_over_the_limit_is_431(server: Server) -> None:  # noqa: F811
    """A request head that comes a piece at a time, and is past the limit before it ends, is
    answered 431 with the JSON error body, and the connection closed."""
    async with await connect(server) as stream:
        await stream.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        received = b""
        with anyio.fail_after(30):
            # Until the answer begins (hypercorn's limit is lower), and just past the limit
            # at most: data sent once the server closed would have the connection reset.
            for n in range(MAX_HEAD_BYTES // 1000 + 2):
                await stream.send(b"X-%d: " % n + b"a" * 1000 + b"\r\n")
                with anyio.move_on_after(0.002):
                    received += await stream.receive()
                if received:
                    break
            try:
                while True:
                    received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.split()[1] == b"431"
    assert json.loads(body)["error"]["kind"] == "HeadersTooLarge"


@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
async def test_uvicorn_listens_without_delay() -> None:
    """The socket uvicorn listens on has TCP_NODELAY, which its connections inherit: an
    answer's head and body, two writes, do not wait on the client's delayed ACK."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("no request is sent")

    try:
        async with anyio.create_task_group() as tasks:
            url = await tasks.start(serve_uvicorn, app, [sock])
            assert url == f"http://127.0.0.1:{sock.getsockname()[1]}"
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            tasks.cancel_scope.cancel()
    finally:
        sock.close()


async def test_young_collections_are_spaced_while_serving(tmp_path: Path) -> None:
    """While a server runs, young collections come every ``GC_YOUNG`` allocations at least;
    the thresholds before are back once it stops."""
    before = gc.get_threshold()
    async with open_runtime(tmp_path / "data") as rt, anyio.create_task_group() as tasks:
        await tasks.start(serve, rt, "127.0.0.1", 0)
        assert gc.get_threshold()[0] >= GC_YOUNG
        assert gc.get_threshold()[1:] == before[1:]
        tasks.cancel_scope.cancel()
    assert gc.get_threshold() == before
