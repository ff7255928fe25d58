"""``POST /sessions/{id}/calls/{method}``: a session handle's call sent by another cluster
node to the node serving the session (the format is in ``_session_calls``).

The call runs here, never sent on: if this node does not serve the session any more, and
another node does, it fails with ``SessionMoved`` (503) and the sender looks again.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from satchel._http import JSON, runtime
from satchel._http_body import too_large
from satchel._session_calls import CONTENT, STREAM, closed_after, decode_arguments, encode_result
from satchel.actors.sessions._handle import AT_OWNER
from satchel.runtime import _errors as errors
from satchel.storage._blobformat import MAX_SIZE_HINT

if TYPE_CHECKING:
    from satchel._runtime import Runtime

PATH = "/sessions/{session_id}/calls/{method}"


async def session_call(request: Request) -> Response:
    method = request.path_params["method"]
    if method not in AT_OWNER and method != STREAM:
        raise errors.InvalidArgumentError(f"no session method {method!r} to call")
    rt = runtime(request)
    async with aclosing(request.stream()) as stream:
        return await _run(request, rt, method, request.path_params["session_id"], stream)


async def _run(
    request: Request, rt: Runtime, method: str, session_id: str, stream: AsyncIterator[bytes]
) -> Response:
    limit: int = request.app.state.max_json_bytes
    head, rest = await _head(request, stream, limit)
    try:
        call = json.loads(head)
        plain, length = call["arguments"], call.get("content_length")
    except (ValueError, KeyError, TypeError):
        raise errors.InvalidArgumentError("a call begins with a JSON object line") from None
    if method == STREAM:
        return await _stream(rt, session_id, plain)
    arguments = decode_arguments(method, plain)
    if method == "store_artifact":
        arguments[CONTENT] = await _content(request, rest, stream, length)
    try:
        result = await AT_OWNER[method](rt.sessions.handle(session_id), **arguments)
    except TypeError as error:  # a missing argument
        raise errors.InvalidArgumentError(f"{method}: {error}") from None
    return Response(encode_result(method, result), media_type=JSON)


async def _head(request: Request, stream: AsyncIterator[bytes], limit: int) -> tuple[bytes, bytes]:
    """The call's JSON line, and what came after it in the same piece."""
    received = bytearray()
    async for piece in stream:
        received += piece
        end = received.find(b"\n")
        if 0 <= end <= limit:
            return bytes(received[:end]), bytes(received[end + 1 :])
        if end > limit or len(received) > limit:
            raise too_large(request, "more than that", limit, "max_json_bytes")
    raise errors.InvalidArgumentError("a call begins with a JSON object line")


async def _content(
    request: Request, rest: bytes, stream: AsyncIterator[bytes], length: Any
) -> bytes | AsyncGenerator[bytes, None]:
    """The artifact's content after the JSON line: bytes when its length was given (at most
    the store's size limit), else the rest of the body as a stream."""
    limit = runtime(request).store.blobs.limits.max_size
    if length is None:
        return _rest(rest, stream)
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise errors.InvalidArgumentError(f"content_length is a count of bytes, not {length!r}")
    if length > limit:
        raise too_large(request, str(length), limit, MAX_SIZE_HINT)
    content = bytearray(rest)
    async for piece in stream:
        content += piece
        if len(content) > length:
            break
    if len(content) != length:
        raise errors.InvalidArgumentError(
            f"the call said {length} bytes of content and sent {len(content)}"
        )
    return bytes(content)


async def _rest(rest: bytes, stream: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    if rest:
        yield rest
    async for piece in stream:
        if piece:
            yield piece


async def _stream(rt: Runtime, session_id: str, plain: Any) -> Response:
    """An artifact's content, streamed; an error before its first piece is answered as one.
    (``stream_artifact``'s arguments are ``artifact_info``'s.)"""
    arguments = decode_arguments("artifact_info", plain)
    chunks = rt.artifacts.stream(session_id, **arguments)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""

    async def body() -> AsyncGenerator[bytes, None]:
        async with closed_after(chunks):
            yield first
            async for chunk in chunks:
                yield chunk

    return StreamingResponse(body(), media_type="application/octet-stream")


ROUTES = [Route(PATH, session_call, methods=["POST"])]
