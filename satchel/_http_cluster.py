"""Requests for a session another node serves go to that node.

In a cluster each session is served by the node holding its lease. A request under
``/sessions/{id}`` that reaches a node not holding the lease looks the lease up; if another
node holds it, the request (headers, token and body, streamed) is sent on to that node and
its answer streamed back, so a client may talk to any node. (The owner must start answering
within a lease's time.) A forwarded request carries
``X-Satchel-Forwarded`` and is never forwarded again: if the lease moved meanwhile, the node
answers ``SessionMoved`` (503) and the client asks again. A session no node holds is served
where the request landed. An owner that does not answer (it died; its lease expires within
its time) gives ``SessionMoved`` too.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel._cluster_owners import Owners
from satchel._http_peers import Answer, Peers, PeerUnreachableError
from satchel.actors import _validate as validate
from satchel.actors.cluster import SessionPlacement
from satchel.runtime import _errors as errors

if TYPE_CHECKING:
    from starlette.responses import Response

log = logging.getLogger("satchel.http")

#: Marks a request one node sent on to another (its value: the sending node's id).
FORWARDED = b"x-satchel-forwarded"
_PREFIX = "/sessions/"
# Hop-by-hop headers (RFC 9110 7.6.1), and the host, which names the node asked first.
_NOT_FORWARDED = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"expect",
    }
)


class Forward:
    """ASGI middleware sending requests for sessions served elsewhere to their node (see
    the module docstring)."""

    def __init__(self, app: ASGIApp, placement: SessionPlacement, peers: Peers) -> None:
        self._app = app
        self._placement = placement
        self._peers = peers
        self._owners = Owners(placement)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = await self._owner_elsewhere(scope)
            if found is not None:
                await self._forward(*found, scope, receive, send)
                return
        await self._app(scope, receive, send)

    async def _owner_elsewhere(self, scope: Scope) -> tuple[str, str] | None:
        """The address of the node serving the request's session, if not this one, and the
        session's id."""
        name = _session_of(scope)
        if not name or any(key == FORWARDED for key, _ in scope["headers"]):
            return None
        try:
            session_id, _ = validate.session_id(name)
        except errors.SatchelError:
            return None  # the route answers what is wrong with it
        address = await self._owners.elsewhere(session_id)
        return None if address is None else (address, session_id)

    async def _forward(
        self, address: str, session_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        incoming = scope["headers"]
        headers = [(k, v) for k, v in incoming if k not in _NOT_FORWARDED]
        headers.append((FORWARDED, self._placement.node.id.encode()))
        # HTTP/1.1: a request has a body if it gives its length or comes chunked.
        has_body = any(k in (b"content-length", b"transfer-encoding") for k, _ in incoming)
        body = _body(receive) if has_body else None
        try:
            async with self._peers.request(
                address,
                scope["method"],
                target,
                headers,
                body,
                wait_s=self._placement.node.lease_ttl_s,
            ) as answer:
                if answer.status == 503:
                    self._owners.forget(session_id)  # it moved on: look it up again
                await _relay(answer, receive, send)
        except PeerUnreachableError as error:
            log.warning("forwarding %s to %s failed: %s", scope["path"], address, error)
            self._owners.forget(session_id)  # moved, or gone: look it up again
            await _failed(address, sent=error.sent)(scope, receive, send)
        finally:
            if body is not None:
                await body.aclose()  # the owner may not have read it all


async def _relay(answer: Answer, receive: Receive, send: Send) -> None:
    """Stream ``answer`` to the client, stopping (and dropping the connection to the node)
    when the client leaves: a download or event stream it no longer reads must not run on."""
    kept = [(k, v) for k, v in answer.headers if k.lower() not in _NOT_FORWARDED]
    await send({"type": "http.response.start", "status": answer.status, "headers": kept})
    async with anyio.create_task_group() as tasks:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass  # what is left of a body the node did not read
            tasks.cancel_scope.cancel()

        tasks.start_soon(watch)
        try:
            async for chunk in answer.body():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except PeerUnreachableError as error:  # begun: the client sees it cut short
            log.warning("a forwarded answer broke off: %s", error)
            tasks.cancel_scope.cancel()
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        tasks.cancel_scope.cancel()


def _session_of(scope: Scope) -> str:
    """The session a request's path names (``""`` for none)."""
    path: str = scope["path"]
    if not path.startswith(_PREFIX):
        return ""
    return path[len(_PREFIX) :].split("/", 1)[0]


async def _body(receive: Receive) -> AsyncGenerator[bytes, None]:
    """The request's body as the client sends it."""
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _failed(address: str, *, sent: bool) -> Response:
    """The answer to a request its node did not answer."""
    from satchel._http import error_response

    if not sent:
        return error_response(
            "SessionMoved",
            f"the session is served by the node at {address}, which does not answer; ask "
            "again (once its lease runs out, another node serves the session)",
            503,
        )
    return error_response(
        "NodeNotAnswering",
        f"the node at {address}, which serves the session, had the whole request and did not "
        "answer: it may or may not have carried it out (read before asking again)",
        504,
    )
