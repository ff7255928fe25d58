"""Request bodies: JSON read up to a limit and parsed strictly, and the middleware that lets a
refused client read its answer.

A body over the limit is refused before it is read when its ``Content-Length`` says so, and
as soon as it crosses the limit otherwise: nothing past the limit is ever held. The refusal
goes out at once; then (``DrainAfterRefusal``) the server reads and drops at most the limit
again, for a few seconds at most, before it closes the connection, so that a client that
sends everything before it reads gets its 413 rather than a reset connection.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any

import anyio
import attrs
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel.runtime import _errors as errors

#: How long a refused request's remaining body is read (and dropped) at most.
DRAIN_SECONDS = 5.0
_BODY = "satchel.body"  # the scope key of a request's BodyProgress


def _no_constant(name: str) -> Any:
    raise errors.InvalidArgumentError(f"{name} is not a JSON number")


def parse_object(raw: bytes, what: str = "the request body") -> dict[str, Any]:
    """A JSON object from bytes (empty = ``{}``), parsed strictly: ``NaN``, nesting past
    what the parser can follow and integers of more digits than Python converts are
    ``InvalidArgumentError``, as malformed JSON is."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise errors.InvalidArgumentError(f"{what} is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as error:  # JSONDecodeError, over-long integers
        raise errors.InvalidArgumentError(f"{what} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise errors.InvalidArgumentError(f"{what} must be a JSON object, not {kind}")
    return value


def declared_length(request: Request) -> int | None:
    """The request's ``Content-Length``, if it declares one (the protocol layer has already
    refused one that is not a number)."""
    raw = request.headers.get("content-length")
    return int(raw) if raw is not None and raw.isdigit() else None


#: How to raise the JSON body limit, for the error refusing a body over it.
_JSON_HINT = "max_json_bytes: raise it with satchel serve --max-json-bytes N"


def too_large(request: Request, size: str, limit: int, setting: str) -> errors.ContentTooLargeError:
    """The error refusing a body of ``size`` over ``limit``; after it is answered, at most
    ``limit`` bytes more of the body are read and dropped."""
    request.state.drain_bytes = limit
    return errors.ContentTooLargeError(
        f"a request body of {size} bytes is over the limit of {limit} bytes ({setting})"
    )


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole request body, refused with ``ContentTooLargeError`` (413) once it is over
    ``limit`` bytes: at once if its ``Content-Length`` says so, else as soon as it crosses."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise too_large(request, str(declared), limit, _JSON_HINT)
    received = bytearray()
    async with aclosing(request.stream()) as stream:
        async for piece in stream:
            if len(received) + len(piece) > limit:
                raise too_large(request, "more than that", limit, _JSON_HINT)
            received += piece
    return bytes(received)


async def body_object(request: Request) -> dict[str, Any]:
    """The request's JSON object, at most the app's ``max_json_bytes`` long."""
    limit: int = request.app.state.max_json_bytes
    return parse_object(await read_limited(request, limit))


@attrs.define
class BodyProgress:
    """How far a request's body has been received."""

    done: bool = False


def body_progress(scope: Scope) -> BodyProgress:
    """The progress of the request in ``scope`` (a fresh one outside ``DrainAfterRefusal``)."""
    progress = scope.get(_BODY)
    return progress if isinstance(progress, BodyProgress) else BodyProgress()


class DrainAfterRefusal:
    """An error answered before the request's body ended is sent at once, with
    ``Connection: close``; then at most ``drain_bytes`` (from the request's state, else
    ``default_drain``) of the body are read and dropped before the connection closes."""

    def __init__(self, app: ASGIApp, default_drain: int) -> None:
        self._app = app
        self._default_drain = default_drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        progress = BodyProgress()
        scope[_BODY] = progress
        refusing = False

        async def tracked_receive() -> Message:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                progress.done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal refusing
            if message["type"] == "http.response.start":
                refusing = message["status"] >= 400 and not progress.done
                if refusing:
                    message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            elif (
                refusing
                and message["type"] == "http.response.body"
                and not message.get("more_body", False)
            ):
                # The whole answer goes out now; the connection ends after the drain.
                await send({**message, "more_body": True})
                await self._drain(scope, tracked_receive, progress)
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self._app(scope, tracked_receive, guarded_send)

    async def _drain(self, scope: Scope, receive: Receive, progress: BodyProgress) -> None:
        budget = scope.get("state", {}).get("drain_bytes", self._default_drain)
        with anyio.move_on_after(DRAIN_SECONDS):
            while budget > 0 and not progress.done:
                budget -= len((await receive()).get("body", b""))
