"""An httpx transport that runs the HTTP app in this process and streams its answers.

httpx's own ``ASGITransport`` collects a whole response body before it returns: a local
``export`` of a session of some hundred megabytes held all of it in memory, twice. This one
runs each request's app call as a task and hands body chunks on as the app sends them,
through a channel that holds none: memory stays bounded at any size.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import anyio
import anyio.abc
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.types import ASGIApp

from satchel.runtime._errors import SatchelError

Message = MutableMapping[str, Any]
#: The message type a failed app call sends after whatever it sent before failing.
_FAILED = "satchel.failed"


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """Serves requests with ``app``, each in a task of ``tasks``, streaming the answers."""

    def __init__(self, app: ASGIApp, tasks: anyio.abc.TaskGroup) -> None:
        self._app = app
        self._tasks = tasks

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        sender, messages = anyio.create_memory_object_stream[Message]()
        cancel = anyio.CancelScope()
        done = anyio.Event()
        chunks = request.stream.__aiter__()
        receive = _receiver(chunks, done)
        self._tasks.start_soon(self._call, _scope(request), receive, chunks, sender, cancel)
        body = _Body(messages, cancel, done)
        try:
            start = await body.next_message()
            if start["type"] != "http.response.start":
                raise RuntimeError(f"the app answered {start['type']} first")
            status = int(start["status"])
            stream: httpx.AsyncByteStream = body
            if status >= 500:
                # An unexpected error: the app re-raises it once its 500 is sent, and the
                # command reports the error itself (there is no server log to point to).
                stream = httpx.ByteStream(b"".join([chunk async for chunk in body]))
                await body.finish()
        except BaseException:
            await body.aclose()
            raise
        return httpx.Response(status, headers=start.get("headers", []), stream=stream)

    async def _call(
        self,
        scope: Message,
        receive: Any,
        chunks: AsyncIterator[bytes],
        sender: MemoryObjectSendStream[Message],
        cancel: anyio.CancelScope,
    ) -> None:
        with sender, cancel:
            try:
                await self._app(scope, receive, sender.send)
            except Exception as error:
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await sender.send({"type": _FAILED, "error": _unwrapped(error)})
            finally:
                # An app that refused a body early (413) left the request stream unread:
                # close it here, not in the garbage collector.
                closing = getattr(chunks, "aclose", None)
                if closing is not None:
                    with anyio.CancelScope(shield=True):
                        await closing()


class _Body(httpx.AsyncByteStream):
    """The body of one answer, read from the app's messages as they come."""

    def __init__(
        self,
        messages: MemoryObjectReceiveStream[Message],
        cancel: anyio.CancelScope,
        done: anyio.Event,
    ) -> None:
        self._messages = messages
        self._cancel = cancel
        self._done = done
        self._ended = False

    async def next_message(self) -> Message:
        """The app's next message; its error if it failed."""
        try:
            message = await self._messages.receive()
        except anyio.EndOfStream:
            raise RuntimeError("the app ended without answering") from None
        if message["type"] == _FAILED:
            raise message["error"]
        return message

    async def finish(self) -> None:
        """Wait for the app call to end once the body is read; its error if it raised."""
        with contextlib.suppress(anyio.EndOfStream):
            message = await self._messages.receive()
            if message["type"] == _FAILED:
                raise message["error"]
        await self.aclose()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self._ended:
            message = await self.next_message()
            if message["type"] != "http.response.body":
                continue
            self._ended = not message.get("more_body", False)
            if message.get("body"):
                yield bytes(message["body"])

    async def aclose(self) -> None:
        self._done.set()
        self._cancel.cancel()
        await self._messages.aclose()


def _receiver(chunks: AsyncIterator[bytes], done: anyio.Event) -> Any:
    """The app's ``receive``: the request body, then a disconnect once the answer is read."""
    complete = False

    async def receive() -> Message:
        nonlocal complete
        if complete:
            await done.wait()
            return {"type": "http.disconnect"}
        try:
            chunk = await chunks.__anext__()
        except StopAsyncIteration:
            complete = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    return receive


def _scope(request: httpx.Request) -> Message:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "headers": [(k.lower(), v) for k, v in request.headers.raw],
        "scheme": request.url.scheme,
        "path": request.url.path,
        "raw_path": request.url.raw_path.split(b"?")[0],
        "query_string": request.url.query,
        "server": (request.url.host, request.url.port),
        "client": ("127.0.0.1", 0),
        "root_path": "",
    }


def _unwrapped(error: Exception) -> Exception:
    """A satchel error raised while a streamed answer was under way (Starlette wraps it in a
    ``RuntimeError`` once the response has started), else ``error`` itself."""
    cause = error.__cause__
    if isinstance(error, RuntimeError) and isinstance(cause, SatchelError):
        return cause
    return error
