"""Connections from one node to the others, for forwarded requests: HTTP/1.1 kept alive,
framed by h11, over AnyIO streams (Trio or asyncio).

Not httpx: its client cost about 1.3 ms a request more than the request itself on this
machine (measured against a bare keep-alive writer on the same node), which a forwarded
request pays on top of the node it reaches. This does only what forwarding needs: one request
at a time per connection, its body streamed in, the answer streamed out, the connection kept
for the next request when both sides are done with it.
"""

from __future__ import annotations

import math
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import anyio
import anyio.abc
import h11

Headers = Sequence[tuple[bytes, bytes]]

#: How many idle connections to one node are kept.
_IDLE_KEPT = 16
#: A kept connection is used for at most this many requests, and after this long idle not
#: at all (below the limits of the serving side, hypercorn's: 1,000 and 5 s).
_MAX_USES = 900
_MAX_IDLE_S = 4.0
_READ = 64 * 1024


class PeerUnreachableError(Exception):
    """The node could not be reached, or broke the connection (or went silent) before its
    answer began. ``sent``: whether the whole request had reached it (it may have carried
    the request out) or not (it cannot have)."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class _Connection:
    """One keep-alive connection to a node."""

    def __init__(self, stream: anyio.abc.SocketStream, host: bytes) -> None:
        self.stream = stream
        self.host = host
        self.h11 = h11.Connection(h11.CLIENT)
        #: Requests sent on it, and when it was last given back (the loop's clock).
        self.uses = 0
        self.idle_since = 0.0

    def stale(self, now: float) -> bool:
        """Whether the node may have closed it by now: hypercorn, which serves the nodes,
        closes a connection after 1,000 requests or 5 s idle (a request sent on it then
        is lost, and one with a body cannot be sent again)."""
        return self.uses >= _MAX_USES or now - self.idle_since > _MAX_IDLE_S or self.closed()

    def closed(self) -> bool:
        """Whether the node has closed it already (its end of stream or a reset has come):
        a request must not go on it, or it would be taken as sent and perhaps carried out."""
        raw = self.stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
        if raw is None:
            return False
        # asyncio gives a wrapper without recv: peek through a socket object on the same
        # descriptor, let go of (not closed) after.
        probe = socket.socket(fileno=raw.fileno())
        try:
            return probe.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False  # open, and nothing to read: as it should be
        except OSError:
            return True
        finally:
            probe.detach()

    async def send(self, event: h11.Event) -> None:
        data = self.h11.send(event)
        if data:
            await self.stream.send(data)

    async def next_event(self) -> h11.Event:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            try:
                data = await self.stream.receive(_READ)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                data = b""
            self.h11.receive_data(data)

    @property
    def reusable(self) -> bool:
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    async def aclose(self) -> None:
        await self.stream.aclose()


class Answer:
    """A node's answer: its status and headers, and its body as it comes."""

    def __init__(self, connection: _Connection, status: int, headers: Headers) -> None:
        self._connection = connection
        self.status = status
        self.headers = headers

    async def body(self) -> AsyncGenerator[bytes, None]:
        """The answer's body, piece by piece."""
        while True:
            event = await self._connection.next_event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return
            elif isinstance(event, h11.ConnectionClosed):
                raise PeerUnreachableError("the node closed the connection mid-answer", sent=True)


class Peers:
    """The connections a node keeps to the other nodes (``aclose`` when it stops serving)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._closed = False

    @asynccontextmanager
    async def request(
        self,
        address: str,
        method: str,
        target: bytes,
        headers: Headers,
        body: AsyncIterator[bytes] | None,
        *,
        wait_s: float,
    ) -> AsyncIterator[Answer]:
        """Send a request to the node at ``address`` (``http://host:port``) and yield its
        answer; ``PeerUnreachableError`` if it cannot be sent or its answer does not begin.
        ``body`` (``None``: no body) is streamed, chunked unless ``headers`` give its
        length. The node has ``wait_s`` to accept the connection and to take each piece sent
        (a paused node takes nothing); once it has the whole request, its answer is awaited
        as long as it takes. The connection goes back to the pool if the answer was read to
        its end."""
        place = _place(address)
        connection, kept = await self._connection(place, fresh=False, wait_s=wait_s)
        try:
            answer = await self._exchange(connection, method, target, headers, body, wait_s)
        except PeerUnreachableError as error:
            await connection.aclose()
            if body is not None or not kept or error.sent:
                raise
            # A kept connection the node had closed meanwhile: once more, on a new one.
            connection, _ = await self._connection(place, fresh=True, wait_s=wait_s)
            try:
                answer = await self._exchange(connection, method, target, headers, None, wait_s)
            except BaseException:
                await connection.aclose()
                raise
        except BaseException:
            await connection.aclose()
            raise
        try:
            yield answer
        except BaseException:
            await connection.aclose()
            raise
        if connection.reusable and not self._closed:
            connection.h11.start_next_cycle()
            connection.idle_since = anyio.current_time()
            idle = self._idle.setdefault(place, [])
            if len(idle) < _IDLE_KEPT:
                idle.append(connection)
                return
        await connection.aclose()

    async def _connection(
        self, place: tuple[str, int], *, fresh: bool, wait_s: float
    ) -> tuple[_Connection, bool]:
        """A connection to ``place``, and whether it was a kept one."""
        idle = self._idle.get(place)
        now = anyio.current_time()
        while idle and not fresh:
            kept = idle.pop()
            if not kept.stale(now):
                kept.uses += 1
                return kept, True
            await kept.aclose()
        where = f"{place[0]}:{place[1]}"
        try:
            with anyio.fail_after(wait_s):
                stream = await anyio.connect_tcp(*place)
        except (OSError, TimeoutError) as error:
            message = f"cannot connect to {where}: {error!r}"
            raise PeerUnreachableError(message, sent=False) from None
        connection = _Connection(stream, where.encode())
        connection.uses = 1
        return connection, False

    @staticmethod
    async def _exchange(
        connection: _Connection,
        method: str,
        target: bytes,
        headers: Headers,
        body: AsyncIterator[bytes] | None,
        wait_s: float,
    ) -> Answer:
        sent = [(b"host", connection.host), *headers]
        if body is not None and not any(k == b"content-length" for k, _ in headers):
            sent.append((b"transfer-encoding", b"chunked"))
        try:
            with anyio.fail_after(wait_s):
                await connection.send(h11.Request(method=method, target=target, headers=sent))
            if body is not None:
                async for piece in body:
                    with anyio.fail_after(wait_s):  # a node that takes nothing is paused
                        await connection.send(h11.Data(data=piece))
            await connection.send(h11.EndOfMessage())
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError, TimeoutError):
            # The node may have answered early (a body over its limit) and closed.
            early = await _answer(connection, min(wait_s, 1.0), sent=False)
            if early is None:
                raise PeerUnreachableError("the node broke the connection", sent=False) from None
            return early
        # The whole request is there: the node may take its time (a long operation), and
        # the client, who sets the deadline, waits as it would on the node itself.
        answer = await _answer(connection, math.inf, sent=True)
        if answer is None:
            message = "the node closed the connection before answering"
            raise PeerUnreachableError(message, sent=True)
        return answer

    async def aclose(self) -> None:
        """Close the kept connections."""
        self._closed = True
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()


async def _answer(connection: _Connection, wait_s: float, *, sent: bool) -> Answer | None:
    """The start of the node's answer, ``None`` if the connection ended without one, or
    ``PeerUnreachableError`` if none began within ``wait_s``."""
    try:
        with anyio.fail_after(wait_s):
            event = await connection.next_event()
            while isinstance(event, h11.InformationalResponse):  # 100 Continue and the like
                event = await connection.next_event()
    except TimeoutError:
        message = f"the node did not answer within {wait_s} s"
        raise PeerUnreachableError(message, sent=sent) from None
    except h11.RemoteProtocolError as error:
        message = f"the node's answer is not HTTP: {error}"
        raise PeerUnreachableError(message, sent=sent) from None
    if not isinstance(event, h11.Response):
        return None
    return Answer(connection, event.status_code, list(event.headers))


def _place(address: str) -> tuple[str, int]:
    parts = urlsplit(address)
    if parts.scheme != "http" or not parts.hostname:
        message = f"a node's address is http://host:port, not {address!r}"
        raise PeerUnreachableError(message, sent=False)
    return parts.hostname, parts.port or 80
