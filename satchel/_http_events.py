"""The HTTP endpoints of a session's event log."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from satchel._http import Endpoint, body_object, json_response, only, query_int, runtime
from satchel._http_openapi import fields_of, returns, shape
from satchel.actors.sessions._manager import SessionManager

_APPEND = (
    "events",
    "state",
    "delete",
    "expect_position",
    "at",
    "expect_created_at",
    "expect_state",
)
_E = "/sessions/{session_id}/events"


def _sid(request: Request) -> str:
    session_id: str = request.path_params["session_id"]
    return session_id


async def list_events(request: Request) -> Response:
    after = request.query_params.get("after")
    moment: Any = after
    if after is not None:
        try:
            moment = float(after)  # epoch seconds; else RFC 3339 text, checked below
        except ValueError:
            moment = after
    found = await runtime(request).sessions.events(
        _sid(request), last=query_int(request, "last"), after=moment
    )
    return json_response(found)


async def append_events(request: Request) -> Response:
    body = only(await body_object(request), _APPEND)
    events = body.pop("events", None)
    position = await runtime(request).sessions.append_events(_sid(request), events, **body)
    return json_response({"position": position}, 201)


async def pop_event(request: Request) -> Response:
    return json_response({"event": await runtime(request).sessions.pop_event(_sid(request))})


async def clear_events(request: Request) -> Response:
    return json_response({"cleared": await runtime(request).sessions.clear_events(_sid(request))})


EVENT_ENDPOINTS = (
    Endpoint("GET", _E, list_events, "The event log, oldest first", "events", ("last", "after"),
             returns=returns(SessionManager.events)),
    Endpoint("POST", _E, append_events, "Append events and a state delta in one write",
             "events", body="json", status=201, returns=shape(position=int),
             fields=fields_of(SessionManager.append_events, _APPEND)),
    Endpoint("DELETE", f"{_E}/last", pop_event, "Remove the last event", "events",
             returns=shape(event=Any)),
    Endpoint("DELETE", _E, clear_events, "Remove every event", "events",
             returns=shape(cleared=int)),
)  # fmt: skip
