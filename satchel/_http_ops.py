"""What an operator watches a server with: ``GET /health`` (liveness, no token),
``GET /metrics`` (Prometheus text), the access log (logger ``satchel.http.access``, one line
per request) and the server's log level."""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from satchel._http import json_response, runtime
from satchel.runtime import _errors as errors

access_log = logging.getLogger("satchel.http.access")
LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


class Traffic:
    """Counts of the requests served, by method, route and status, and their time."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.seconds: defaultdict[tuple[str, str], float] = defaultdict(float)

    def note(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request."""
        self.requests[method, route, status] += 1
        self.seconds[method, route] += seconds


class Observe:
    """Counts each request in ``traffic`` and logs it to ``satchel.http.access``, once its
    answer is sent (or the client is gone)."""

    def __init__(self, app: ASGIApp, traffic: Traffic) -> None:
        self._app = app
        self._traffic = traffic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status, sent = 0, 0

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self._app(scope, receive, counting_send)
        finally:
            self._done(scope, status or 500, sent, time.perf_counter() - started)

    def _done(self, scope: Scope, status: int, sent: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        self._traffic.note(scope["method"], route, status, seconds)
        client = scope.get("client") or ("-", 0)
        target = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        access_log.info(
            '%s "%s %s" %d %d %.1fms',
            client[0],
            scope["method"],
            target,
            status,
            sent,
            seconds * 1000,
        )


async def health(request: Request) -> Response:
    """Liveness: the server answers (no token needed)."""
    return json_response({"status": "ok"})


async def metrics(request: Request) -> Response:
    """The request counters and the runtime's statistics, in Prometheus' text format."""
    traffic: Traffic = request.app.state.traffic
    stats = runtime(request).control.statistics()
    text = "\n".join(_exposition(traffic, stats)) + "\n"
    return Response(text, media_type=PROMETHEUS)


def _exposition(traffic: Traffic, stats: Any) -> Iterator[str]:
    yield "# HELP satchel_http_requests_total Requests answered, by method, route and status."
    yield "# TYPE satchel_http_requests_total counter"
    for (method, route, status), count in sorted(traffic.requests.items()):
        labels = _labels(method=method, route=route, status=str(status))
        yield f"satchel_http_requests_total{labels} {count}"
    yield "# HELP satchel_http_request_seconds_total Time spent answering, by method and route."
    yield "# TYPE satchel_http_request_seconds_total counter"
    for (method, route), seconds in sorted(traffic.seconds.items()):
        yield f"satchel_http_request_seconds_total{_labels(method=method, route=route)} {seconds}"
    yield "# HELP satchel_live_actors Actors in memory now, by kind."
    yield "# TYPE satchel_live_actors gauge"
    for kind, count in sorted(stats.actors_by_kind.items()):
        yield f"satchel_live_actors{_labels(kind=kind)} {count}"
    for group in ("supervisor", "hooks"):
        for name, value in sorted(_numbers(getattr(stats, group)).items()):
            metric = f"satchel_{group}_{name}"
            yield f"# TYPE {metric} {'gauge' if name in _GAUGES else 'counter'}"
            yield f"{metric} {value}"


_GAUGES = {"live_actors", "failed_actors", "resident_cap"}


def _numbers(record: Any) -> dict[str, int | float]:
    """The numeric fields of a statistics record (flags and texts left out)."""
    fields = getattr(record, "__attrs_attrs__", ())
    values = {f.name: getattr(record, f.name) for f in fields}
    return {
        name: value
        for name, value in values.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@contextmanager
def logs_to_stderr(level: str | None) -> Iterator[None]:
    """Within: satchel's loggers write to stderr at ``level`` (debug, info, warning or
    error); ``None`` leaves logging as the host set it up."""
    if level is None:
        yield
        return
    if not isinstance(level, str) or level.lower() not in LOG_LEVELS:
        raise errors.ValidationError(
            f"log_level must be one of {', '.join(LOG_LEVELS)}, not {level!r}"
        )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("satchel")
    before = logger.level
    logger.setLevel(LOG_LEVELS[level.lower()])
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
        handler.close()
