"""The web inspector at ``/ui``: server-rendered pages over the runtime, for people.

The pages take the HTTP API's token once, at ``/ui/login``, and keep a cookie derived from it
(HttpOnly, SameSite=Strict, path ``/ui``); every form that changes something carries a CSRF
field derived from the token too. Every answer under ``/ui`` has a Content-Security-Policy
that allows no inline script and no other origin, and Jinja2 escapes every value the pages
show. Artifact content is never run: images are sent with their own type under a sandboxing
policy, everything else is shown as text.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from satchel.runtime import _errors as errors

if TYPE_CHECKING:
    from satchel._runtime import Runtime

log = logging.getLogger("satchel.http")

PREFIX = "/ui"
COOKIE = "satchel_ui"
_FILES = Path(__file__).resolve().parent / "_ui_files"
#: What a page may load: its own scripts, styles and images, nothing inline, no frames.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: What an artifact's raw content may do when opened: nothing.
SANDBOX = "default-src 'none'; img-src 'self'; style-src 'none'; sandbox"

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_FILES / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)

Handler = Callable[[Request], Awaitable[Response]]


def _derived(token: str, purpose: bytes) -> str:
    return hmac.new(token.encode(), purpose, hashlib.sha256).hexdigest()


#: How long a login lasts, in seconds.
LOGIN_S = 12 * 3600
#: The largest form the pages take (a token, a name and the CSRF field fit well within).
FORM_BYTES = 8192


def login_value(token: str, issued: int) -> str:
    """The cookie a browser logged in at ``issued`` holds: the time, and a MAC of it."""
    return f"{issued}.{_derived(token, f'login:{issued}'.encode())}"


def cookie_name(request: Request) -> str:
    """The cookie's name: one per port, as browsers keep cookies by host only (two servers
    on one host must not log each other's browsers out)."""
    port = request.url.port or (443 if request.url.scheme == "https" else 80)
    return f"{COOKIE}_{port}"


def whole(raw: str, name: str) -> int:
    """A whole number given as ASCII digits (``InvalidArgumentError`` for anything else)."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
        raise errors.InvalidArgumentError(f"{name} must be a whole number, not {raw[:40]!r}")
    return int(raw)


def csrf_value(token: str) -> str:
    """The field every form that changes something carries."""
    return _derived(token, b"satchel-ui-csrf")


def _token(request: Request) -> str:
    token: str = request.app.state.token
    return token


def logged_in(request: Request) -> bool:
    """Whether the request carries a login cookie of this server, less than ``LOGIN_S`` old."""
    issued, _, _ = request.cookies.get(cookie_name(request), "").partition(".")
    if not (issued.isascii() and issued.isdigit() and len(issued) <= 12):
        return False
    if not -60 <= time.time() - int(issued) <= LOGIN_S:
        return False
    wanted = login_value(_token(request), int(issued))
    given = request.cookies.get(cookie_name(request), "")
    return hmac.compare_digest(given.encode(), wanted.encode())


async def small_form(request: Request) -> dict[str, str]:
    """The request's URL-encoded form, refused (``ContentTooLargeError``) past
    ``FORM_BYTES``: read only that much, logged in or not."""
    declared = request.headers.get("content-length", "")
    if declared and (not declared.isascii() or not declared.isdigit()):
        raise errors.InvalidArgumentError("a bad Content-Length")
    if declared and int(declared) > FORM_BYTES:
        raise errors.ContentTooLargeError(f"a form is at most {FORM_BYTES} bytes")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > FORM_BYTES:
            raise errors.ContentTooLargeError(f"a form is at most {FORM_BYTES} bytes")
    fields = urllib.parse.parse_qsl(body.decode("utf-8", errors="replace"), max_num_fields=16)
    return dict(fields)


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """``template`` with ``values`` (escaped), and what every page needs."""
    page = templates.get_template(template).render(
        csrf=csrf_value(_token(request)), prefix=PREFIX, **values
    )
    return HTMLResponse(page, status_code=status)


def page(handler: Handler) -> Handler:
    """A page for logged-in browsers (others go to the login form); errors shown as a page."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        if not logged_in(request):
            return RedirectResponse(f"{PREFIX}/login", status_code=303)
        request.app.state.ui_statistics.start()
        try:
            return await handler(request)
        except errors.SatchelError as error:
            from satchel._http import status_of

            return render(request, "error.html", status_of(error), error=error)
        except Exception as error:  # the page says what failed; the log has the rest
            log.error("%s %s failed", request.method, request.url.path, exc_info=error)
            failed = errors.SatchelError(f"{type(error).__name__} (see the server log)")
            return render(request, "error.html", 500, error=failed)

    return guarded


def action(handler: Handler) -> Handler:
    """A form that changes something: logged in, with the CSRF field, or refused (403)."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        refused = HTMLResponse("refused: log in, and use the page's own form", 403)
        if not logged_in(request):
            return refused  # before reading a byte of the body
        try:
            form = await small_form(request)
        except (errors.ContentTooLargeError, ValueError):
            return refused
        given = form.get("csrf", "")
        if not hmac.compare_digest(given.encode(), csrf_value(_token(request)).encode()):
            return refused
        request.state.form = form
        return await page(handler)(request)

    return guarded


#: How long a login link made by ``satchel ui`` stays good, in seconds.
LINK_S = 60


def login_link(token: str, now: float | None = None) -> str:
    """A path that logs a browser in once, within ``LINK_S`` seconds (``satchel ui`` opens
    it): the token itself never goes into a URL."""
    expires = int((time.time() if now is None else now) + LINK_S)
    return f"{PREFIX}/login?once={expires}.{_derived(token, f'once:{expires}'.encode())}"


def _link_good(request: Request, given: str) -> bool:
    """Whether ``given`` is a login link's key, in its time and not used before."""
    expires, _, mac = given.partition(".")
    if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
        return False
    if not 0 <= int(expires) - time.time() <= LINK_S:
        return False
    wanted = _derived(_token(request), f"once:{expires}".encode())
    used: dict[str, int] = request.app.state.ui_links_used
    if not hmac.compare_digest(mac.encode(), wanted.encode()) or given in used:
        return False
    for old in [k for k, until in used.items() if until < time.time()]:
        del used[old]
    used[given] = int(expires)
    return True


def _logged_in_answer(request: Request) -> Response:
    answer = RedirectResponse(f"{PREFIX}/", status_code=303)
    value = login_value(_token(request), int(time.time()))
    answer.set_cookie(
        cookie_name(request),
        value,
        max_age=LOGIN_S,
        path=PREFIX,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return answer


async def login_form(request: Request) -> Response:
    once = request.query_params.get("once")
    if once is not None and _link_good(request, once):
        return _logged_in_answer(request)
    if logged_in(request):
        return RedirectResponse(f"{PREFIX}/", status_code=303)
    return render(request, "login.html", failed=once is not None)


async def login(request: Request) -> Response:
    try:
        form = await small_form(request)
    except (errors.ContentTooLargeError, ValueError):
        return render(request, "login.html", 413, failed=True)
    given = form.get("token", "")
    if not hmac.compare_digest(given.encode(), _token(request).encode()):
        return render(request, "login.html", 401, failed=True)
    return _logged_in_answer(request)


@action
async def logout(request: Request) -> Response:
    answer = RedirectResponse(f"{PREFIX}/login", status_code=303)
    answer.delete_cookie(cookie_name(request), path=PREFIX, httponly=True, samesite="strict")
    return answer


class Headers:
    """ASGI middleware: every answer under ``/ui`` gets the page policy (unless it set its
    own), no sniffing, no referrer, and no caching."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = [
                    (b"content-security-policy", POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                ]
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, with_headers)


def mount() -> Mount:
    """The inspector's routes, under ``/ui``."""
    from satchel import _ui_actors, _ui_artifacts, _ui_sessions

    routes = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=_FILES / "static"), name="static"),
        *_ui_sessions.ROUTES,
        *_ui_artifacts.ROUTES,
        *_ui_actors.ROUTES,
    ]
    return Mount(PREFIX, routes=routes)
