"""The HTTP face of a runtime: a Starlette app serving the control API and the session and
artifact operations as JSON (``docs/http.md``). Routes live in ``_http_routes``; this module
holds what every request shares: the bearer token, error bodies and status codes, query
parameters, and the app itself. Bodies are read in ``_http_body``, downloads answered in
``_http_download``, the protocol's edges kept in ``_http_protocol``, health, metrics and the
access log in ``_http_ops``, and the OpenAPI document made in ``_http_openapi``."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from satchel._http_body import DrainAfterRefusal
from satchel._http_body import body_object as body_object
from satchel._http_limits import DEFAULT_MAX_JSON_BYTES
from satchel._http_status import STATUS as STATUS
from satchel._http_status import status_of as status_of
from satchel.actors._wire import dumps
from satchel.runtime import _errors as errors

log = logging.getLogger("satchel.http")

if TYPE_CHECKING:
    from satchel._http_peers import Peers
    from satchel._runtime import Runtime

JSON = "application/json"
#: Header naming the session a request acts as (artifact access control); none = the host.
ACTING_SESSION = "X-Satchel-Session"


def json_response(value: Any, status: int = 200) -> Response:
    """``value`` (records, lists, plain data) as a JSON response."""
    return Response(dumps(value), status_code=status, media_type=JSON)


def error_response(kind: str, message: str, status: int) -> Response:
    """The error body every failure has: ``{"error": {"kind", "message"}}``."""
    return json_response({"error": {"kind": kind, "message": message}}, status)


def only(body: dict[str, Any], allowed: Sequence[str]) -> dict[str, Any]:
    """``body``, refusing keys the endpoint does not take."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise errors.InvalidArgumentError(
            f"unknown field(s) {', '.join(unknown)}; this endpoint takes {', '.join(allowed)}"
        )
    return body


def query_int(request: Request, name: str) -> int | None:
    """An integer query parameter, if given."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.InvalidArgumentError(f"{name} must be an integer, not {raw!r}") from None


def strict_bool(body: dict[str, Any], name: str, default: bool = False) -> bool:
    """The JSON boolean ``body[name]`` (``default`` if absent): nothing else stands for one."""
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise errors.InvalidArgumentError(f"{name} must be true or false, not {value!r}")
    return value


def query_bool(request: Request, name: str) -> bool | None:
    """A ``true``/``false`` query parameter, if given."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise errors.InvalidArgumentError(f"{name} must be true or false, not {raw!r}")


def runtime(request: Request) -> Runtime:
    """The runtime the app serves."""
    rt: Runtime = request.app.state.runtime
    return rt


Handler = Callable[[Request], Awaitable[Response]]


@attrs.frozen
class Endpoint:
    """One operation: its route, handler and what the OpenAPI document says of it."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    query: tuple[str, ...] = ()
    body: str | None = None  # "json", "bytes", or None
    status: int = 200
    produces: str = JSON
    #: What a success answers, for the OpenAPI document: a type, or a ``shape``.
    returns: Any = None
    #: The fields of a JSON body and their types.
    fields: Mapping[str, Any] = attrs.field(factory=dict)
    needs_token: bool = True


class _BearerToken:
    """Every request carries ``Authorization: Bearer <token>``, compared in constant time.
    Plain ASGI, not ``BaseHTTPMiddleware``: it leaves streamed bodies alone and costs less."""

    def __init__(self, app: ASGIApp, token: str, open_paths: frozenset[str]) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()
        self._open = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path not in self._open and not _inspector(path):
            given = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            if not hmac.compare_digest(given, self._expected):
                response = error_response("Unauthorized", "a valid bearer token is required", 401)
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


def _inspector(path: str) -> bool:
    """Whether ``path`` is the web inspector's, which checks a login cookie of its own."""
    return path == "/ui" or path.startswith("/ui/")


async def _satchel_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, errors.SatchelError)
    return error_response(error.kind, str(error), status_of(error))


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    kind = "NotFound" if error.status_code == 404 else "HTTPError"
    if error.status_code == 405:
        kind = "MethodNotAllowed"
    return error_response(kind, str(error.detail), error.status_code)


async def _client_gone(request: Request, error: Exception) -> Response:
    # The client left mid-body: no one reads this answer, and nothing failed on our side.
    return error_response("ClientDisconnected", "the client closed the connection", 400)


async def _internal_error(request: Request, error: Exception) -> Response:
    # The message of an unexpected error may hold anything (paths, other sessions' data): it
    # goes to the server's log, the client gets its type only.
    log.error("%s %s failed", request.method, request.url.path, exc_info=error)
    return error_response("InternalError", f"{type(error).__name__} (see the server log)", 500)


async def _to_inspector(request: Request) -> Response:
    from starlette.responses import RedirectResponse

    return RedirectResponse("/ui/", status_code=307)


def _forwarding(rt: Runtime, peers: Peers) -> list[Middleware]:
    """On a cluster node: the middleware sending requests for sessions served elsewhere to
    their node."""
    from satchel._http_cluster import Forward
    from satchel.actors.cluster import SessionPlacement

    placement = rt.supervisor.placement
    if not isinstance(placement, SessionPlacement):
        return []
    return [Middleware(Forward, placement=placement, peers=peers)]


def make_app(
    rt: Runtime,
    token: str,
    *,
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
    metrics_open: bool = False,
) -> Starlette:
    """The Starlette app serving ``rt``; every request needs ``token``.

    A JSON request body over ``max_json_bytes`` is refused with 413 (artifact uploads and
    archives stream and have their own limits). ``GET /health`` needs no token, nor does
    ``GET /metrics`` if ``metrics_open``.
    """
    from satchel import _ui as ui
    from satchel import _ui_actors as ui_actors
    from satchel._http_openapi import openapi
    from satchel._http_ops import Observe, Traffic
    from satchel._http_peers import Peers
    from satchel._http_protocol import StrictPaths, WholeLastMessage
    from satchel._http_routes import ENDPOINTS

    if isinstance(max_json_bytes, bool) or not isinstance(max_json_bytes, int):
        raise errors.InvalidArgumentError(
            f"max_json_bytes must be an integer, not {max_json_bytes!r}"
        )
    if max_json_bytes < 1:
        raise errors.ValidationError(f"max_json_bytes must be positive, not {max_json_bytes}")
    document = openapi(ENDPOINTS)

    async def openapi_document(request: Request) -> Response:
        return json_response(document)

    routes: list[BaseRoute] = [Route(ep.path, ep.handler, methods=[ep.method]) for ep in ENDPOINTS]
    if rt._cluster is not None:  # handles' calls sent by the other nodes
        from satchel._http_calls import ROUTES

        routes.extend(ROUTES)
    routes.append(Route("/openapi.json", openapi_document, methods=["GET"]))
    routes.append(Route("/ui", _to_inspector, methods=["GET"]))
    routes.append(ui.mount())
    open_paths = frozenset({"/health", "/metrics"} if metrics_open else {"/health"})
    traffic = Traffic()
    peers = Peers()
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(Observe, traffic=traffic),
            Middleware(WholeLastMessage),
            Middleware(DrainAfterRefusal, default_drain=max_json_bytes),
            Middleware(StrictPaths),
            Middleware(_BearerToken, token=token, open_paths=open_paths),
            Middleware(ui.Headers),
            *_forwarding(rt, peers),
        ],
        exception_handlers={
            errors.SatchelError: _satchel_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            Exception: _internal_error,
        },
    )
    app.state.runtime = rt
    app.state.token = token
    app.state.ui_links_used = {}
    app.state.ui_statistics = ui_actors.StatisticsHistory(rt)
    app.state.max_json_bytes = max_json_bytes
    app.state.traffic = traffic
    #: Connections to the other nodes of a cluster (``aclose`` when done serving).
    app.state.peers = peers
    return app
