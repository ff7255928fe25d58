"""HTTP: a session's event log."""

from __future__ import annotations

from .test_http import Server, kind, new_session, server  # noqa: F401 - the fixture


async def test_the_event_log_over_http(server: Server) -> None:  # noqa: F811
    """Append with a state delta, read the last events, pop and clear, over HTTP."""
    sid = await new_session(server, key="chat")
    answer = await server.http.post(
        f"/sessions/{sid}/events",
        json={"events": [{"n": 1}, {"n": 2}], "state": {"turns": 1}, "at": 1000},
    )
    assert (answer.status_code, answer.json()) == (201, {"position": 2})
    last = (await server.http.get("/sessions/chat/events", params={"last": 1})).json()
    assert [(e["position"], e["data"]) for e in last] == [(2, {"n": 2})]
    after = await server.http.get(f"/sessions/{sid}/events", params={"after": "999"})
    assert len(after.json()) == 2
    variables = (await server.http.get(f"/sessions/{sid}/state")).json()["variables"]
    assert variables == {"turns": 1}
    popped = (await server.http.delete(f"/sessions/{sid}/events/last")).json()["event"]
    assert popped["position"] == 2
    stale = await server.http.post(
        f"/sessions/{sid}/events", json={"events": [{}], "expect_position": 0}
    )
    assert kind(stale) == (409, "InvalidStateTransition")
    assert (await server.http.delete(f"/sessions/{sid}/events")).json() == {"cleared": 1}
    assert (await server.http.get(f"/sessions/{sid}/events")).json() == []
    assert kind(await server.http.post(f"/sessions/{sid}/events", json={"events": []}))[0] == 422


async def test_an_escaped_slash_names_no_resource(server: Server) -> None:  # noqa: F811
    """``x%2Fevents`` is refused rather than routed to session x's events."""
    await new_session(server, key="x")
    await server.http.post("/sessions/x/events", json={"events": [{"n": 1}]})
    for method in ("GET", "DELETE"):
        answer = await server.http.request(method, "/sessions/x%2Fevents")
        assert kind(answer) == (400, "BadRequest")
    assert len((await server.http.get("/sessions/x/events")).json()) == 1


async def test_an_append_expects_state_over_http(server: Server) -> None:  # noqa: F811
    """``expect_state`` is a field of the HTTP append, refused with 409 when a variable does
    not hold what it expects (it was refused as an unknown field)."""
    sid = await new_session(server)
    events = f"/sessions/{sid}/events"
    first = await server.http.post(events, json={"events": [{}], "state": {"token": "a"}})
    assert first.status_code == 201
    landed = await server.http.post(events, json={"events": [{}], "expect_state": {"token": "a"}})
    assert (landed.status_code, landed.json()) == (201, {"position": 2})
    stale = await server.http.post(events, json={"events": [{}], "expect_state": {"token": "b"}})
    assert kind(stale) == (409, "InvalidStateTransition")
    assert len((await server.http.get(events)).json()) == 2
