"""The HTTP endpoints of sessions, their variables, journal and replay, and the control API.
Artifacts, archives and Lua are in ``_http_artifacts``; ``ENDPOINTS`` is every route."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from satchel._http import (
    Endpoint,
    Handler,
    body_object,
    json_response,
    only,
    query_bool,
    query_int,
    runtime,
    strict_bool,
)
from satchel._http_admin import ADMIN_ENDPOINTS
from satchel._http_artifacts import ARTIFACT_ENDPOINTS
from satchel._http_events import EVENT_ENDPOINTS
from satchel._http_openapi import fields_of, returns, shape
from satchel._http_ops import health, metrics
from satchel.actors._control import Control
from satchel.actors.hooks._schedules import Replays
from satchel.actors.sessions._history import History
from satchel.actors.sessions._manager import SessionManager

_LIST_TEXT = (
    "status",
    "parent_session_id",
    "search",
    "created_after",
    "created_before",
    "app",
    "user",
)
_LIST = (*_LIST_TEXT, "tags", "order_by", "descending", "offset", "limit")
_CREATE = (
    "name",
    "description",
    "tags",
    "metadata",
    "parent_session_id",
    "config",
    "key",
    "app",
    "user",
    "state",
)
_REPLAY = ("mode", "at", "modifications", "compare_results", "stop_on_error", "steps_from")
_SCHEDULE = ("session_id", "when", "every_s", "mode", "at", "modifications", "compare_results")


def _sid(request: Request) -> str:
    session_id: str = request.path_params["session_id"]
    return session_id


def _no_content() -> Response:
    return Response(status_code=204)


# -- sessions -------------------------------------------------------------------------------


async def list_sessions(request: Request) -> Response:
    params = request.query_params
    filters: dict[str, object] = {n: params[n] for n in _LIST_TEXT if n in params}
    if params.getlist("tags"):
        filters["tags"] = params.getlist("tags")
    if "order_by" in params:
        filters["order_by"] = params["order_by"]
    for name, value in (
        ("descending", query_bool(request, "descending")),
        ("offset", query_int(request, "offset")),
        ("limit", query_int(request, "limit")),
    ):
        if value is not None:
            filters[name] = value
    return json_response(await runtime(request).sessions.list(**filters))


async def create_session(request: Request) -> Response:
    body = only(await body_object(request), _CREATE)
    session_id = await runtime(request).sessions.create(**body)
    return json_response({"id": session_id}, 201)


async def get_session(request: Request) -> Response:
    return json_response(await runtime(request).sessions.get(_sid(request)))


async def delete_session(request: Request) -> Response:
    cascade = query_bool(request, "cascade") or False
    await runtime(request).sessions.delete(_sid(request), cascade=cascade)
    return _no_content()


def _lifecycle(verb: str) -> Handler:
    """The handler of ``POST /sessions/{id}/<verb>``: the manager's verb, then the session
    as it is now (``fail`` takes an optional ``reason``)."""

    async def handler(request: Request) -> Response:
        sessions = runtime(request).sessions
        session_id = _sid(request)
        if verb == "fail":
            reason = only(await body_object(request), ("reason",)).get("reason")
            await sessions.fail(session_id, reason)
        else:
            await getattr(sessions, verb)(session_id)
        return json_response(await sessions.get(session_id))

    handler.__name__ = f"{verb}_session"  # the OpenAPI operationId
    return handler


async def fork_session(request: Request) -> Response:
    body = only(await body_object(request), ("at", "name", "key"))
    forked = await runtime(request).sessions.fork(_sid(request), **body)
    return json_response({"id": forked}, 201)


# -- variables ------------------------------------------------------------------------------


async def get_variables(request: Request) -> Response:
    sessions = runtime(request).sessions
    keys = await sessions.list_state(_sid(request))
    values = {key: await sessions.get_state(_sid(request), key) for key in keys}
    return json_response({"variables": values})


async def get_variable(request: Request) -> Response:
    key = request.path_params["key"]
    value = await runtime(request).sessions.get_state(_sid(request), key)
    return json_response({"key": key, "value": value})


async def put_variable(request: Request) -> Response:
    body = only(await body_object(request), ("value",))
    await runtime(request).sessions.set_state(
        _sid(request), request.path_params["key"], body.get("value")
    )
    return _no_content()


async def delete_variable(request: Request) -> Response:
    await runtime(request).sessions.delete_state(_sid(request), request.path_params["key"])
    return _no_content()


# -- journal and replay ---------------------------------------------------------------------


async def get_timeline(request: Request) -> Response:
    offset = query_int(request, "offset") or 0
    limit = query_int(request, "limit")
    entries = await runtime(request).sessions.timeline(_sid(request), offset=offset, limit=limit)
    return json_response(entries)


async def replay_session(request: Request) -> Response:
    config = only(await body_object(request), _REPLAY)
    return json_response(await runtime(request).sessions.replay(_sid(request), **config))


async def get_replay_metadata(request: Request) -> Response:
    return json_response(await runtime(request).sessions.replay_metadata(_sid(request)))


# -- control --------------------------------------------------------------------------------


async def list_actors(request: Request) -> Response:
    return json_response(runtime(request).control.actors(request.query_params.get("kind")))


def _actor(request: Request) -> tuple[str, str]:
    return request.path_params["actor_id"], request.path_params["kind"]


async def inspect_actor(request: Request) -> Response:
    return json_response(await runtime(request).control.inspect(*_actor(request)))


async def passivate_actor(request: Request) -> Response:
    runtime(request).control.passivate(*_actor(request))
    return json_response({"requested": "passivate"}, 202)


async def restart_actor(request: Request) -> Response:
    runtime(request).control.restart(*_actor(request))
    return json_response({"requested": "restart"}, 202)


async def stop_actor(request: Request) -> Response:
    await runtime(request).control.stop(*_actor(request))
    return json_response({"stopped": True})


async def clear_actor_failure(request: Request) -> Response:
    runtime(request).control.clear_failure(*_actor(request))
    return json_response({"cleared": True})


async def get_statistics(request: Request) -> Response:
    return json_response(runtime(request).control.statistics())


async def run_check(request: Request) -> Response:
    fix = strict_bool(only(await body_object(request), ("fix",)), "fix")
    result = await runtime(request).control.check(fix=fix)
    return json_response(
        {"clean": result.clean, "blobs": result.blobs, "sessions": result.sessions}
    )


async def run_gc(request: Request) -> Response:
    return json_response(await runtime(request).control.gc())


async def list_schedules(request: Request) -> Response:
    session_id = request.query_params.get("session_id")
    return json_response(await runtime(request).control.schedules(session_id))


async def add_schedule(request: Request) -> Response:
    body = only(await body_object(request), _SCHEDULE)
    session_id = body.pop("session_id", None)
    schedule_id = await runtime(request).control.schedule_replay(session_id, **body)
    return json_response({"id": schedule_id}, 201)


async def cancel_schedule(request: Request) -> Response:
    existed = await runtime(request).control.cancel_schedule(request.path_params["schedule_id"])
    return json_response({"cancelled": existed})


async def schedule_results(request: Request) -> Response:
    schedule_id = request.path_params["schedule_id"]
    return json_response(await runtime(request).control.schedule_results(schedule_id))


_S = "/sessions/{session_id}"
_A = "/control/actors/{kind}/{actor_id}"
_INFO = returns(SessionManager.get)
_ID = shape(id=str)
SESSION_ENDPOINTS = (
    Endpoint("GET", "/sessions", list_sessions, "List sessions", "sessions", _LIST,
             returns=returns(SessionManager.list)),
    Endpoint("POST", "/sessions", create_session, "Create a session", "sessions", body="json",
             status=201, returns=_ID, fields=fields_of(SessionManager.create, _CREATE)),
    Endpoint("GET", _S, get_session, "Get a session", "sessions", returns=_INFO),
    Endpoint("DELETE", _S, delete_session, "Delete a session", "sessions", ("cascade",),
             status=204),
    Endpoint("POST", f"{_S}/suspend", _lifecycle("suspend"), "Suspend a session", "sessions",
             returns=_INFO),
    Endpoint("POST", f"{_S}/resume", _lifecycle("resume"), "Resume a session", "sessions",
             returns=_INFO),
    Endpoint("POST", f"{_S}/complete", _lifecycle("complete"), "Complete a session", "sessions",
             returns=_INFO),
    Endpoint("POST", f"{_S}/fail", _lifecycle("fail"), "Fail a session", "sessions",
             body="json", returns=_INFO, fields=fields_of(SessionManager.fail, ("reason",))),
    Endpoint("POST", f"{_S}/archive", _lifecycle("archive"), "Archive a session", "sessions",
             returns=_INFO),
    Endpoint("POST", f"{_S}/save", _lifecycle("save"), "Persist a session now", "sessions",
             returns=_INFO),
    Endpoint("POST", f"{_S}/load", _lifecycle("load"), "Make a session live", "sessions",
             returns=_INFO),
    Endpoint("POST", f"{_S}/fork", fork_session, "Fork a session", "sessions", body="json",
             status=201, returns=_ID, fields=fields_of(SessionManager.fork, ("at", "name", "key"))),
    Endpoint("GET", f"{_S}/state", get_variables, "All variables", "state",
             returns=shape(variables=dict[str, Any])),
    Endpoint("GET", f"{_S}/state/{{key}}", get_variable, "One variable", "state",
             returns=shape(key=str, value=Any)),
    Endpoint("PUT", f"{_S}/state/{{key}}", put_variable, "Set a variable", "state",
             body="json", status=204, fields={"value": Any}),
    Endpoint("DELETE", f"{_S}/state/{{key}}", delete_variable, "Delete a variable", "state",
             status=204),
    Endpoint("GET", f"{_S}/timeline", get_timeline, "The journal, paginated", "replay",
             ("offset", "limit"), returns=returns(SessionManager.timeline)),
    Endpoint("POST", f"{_S}/replay", replay_session, "Replay a session", "replay", body="json",
             returns=returns(SessionManager.replay), fields=fields_of(History.replay, _REPLAY)),
    Endpoint("GET", f"{_S}/replay", get_replay_metadata, "Replay metadata", "replay",
             returns=returns(SessionManager.replay_metadata)),
)  # fmt: skip
CONTROL_ENDPOINTS = (
    Endpoint("GET", "/control/actors", list_actors, "Live actors", "control", ("kind",),
             returns=returns(Control.actors)),
    Endpoint("GET", _A, inspect_actor, "Inspect an actor", "control",
             returns=returns(Control.inspect)),
    Endpoint("POST", f"{_A}/passivate", passivate_actor, "Passivate an actor", "control",
             status=202, returns=shape(requested=str)),
    Endpoint("POST", f"{_A}/restart", restart_actor, "Restart an actor", "control", status=202,
             returns=shape(requested=str)),
    Endpoint("POST", f"{_A}/stop", stop_actor, "Stop an actor (waits)", "control",
             returns=shape(stopped=bool)),
    Endpoint("POST", f"{_A}/clear-failure", clear_actor_failure, "Forget a failure", "control",
             returns=shape(cleared=bool)),
    Endpoint("GET", "/control/statistics", get_statistics, "Runtime statistics", "control",
             returns=returns(Control.statistics)),
    Endpoint("POST", "/control/check", run_check, "Check the store", "control", body="json",
             returns=shape(clean=bool, blobs=Any, sessions=Any), fields={"fix": bool}),
    Endpoint("POST", "/control/gc", run_gc, "Collect garbage", "control",
             returns=returns(Control.gc)),
    Endpoint("GET", "/control/schedules", list_schedules, "Replay schedules", "control",
             ("session_id",), returns=returns(Control.schedules)),
    Endpoint("POST", "/control/schedules", add_schedule, "Schedule a replay", "control",
             body="json", status=201, returns=_ID, fields=fields_of(Replays.schedule, _SCHEDULE)),
    Endpoint("DELETE", "/control/schedules/{schedule_id}", cancel_schedule,
             "Cancel a schedule", "control", returns=shape(cancelled=bool)),
    Endpoint("GET", "/control/schedules/{schedule_id}/results", schedule_results,
             "Runs of a schedule", "control", returns=returns(Control.schedule_results)),
    Endpoint("GET", "/health", health, "Liveness (no token needed)", "service",
             returns=shape(status=str), needs_token=False),
    Endpoint("GET", "/metrics", metrics, "Prometheus metrics", "service",
             produces="text/plain"),
)  # fmt: skip
ENDPOINTS = (
    SESSION_ENDPOINTS + ADMIN_ENDPOINTS + EVENT_ENDPOINTS + CONTROL_ENDPOINTS + ARTIFACT_ENDPOINTS
)
