"""The HTTP server on asyncio: uvicorn with its httptools protocol (llhttp, in C).

hypercorn, which serves on Trio, parses HTTP/1.1 with h11 in Python; on asyncio its worker
spent about 0.45 ms of CPU per small request here (state writes and reads from 50 kept-alive
clients, ``perf/http_state_load.py``), uvicorn with httptools about 0.2 ms. The protocol is
uvicorn's, with the edges ``satchel serve`` keeps on both loops: a request's head (its line
and headers) over 64 KiB is answered 431, a malformed request 400, both with the JSON error
body, and the connection then closed.
"""

from __future__ import annotations

import socket
from typing import Any

import anyio
import anyio.abc
import uvicorn
from hypercorn.utils import repr_socket_addr
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from satchel._http_protocol import protocol_error_body

#: The largest request head (request line and headers) taken. hypercorn, on Trio, refuses
#: a head still unfinished past 16 KiB, but takes one that comes whole in one read of up
#: to 64 KiB: heads of 16 to 64 KiB pass there, so they do here.
MAX_HEAD_BYTES = 64 * 1024


class _HeadTooLargeError(Exception):
    """Raised in a parser callback: the request's head is over ``MAX_HEAD_BYTES``."""


class _Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head limit and JSON protocol errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Whether the parser is inside a request's head, whether that head began in the
        #: data being parsed now, and how many bytes of it have come (at least).
        self._in_head = False
        self._began_now = False
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        self._began_now = False
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        # An unfinished head: llhttp holds what it has of it, without limit, so it is
        # measured here, a read (at most 256 KiB) at a time.
        if self._began_now:
            # Part of this data may be the end of the request before: only the head's
            # finished parts count.
            self._head_bytes = self._finished_head()
        else:
            self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(431)

    def send_400_response(self, msg: str) -> None:
        # uvicorn's own answer to a request llhttp refused (or to a callback that raised).
        self._refuse(431 if self._head_bytes > MAX_HEAD_BYTES else 400)

    def on_message_begin(self) -> None:
        self._in_head = self._began_now = True
        self._head_bytes = 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = self._finished_head()
        if self._head_bytes > MAX_HEAD_BYTES:
            raise _HeadTooLargeError  # a parser error, answered 431 by ``send_400_response``
        super().on_headers_complete()

    def _finished_head(self) -> int:
        """The size of the head's parts parsed so far (its line and whole headers)."""
        return len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)

    def _refuse(self, status: int) -> None:
        """Answer ``status`` with the JSON error body, and close the connection."""
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A request in hand is still being answered (this one was pipelined behind it):
            # that answer goes out whole, then the connection closes, nothing more read.
            self.cycle.keep_alive = False
            self.flow.pause_reading()
            return
        body = protocol_error_body(status)
        head = [STATUS_LINE[status]]
        head += [k + b": " + v + b"\r\n" for k, v in self.server_state.default_headers]
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def _config(app: Any, keep_alive_s: float, graceful_s: float) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=_Protocol,
        ws="none",
        lifespan="off",
        # Logging stays the host's (``serve``'s ``log_level``): no handlers set up, and the
        # access log is satchel's own (``satchel.http.access``).
        log_config=None,
        log_level=None,
        access_log=False,
        # The client address is the socket's: an X-Forwarded-For from loopback changes nothing.
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=int(keep_alive_s),
        timeout_graceful_shutdown=int(max(1.0, graceful_s)),
    )


async def serve_uvicorn(
    app: Any,
    sockets: list[socket.socket],
    *,
    keep_alive_s: float = 5.0,
    graceful_s: float = 1.0,
    task_status: anyio.abc.TaskStatus[str],
) -> None:
    """Serve ``app`` on the bound ``sockets`` until cancelled, then stop gracefully (requests
    in hand get ``graceful_s`` to finish); ``task_status`` gets the first socket's URL."""
    for sock in sockets:
        # asyncio sets TCP_NODELAY only on sockets whose protocol number says TCP, which a
        # socket made as socket(AF_INET, SOCK_STREAM) does not: its answers' head and body,
        # two writes, then waited on the client's delayed ACK (40 ms a read here).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    config = _config(app, keep_alive_s, graceful_s)
    server = uvicorn.Server(config)
    # What ``Server.serve`` does before ``startup``; not ``serve`` itself, which takes over
    # SIGINT and SIGTERM (``satchel serve`` stops on them itself) and stops on them alone.
    config.load()
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=sockets)
    try:
        task_status.started(
            "http://" + repr_socket_addr(sockets[0].family, sockets[0].getsockname())
        )
        await server.main_loop()
    finally:
        server.should_exit = True
        with anyio.CancelScope(shield=True):
            await server.shutdown()
