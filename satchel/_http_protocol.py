"""Where the HTTP layer meets the protocol: paths that are not UTF-8 are a 400, the last
message of every answer is sent whole (so a ``Connection: close`` is honoured), and the
errors hypercorn answers itself (431, 400 on a malformed request) carry the JSON error body.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from itertools import chain
from typing import Any
from urllib.parse import unquote_to_bytes

import anyio
import h11
from hypercorn.protocol.h11 import H11Protocol
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel._http import error_response

#: The kind of each status hypercorn answers by itself.
_PROTOCOL_KINDS = {400: "BadRequest", 431: "HeadersTooLarge", 413: "ContentTooLarge"}


class StrictPaths:
    """A path whose percent-escapes are not UTF-8 is refused with 400: decoded with
    replacement, ``%FF`` and ``%FE`` would both name ``\\ufffd``. So is an escaped ``/``:
    routes match the decoded path, where ``x%2Fevents`` would reach session x's events."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope["path"].encode()
            try:
                unquote_to_bytes(raw).decode("utf-8")
            except UnicodeDecodeError:
                refused = error_response("BadRequest", "the path is not UTF-8", 400)
                await refused(scope, receive, send)
                return
            if b"%2f" in raw.lower():
                refused = error_response(
                    "BadRequest",
                    "a path segment cannot hold an escaped '/': name such a session by its id",
                    400,
                )
                await refused(scope, receive, send)
                return
        await self._app(scope, receive, send)


class WholeLastMessage:
    """The last body message of an answer is sent shielded from cancellation. Starlette
    cancels a streamed answer's task once the client's disconnect is seen, which the
    server signals while that very message is closing the connection: on Trio the close was
    cut short and a ``Connection: close`` connection stayed open."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def shielded_send(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with anyio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await self._app(scope, receive, shielded_send if scope["type"] == "http" else send)


def protocol_error_body(status: int) -> bytes:
    """The JSON error body of an error hypercorn answers before the app sees the request."""
    kind = _PROTOCOL_KINDS.get(status, "BadRequest")
    message = "the request's headers are too large" if status == 431 else "malformed request"
    return json.dumps({"error": {"kind": kind, "message": message}}).encode()


_Sender = Callable[[H11Protocol, int], Coroutine[Any, Any, None]]


def _json_error_response(original: _Sender) -> _Sender:
    async def send_error_response(self: H11Protocol, status_code: int) -> None:
        body = protocol_error_body(status_code)
        headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        extra: Any = self.config.response_headers("h11")
        await self._send_h11_event(
            h11.Response(status_code=status_code, headers=list(chain(headers, extra)))
        )
        await self._send_h11_event(h11.Data(data=body))
        await self._send_h11_event(h11.EndOfMessage())

    send_error_response.original = original  # type: ignore[attr-defined]
    return send_error_response


def json_protocol_errors() -> None:
    """Make hypercorn's HTTP/1.1 protocol errors (431, 400) carry the JSON error body.
    hypercorn offers no hook for them, so its one method that writes them is replaced,
    once per process; it writes the same status and closes the connection as before."""
    current = H11Protocol._send_error_response
    if not hasattr(current, "original"):
        H11Protocol._send_error_response = _json_error_response(current)  # type: ignore[method-assign,assignment]
