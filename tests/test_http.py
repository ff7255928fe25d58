"""The HTTP API, over real HTTP: a hypercorn server on 127.0.0.1 and an httpx client."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from satchel import Runtime, ValidationError, open_runtime
from satchel._http_routes import ENDPOINTS
from satchel._serve import (
    SERVER_FILE,
    TOKEN_FILE,
    ServerInfo,
    find_server,
    load_token,
    process_started,
    serve,
)
from satchel.storage import BlobLimits, RocksStore

MISSING = "00000000-0000-4000-8000-000000000000"
LIMITS = BlobLimits(chunk_size=64 << 10, max_size=4 << 20)


class Server:
    """A runtime served on loopback, and a client holding its token."""

    def __init__(self, rt: Runtime, info: ServerInfo, client: httpx.AsyncClient) -> None:
        self.rt = rt
        self.info = info
        self.http = client


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """A server on a fresh data folder (4 MiB content limit, 64 KiB chunks)."""
    async with open_runtime(tmp_path / "data", limits=LIMITS) as rt, anyio.create_task_group() as n:
        info: ServerInfo = await n.start(serve, rt, "127.0.0.1", 0)
        headers = {"Authorization": f"Bearer {info.token}"}
        async with httpx.AsyncClient(base_url=info.url, headers=headers) as client:
            yield Server(rt, info, client)
        n.cancel_scope.cancel()


async def new_session(s: Server, **fields: object) -> str:
    """Create a session over HTTP; its id."""
    answer = await s.http.post("/sessions", json=fields)
    assert answer.status_code == 201, answer.text
    session_id: str = answer.json()["id"]
    return session_id


def kind(answer: httpx.Response) -> tuple[int, str]:
    """An error answer's status and kind."""
    return answer.status_code, answer.json()["error"]["kind"]


async def test_every_request_needs_the_token(server: Server, tmp_path: Path) -> None:
    """No token or a wrong one is 401; the token file is private and found with the server."""
    async with httpx.AsyncClient(base_url=server.info.url) as anonymous:
        assert kind(await anonymous.get("/sessions")) == (401, "Unauthorized")
        wrong = {"Authorization": "Bearer not-the-token"}
        assert kind(await anonymous.get("/openapi.json", headers=wrong)) == (401, "Unauthorized")
    assert (await server.http.get("/sessions")).status_code == 200
    folder = tmp_path / "data"
    assert stat.S_IMODE(os.stat(folder / TOKEN_FILE).st_mode) == 0o600
    assert find_server(folder) == ServerInfo(server.info.url, server.info.token, os.getpid())


def test_a_discovery_file_naming_a_reused_pid_is_stale(tmp_path: Path) -> None:
    """A discovery file whose pid now belongs to another process (the server died, the pid
    was reused) names no server; the same pid with its own start time still does."""
    load_token(tmp_path)
    mine = os.getpid()
    started = process_started(mine)
    assert started is not None
    (tmp_path / SERVER_FILE).write_text(
        json.dumps({"url": "http://127.0.0.1:1", "pid": mine, "started": str(int(started) - 1)})
    )
    assert find_server(tmp_path) is None
    (tmp_path / SERVER_FILE).write_text(
        json.dumps({"url": "http://127.0.0.1:1", "pid": mine, "started": started})
    )
    assert find_server(tmp_path) is not None


async def test_the_discovery_file_goes_when_the_server_stops(tmp_path: Path) -> None:
    """server.json exists while serving and is removed at shutdown; the token stays the same."""
    folder = tmp_path / "data"
    tokens = []
    for _ in range(2):
        async with open_runtime(folder) as rt, anyio.create_task_group() as nursery:
            info = await nursery.start(serve, rt, "127.0.0.1", 0)
            assert (folder / SERVER_FILE).exists()
            tokens.append(info.token)
            nursery.cancel_scope.cancel()
        assert not (folder / SERVER_FILE).exists() and find_server(folder) is None
    assert tokens[0] == tokens[1]


async def test_sessions_lifecycle_and_errors(server: Server) -> None:
    """Create, get, list, the lifecycle verbs, delete; each failure has its kind and status."""
    parent = await new_session(server, name="parent", tags=["a"])
    child = await new_session(server, name="child", parent_session_id=parent)
    got = (await server.http.get(f"/sessions/{child}")).json()
    assert got["parent_session_id"] == parent and got["status"] == "active"
    listed = (await server.http.get("/sessions", params={"tags": "a"})).json()
    assert [s["id"] for s in listed] == [parent]
    page = await server.http.get("/sessions", params={"order_by": "name", "limit": 1})
    assert [s["name"] for s in page.json()] == ["child"]
    assert (await server.http.post(f"/sessions/{child}/suspend")).json()["status"] == "suspended"
    assert kind(await server.http.post(f"/sessions/{child}/suspend")) == (
        409,
        "InvalidStateTransition",
    )
    failed = await server.http.post(f"/sessions/{child}/fail", json={"reason": "tool down"})
    assert failed.json()["failure_reason"] == "tool down"
    assert (await server.http.post(f"/sessions/{child}/archive")).json()["status"] == "archived"
    assert kind(await server.http.delete(f"/sessions/{parent}")) == (409, "SessionHasChildren")
    assert (await server.http.delete(f"/sessions/{parent}?cascade=true")).status_code == 204
    assert kind(await server.http.get(f"/sessions/{child}")) == (404, "SessionNotFound")
    assert kind(await server.http.get("/sessions/not-an-id")) == (404, "SessionNotFound")  # a key
    assert kind(await server.http.get("/no/such/route")) == (404, "NotFound")


async def test_bad_bodies_are_refused(server: Server) -> None:
    """Malformed JSON, a non-object body and unknown fields are refused; nothing is created."""
    bad = await server.http.post("/sessions", content=b"{not json")
    assert kind(bad) == (422, "InvalidArgument")
    assert kind(await server.http.post("/sessions", json=[1, 2])) == (422, "InvalidArgument")
    assert kind(await server.http.post("/sessions", json={"nmae": "typo"})) == (
        422,
        "InvalidArgument",
    )
    assert kind(await server.http.post("/sessions", json={"name": "x" * 1000})) == (
        422,
        "ValidationError",
    )
    assert (await server.http.get("/sessions")).json() == []


async def test_variables_timeline_replay_and_fork(server: Server) -> None:
    """Variables are set, read and deleted; the journal pages; replay and fork work."""
    sid = await new_session(server)
    for i in range(3):
        put = await server.http.put(f"/sessions/{sid}/state/step", json={"value": {"n": i}})
        assert put.status_code == 204
    assert (await server.http.get(f"/sessions/{sid}/state/step")).json()["value"] == {"n": 2}
    await server.http.put(f"/sessions/{sid}/state/gone", json={"value": True})
    assert (await server.http.delete(f"/sessions/{sid}/state/gone")).status_code == 204
    assert (await server.http.get(f"/sessions/{sid}/state")).json() == {
        "variables": {"step": {"n": 2}}
    }
    page = (await server.http.get(f"/sessions/{sid}/timeline?offset=1&limit=2")).json()
    assert [e["seq"] for e in page] == [2, 3]
    replay = await server.http.post(f"/sessions/{sid}/replay", json={"mode": "debug", "at": 3})
    assert replay.json()["state"] == {"step": {"n": 1}} and len(replay.json()["steps"]) == 3
    meta = (await server.http.get(f"/sessions/{sid}/replay")).json()
    assert meta["total_events"] == 6 and meta["can_replay"] is True
    fork = await server.http.post(f"/sessions/{sid}/fork", json={"at": 2, "name": "early"})
    forked = fork.json()["id"]
    assert (await server.http.get(f"/sessions/{forked}/state/step")).json()["value"] == {"n": 0}


async def test_artifacts_upload_and_download_streamed(server: Server) -> None:
    """A multi-chunk upload sent in pieces reads back byte for byte, with its metadata."""
    sid = await new_session(server)
    content = os.urandom(300_000)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 50_000):
            yield content[start : start + 50_000]

    stored = await server.http.put(
        f"/sessions/{sid}/artifacts/blob.bin",
        params={"type": "tool_result", "tags": ["x", "y"], "mime_type": "image/png"},
        headers={"X-Satchel-Metadata": json.dumps({"tool": {"name": "camera"}})},
        content=pieces(),
    )
    assert stored.status_code == 201, stored.text
    assert stored.json()["version"] == 1
    async with server.http.stream("GET", f"/sessions/{sid}/artifacts/blob.bin") as answer:
        assert answer.headers["content-type"] == "image/png"
        assert answer.headers["content-length"] == str(len(content))
        received = b"".join([chunk async for chunk in answer.aiter_bytes()])
    assert received == content
    meta = (await server.http.get(f"/sessions/{sid}/artifacts/blob.bin/metadata")).json()
    assert meta["tags"] == ["x", "y"] and meta["custom"] == {"tool": {"name": "camera"}}
    await server.http.put(f"/sessions/{sid}/artifacts/blob.bin", content=b"second")
    versions = (await server.http.get(f"/sessions/{sid}/artifacts/blob.bin/versions")).json()
    assert [v["version"] for v in versions] == [1, 2]
    first = await server.http.get(f"/sessions/{sid}/artifacts/blob.bin?version=1")
    assert first.content == content
    found = await server.http.post(
        "/artifacts/query", json={"session_id": sid, "tags": ["x"], "all_versions": True}
    )
    assert [(a["name"], a["version"]) for a in found.json()] == [("blob.bin", 1)]
    deleted = await server.http.delete(f"/sessions/{sid}/artifacts/blob.bin?version=1")
    assert deleted.status_code == 204
    listed = (await server.http.get(f"/sessions/{sid}/artifacts")).json()
    assert [(a["name"], a["version"]) for a in listed] == [("blob.bin", 2)]
    assert (await server.http.delete(f"/sessions/{sid}/artifacts/blob.bin")).status_code == 204
    missing = await server.http.get(f"/sessions/{sid}/artifacts/blob.bin")
    assert kind(missing) == (404, "ArtifactNotFound")


async def test_oversize_uploads_are_413_and_store_nothing(server: Server) -> None:
    """Content over the limit is refused with 413, declared or streamed, and nothing is kept."""
    sid = await new_session(server)
    url = f"/sessions/{sid}/artifacts/big.bin"
    over = b"x" * ((4 << 20) + (100 << 10))
    assert kind(await server.http.put(url, content=over)) == (413, "ValidationError")

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(80):
            yield b"y" * (64 << 10)

    assert kind(await server.http.put(url, content=endless())) == (413, "ValidationError")
    assert (await server.http.get(f"/sessions/{sid}/artifacts")).json() == []
    assert (await server.rt.control.check()).clean


async def test_acting_sessions_need_grants(server: Server) -> None:
    """A request acting as another session is refused until shared, then audited."""
    owner, reader = await new_session(server), await new_session(server)
    await server.http.put(f"/sessions/{owner}/artifacts/notes.txt", content=b"private")
    as_reader = {"X-Satchel-Session": reader}
    url = f"/sessions/{owner}/artifacts/notes.txt"
    assert kind(await server.http.get(url, headers=as_reader)) == (403, "AccessDenied")
    shared = await server.http.post(f"{url}/share", json={"target": reader, "permission": "read"})
    assert shared.status_code == 204
    assert (await server.http.get(url, headers=as_reader)).content == b"private"
    audit = (await server.http.get(f"{url}/audit")).json()
    assert [(e["session_id"], e["granted"]) for e in audit][-1] == (reader, True)
    await server.http.post(f"{url}/revoke", json={"target": reader})
    assert kind(await server.http.get(url, headers=as_reader)) == (403, "AccessDenied")


async def test_control_endpoints(server: Server) -> None:
    """Actors are listed, inspected, stopped and restarted; statistics, check, gc answer."""
    sid = await new_session(server)
    await server.http.put(f"/sessions/{sid}/state/k", json={"value": 1})
    actors = (await server.http.get("/control/actors", params={"kind": "session"})).json()
    assert [a["id"] for a in actors] == [sid]
    inspected = (await server.http.get(f"/control/actors/session/{sid}")).json()
    assert inspected["actor"]["state"] == "running" and inspected["session"]["id"] == sid
    assert (await server.http.post(f"/control/actors/session/{sid}/restart")).status_code == 202
    assert (await server.http.post(f"/control/actors/session/{sid}/stop")).json() == {
        "stopped": True
    }
    assert (await server.http.get(f"/control/actors/session/{sid}")).json()["actor"] is None
    not_live = await server.http.post(f"/control/actors/session/{sid}/passivate")
    assert kind(not_live) == (404, "ActorNotFound")
    stats = (await server.http.get("/control/statistics")).json()
    assert stats["backend"] == "rocksdb" and "supervisor" in stats
    assert (await server.http.post("/control/check", json={"fix": False})).json()["clean"]
    assert (await server.http.post("/control/gc")).json()["compacted"] is True


async def test_a_replay_interval_under_the_floor_is_refused(server: Server) -> None:
    """A schedule repeating faster than the runtime allows is refused with 422."""
    sid = (await server.http.post("/sessions", json={})).json()["id"]
    answer = await server.http.post("/control/schedules", json={"session_id": sid, "every_s": 1e-9})
    assert kind(answer) == (422, "ValidationError")


async def test_replay_schedules(server: Server) -> None:
    """A replay schedule is added, listed, and cancelled over HTTP."""
    sid = await new_session(server)
    added = await server.http.post(
        "/control/schedules", json={"session_id": sid, "every_s": 60, "when": 4_000_000_000}
    )
    schedule = added.json()["id"]
    listed = (await server.http.get("/control/schedules", params={"session_id": sid})).json()
    assert [s["id"] for s in listed] == [schedule]
    assert (await server.http.get(f"/control/schedules/{schedule}/results")).json() == []
    assert (await server.http.delete(f"/control/schedules/{schedule}")).json() == {
        "cancelled": True
    }
    assert (await server.http.get("/control/schedules")).json() == []


async def test_export_then_import_round_trips(server: Server) -> None:
    """A session exported over HTTP, deleted, and imported again is the same session."""
    sid = await new_session(server, name="kept", tags=["t"])
    await server.http.put(f"/sessions/{sid}/state/k", json={"value": [1, 2]})
    await server.http.put(f"/sessions/{sid}/artifacts/a.bin", content=os.urandom(200_000))
    before = {
        path: (await server.http.get(f"/sessions/{sid}{path}")).content
        for path in ("", "/timeline", "/state", "/artifacts", "/artifacts/a.bin")
    }
    archive = (await server.http.get(f"/sessions/{sid}/export")).content
    assert (await server.http.delete(f"/sessions/{sid}")).status_code == 204
    truncated = await server.http.post("/import", content=archive[:5000])
    assert kind(truncated) == (422, "ValidationError")
    assert kind(await server.http.get(f"/sessions/{sid}")) == (404, "SessionNotFound")
    imported = await server.http.post("/import", content=archive)
    assert imported.status_code == 201, imported.text
    assert imported.json()["session_id"] == sid
    for path, content in before.items():
        assert (await server.http.get(f"/sessions/{sid}{path}")).content == content, path
    again = await server.http.post("/import", content=archive)
    assert kind(again) == (409, "SessionExists")


async def test_lua_over_http(server: Server) -> None:
    """A script posted to /lua runs as a host script; its results and output come back."""
    answer = await server.http.post(
        "/lua",
        json={
            "source": "print('hi', ARGS[1]) return Session.create({name = 'lua'})",
            "args": ["there"],
        },
    )
    body = answer.json()
    assert body["output"] == ["hi\tthere"]
    assert (await server.http.get(f"/sessions/{body['results'][0]}")).json()["name"] == "lua"
    failed = await server.http.post("/lua", json={"source": "error('boom')"})
    assert kind(failed) == (422, "ScriptError")


async def test_a_script_over_http_cannot_take_the_server_down(server: Server) -> None:
    """A posted script that panics Lua or prints without end costs only its worker: the
    run fails with its kind and the server keeps answering."""
    panic = (
        "Session.setCurrent(Session.create()) "
        'Artifact.store(nil, "tool_result", "big", string.rep("y", 3 << 20)) '
        'collectgarbage() local filler = string.rep("x", 62 << 20) '
        'pcall(Artifact.get, nil, "big")'
    )
    assert kind(await server.http.post("/lua", json={"source": panic})) == (422, "ScriptError")
    flood = 'local s = string.rep("p", 8 << 20) for i = 1, 200 do print(s) end'
    answer = await server.http.post("/lua", json={"source": flood})
    assert answer.json()["error"]["kind"] == "ScriptLimitExceeded"
    assert len(answer.content) < 10_000
    assert (await server.http.post("/lua", json={"source": "return 1"})).json()["results"] == [1]


async def test_openapi_lists_every_endpoint(server: Server) -> None:
    """The OpenAPI document names every method and path the app serves."""
    document = (await server.http.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    served = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert served == {(ep.method.lower(), ep.path) for ep in ENDPOINTS}


async def test_remaining_lifecycle_and_control_verbs(server: Server) -> None:
    """resume, complete, save, load and clear-failure answer as the API says."""
    sid = await new_session(server)
    await server.http.post(f"/sessions/{sid}/suspend")
    assert (await server.http.post(f"/sessions/{sid}/resume")).json()["status"] == "active"
    assert (await server.http.post(f"/sessions/{sid}/save")).json()["id"] == sid
    assert (await server.http.post(f"/sessions/{sid}/load")).json()["status"] == "active"
    assert (await server.http.post(f"/sessions/{sid}/complete")).json()["status"] == "completed"
    put = await server.http.put(f"/sessions/{sid}/state/k", json={"value": 1})
    assert kind(put) == (409, "SessionNotActive")
    not_failed = await server.http.post(f"/control/actors/session/{sid}/clear-failure")
    assert kind(not_failed) == (404, "ActorNotFound")
    assert kind(await server.http.post(f"/sessions/{MISSING}/load")) == (404, "SessionNotFound")


async def test_rate_limited_is_429(server: Server) -> None:
    """A session over its rate limit answers 429 RateLimited, and the write is not kept."""
    sid = await new_session(server, config={"rate_limit": 0.001, "rate_burst": 1})
    assert (await server.http.put(f"/sessions/{sid}/state/a", json={"value": 1})).status_code == 204
    second = await server.http.put(f"/sessions/{sid}/state/b", json={"value": 2})
    assert kind(second) == (429, "RateLimited")
    entries = await server.rt.sessions.timeline(sid)
    assert [e.data.get("key") for e in entries if e.kind == "state_set"] == ["a"]


async def test_an_unexpected_error_does_not_tell_its_message(
    server: Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A failure satchel did not foresee answers 500 with its type only; the message, which
    may hold anything, goes to the server's log."""

    async def broken(session_id: str) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(server.rt.sessions, "get", broken)
    answer = await server.http.get(f"/sessions/{await new_session(server)}")
    assert kind(answer) == (500, "InternalError")
    assert "secret" not in answer.text and "RuntimeError" in answer.text
    assert any("secret detail" in (r.exc_text or "") for r in caplog.records)


def test_a_short_kept_token_is_refused(tmp_path: Path) -> None:
    """A token file left empty (or short) is refused rather than served as the token."""
    (tmp_path / "http-token").write_text("\n")
    with pytest.raises(ValidationError, match="at least"):
        load_token(tmp_path)
    (tmp_path / "http-token").unlink()
    assert len(load_token(tmp_path)) >= 32 and load_token(tmp_path) == load_token(tmp_path)


def test_a_new_data_folder_is_its_owners_only(tmp_path: Path) -> None:
    """The folder a store makes for its data is readable by its owner only."""
    RocksStore(tmp_path / "new").close()
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700


async def test_the_server_listens_once_started(tmp_path: Path) -> None:
    """A client that connects as soon as ``start`` returns is accepted (on asyncio the
    socket listened only after the app's startup, so such a client was refused)."""
    async with open_runtime(tmp_path / "data") as rt, anyio.create_task_group() as tasks:
        info: ServerInfo = await tasks.start(serve, rt, "127.0.0.1", 0)
        address = httpx.URL(info.url)
        stream = await anyio.connect_tcp(address.host, address.port or 80)
        await stream.aclose()
        tasks.cancel_scope.cancel()
