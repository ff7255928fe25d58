"""The inspector's session pages: the list, one session (record, variables, timeline,
artifacts, children), a point of its timeline (the state there, replay and fork)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from satchel._http import json_response
from satchel._ui import PREFIX, action, page, render, runtime_of, whole
from satchel.actors._model import SessionStatus
from satchel.runtime import _errors as errors

#: Sessions on a page of the list, and journal entries on a page of a timeline.
SESSIONS_PER_PAGE = 50
ENTRIES_PER_PAGE = 100
#: Ancestors shown above a session (its place in the tree).
ANCESTORS_SHOWN = 20
#: The sessions a text search reads for one page (it has no index: it reads names).
SEARCH_WINDOW = 20_000
#: The states a replay shows, up to its point.
STEPS_SHOWN = 50
#: Variables shown on a session's page (the rest are counted).
VARIABLES_SHOWN = 200
#: How much of a value a table cell shows.
_CELL = 300


def _int(request: Request, name: str, default: int, *, lowest: int = 0) -> int:
    raw = request.query_params.get(name, "")
    return default if not raw else max(lowest, whole(raw, name))


def shown(value: Any) -> str:
    """A value as compact JSON, cut to a cell's length."""
    text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"


@page
async def sessions(request: Request) -> Response:
    params = request.query_params
    filters: dict[str, Any] = {}
    status = params.get("status", "")
    if status:
        filters["status"] = status
    if params.get("tag"):
        filters["tags"] = [params["tag"]]
    if params.get("search"):
        filters["search"] = params["search"]
    if params.get("parent"):
        filters["parent_session_id"] = params["parent"]
    offset = _int(request, "offset", 0)
    window: dict[str, Any] = {}
    if "search" in filters:
        window = await _search_window(request, filters)
    earlier = window.pop("earlier", None)
    found = await runtime_of(request).sessions.list(
        **filters, **window, order_by="created_at", descending=True, offset=offset,
        limit=SESSIONS_PER_PAGE + 1,
    )  # fmt: skip
    query = {k: params.get(k, "") for k in ("status", "tag", "search", "parent")}
    if params.get("before"):
        query["before"] = params["before"]
    return render(
        request,
        "sessions.html",
        sessions=found[:SESSIONS_PER_PAGE],
        more=len(found) > SESSIONS_PER_PAGE,
        offset=offset,
        per_page=SESSIONS_PER_PAGE,
        statuses=[s.value for s in SessionStatus],
        query=query,
        earlier=earlier,
        window=SEARCH_WINDOW,
    )


async def _search_window(request: Request, filters: dict[str, Any]) -> dict[str, Any]:
    """The creation-time window a text search reads: the ``SEARCH_WINDOW`` newest sessions
    (matching the other filters) created before ``before``, and where the next window
    starts (``earlier``; ``None`` when this one reaches the oldest). A search reads its
    window, never every session."""
    before = request.query_params.get("before") or None
    others = {k: v for k, v in filters.items() if k != "search"}
    edge = await runtime_of(request).sessions.list(
        **others, created_before=before, order_by="created_at", descending=True,
        offset=SEARCH_WINDOW, limit=1,
    )  # fmt: skip
    window: dict[str, Any] = {"created_before": before}
    if edge:
        # created_after leaves the edge out, and the next window's created_before (one
        # microsecond on) takes it in: sessions made in the same microsecond are not lost.
        window["created_after"] = edge[0].created_at
        window["earlier"] = (edge[0].created_at + dt.timedelta(microseconds=1)).isoformat()
    return window


async def _timeline_page(request: Request, session_id: str, last: int) -> dict[str, Any]:
    """The timeline page asked for: ``from`` (default: the last page), filtered by kind."""
    start = _int(request, "from", max(1, last - ENTRIES_PER_PAGE + 1), lowest=1)
    entries = await runtime_of(request).sessions.timeline(
        session_id, offset=start - 1, limit=ENTRIES_PER_PAGE
    )
    kind = request.query_params.get("kind", "")
    return {
        "entries": [e for e in entries if not kind or e.kind == kind],
        "start": start,
        "kind": kind,
        "previous": max(1, start - ENTRIES_PER_PAGE) if start > 1 else None,
        "next": start + ENTRIES_PER_PAGE if start + ENTRIES_PER_PAGE <= last else None,
        "live": start + ENTRIES_PER_PAGE > last and not kind,
    }


@page
async def session(request: Request) -> Response:
    rt = runtime_of(request)
    session_id = request.path_params["session_id"]
    info = await rt.sessions.get(session_id)
    meta = await rt.sessions.replay_metadata(session_id)
    names = await rt.sessions.list_state(session_id)
    variables = {
        n: shown(await rt.sessions.get_state(session_id, n)) for n in names[:VARIABLES_SHOWN]
    }
    children = await rt.sessions.list(parent_session_id=session_id, limit=SESSIONS_PER_PAGE + 1)
    timeline = await _timeline_page(request, session_id, meta.total_events)
    return render(
        request,
        "session.html",
        info=info,
        ancestors=await _ancestors(rt, info),
        config=shown(_plain(info.config)),
        metadata=shown(info.metadata),
        variables=variables,
        hidden_variables=max(0, len(names) - VARIABLES_SHOWN),
        artifacts=await rt.artifacts.list(session_id),
        children=children[:SESSIONS_PER_PAGE],
        more_children=len(children) > SESSIONS_PER_PAGE,
        last=meta.total_events,
        shown=shown,
        **timeline,
    )


async def _ancestors(rt: Any, info: Any) -> list[Any]:
    """The session's parent, its parent's parent and so on, the root first (at most
    ``ANCESTORS_SHOWN``)."""
    found: list[Any] = []
    parent = info.parent_session_id
    while parent is not None and len(found) < ANCESTORS_SHOWN:
        try:
            record = await rt.sessions.get(parent)
        except errors.SessionNotFoundError:
            break  # deleted since: the chain ends there
        found.append(record)
        parent = record.parent_session_id
    return found[::-1]


def _capped(variables: dict[str, Any]) -> dict[str, str]:
    """The first ``VARIABLES_SHOWN`` variables, each as a cell shows it."""
    return {k: shown(v) for k, v in itertools.islice(variables.items(), VARIABLES_SHOWN)}


def _plain(record: Any) -> Any:
    import attrs

    return attrs.asdict(record) if attrs.has(type(record)) else record


@page
async def timeline_after(request: Request) -> Response:
    """The entries after ``after``, as JSON: the session page's live update."""
    session_id = request.path_params["session_id"]
    after = _int(request, "after", 0)
    entries = await runtime_of(request).sessions.timeline(
        session_id, offset=after, limit=ENTRIES_PER_PAGE
    )
    return json_response(
        [{"seq": e.seq, "at": e.at, "kind": e.kind, "data": shown(e.data)} for e in entries]
    )


@page
async def point(request: Request) -> Response:
    return await _point(request, debug=False)


@action
async def replay(request: Request) -> Response:
    """A debug replay up to the point: its steps, to step through."""
    return await _point(request, debug=True)


async def _point(request: Request, *, debug: bool) -> Response:
    """The state after an entry, with the steps of a debug replay up to it if asked."""
    rt = runtime_of(request)
    session_id = request.path_params["session_id"]
    seq = int(request.path_params["seq"])
    info = await rt.sessions.get(session_id)
    state = await rt.sessions.state_at(session_id, seq)
    result = None
    if debug:
        # The states of the last entries up to the point: stepping through all of a long
        # journal would cost a copy of every variable per entry.
        first = max(1, seq - STEPS_SHOWN + 1)
        result = await rt.sessions.replay(session_id, mode="debug", at=seq, steps_from=first)
    return render(
        request,
        "point.html",
        info=info,
        state=state,
        variables=_capped(state.variables),
        hidden_variables=max(0, len(state.variables) - VARIABLES_SHOWN),
        replay=result,
        steps=[] if result is None else [(s, _capped(s.variables)) for s in result.steps],
        shown=shown,
    )


@action
async def fork(request: Request) -> Response:
    rt = runtime_of(request)
    session_id = request.path_params["session_id"]
    seq = int(request.path_params["seq"])
    name = str(request.state.form.get("name", "")).strip() or None
    new_id = await rt.sessions.fork(session_id, at=seq, name=name)
    return RedirectResponse(f"{PREFIX}/sessions/{new_id}", status_code=303)


_S = "/sessions/{session_id}"
ROUTES = [
    Route("/", sessions, methods=["GET"]),
    Route(_S, session, methods=["GET"]),
    Route(f"{_S}/timeline.json", timeline_after, methods=["GET"]),
    Route(f"{_S}/at/{{seq:int}}", point, methods=["GET"]),
    Route(f"{_S}/at/{{seq:int}}/replay", replay, methods=["POST"]),
    Route(f"{_S}/at/{{seq:int}}/fork", fork, methods=["POST"]),
]
