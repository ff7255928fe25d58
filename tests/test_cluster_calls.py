"""A Python host embedded in a cluster node reaches every session through ``rt.session(id)``:
calls for a session another node serves run on that node."""

from __future__ import annotations

import datetime as dt
import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

from satchel import (
    ArtifactNotFoundError,
    ContentTooLargeError,
    InvalidArgumentError,
    Node,
    ReplayProgress,
    SessionMovedError,
    SessionNotFoundError,
    ValidationError,
    open_runtime,
)
from satchel._serve import serve
from satchel._session_calls import decode_result, encode_result, error_of
from satchel.actors.sessions._handle import AT_OWNER, RoutedSessionHandle, SessionHandle

pytestmark = pytest.mark.anyio

TOKEN = "cluster-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@asynccontextmanager
async def node(store_url: str, name: str, token: str | None = TOKEN) -> AsyncIterator[Any]:
    """A runtime as node ``name`` (with ``token``), served over HTTP on a free port."""
    async with (
        open_runtime(store=store_url, node=Node(name, token=token)) as rt,
        anyio.create_task_group() as tasks,
    ):
        rt.http_url = (
            await tasks.start(
                lambda task_status: serve(
                    rt, "127.0.0.1", 0, token=TOKEN, log_level=None, task_status=task_status
                )
            )
        ).url
        try:
            yield rt
        finally:
            tasks.cancel_scope.cancel()


async def chunks(*pieces: bytes) -> AsyncIterator[bytes]:
    """``pieces``, one at a time."""
    for piece in pieces:
        await anyio.lowlevel.checkpoint()
        yield piece


async def test_a_handle_off_a_cluster_calls_its_methods_with_no_routing_around_them(
    tmp_path: Path,
) -> None:
    """A runtime that is no cluster node gives plain handles, whose methods are the local
    implementations themselves (no routing coroutine per call), and they work."""
    async with open_runtime(tmp_path / "data") as rt:
        handle = rt.session(await rt.sessions.create())
        assert type(handle) is SessionHandle
        for name, method in AT_OWNER.items():
            assert getattr(SessionHandle, name) is method, name
            assert getattr(RoutedSessionHandle, name) is not method, name
        await handle.set_state("k", 1)
        assert await handle.get_state("k") == 1


async def test_a_handle_on_another_nodes_session_runs_its_calls_there(store_url: str) -> None:
    """Every call of a handle on b for a session a serves runs on a (the session stays
    live on a only) and answers what a's own handle answers."""
    async with node(store_url, "a") as a, node(store_url, "b") as b:
        session_id = await a.sessions.create(name="held by a", tags=["t"])
        here, there = a.session(session_id), b.session(session_id)
        await here.set_state("k", {"n": 1})
        await there.set_state("k", {"n": 2, "list": [1, "x", None]})
        assert await there.get_state("k") == {"n": 2, "list": [1, "x", None]}
        assert await here.get_state("k") == {"n": 2, "list": [1, "x", None]}
        assert await there.list_state() == ["k"]
        ref = await there.store_artifact(
            "notes.md", b"# one", type="user_input", metadata={"tags": ["a"], "x": 1}
        )
        streamed = await there.store_artifact(
            "big.bin", chunks(b"a" * 70_000, b"b" * 70_000), type="tool_output"
        )
        got = await there.get_artifact("notes.md")
        assert got.content == b"# one" and got.metadata.id == ref.id
        assert b"".join([c async for c in there.stream_artifact(streamed)]) == (
            b"a" * 70_000 + b"b" * 70_000
        )
        assert await there.artifact_info(ref) == await here.artifact_info(ref)
        assert await there.list_artifacts() == await here.list_artifacts()
        assert await there.artifact_versions("notes.md") == await here.artifact_versions("notes.md")
        assert await there.query_artifacts(name_pattern="notes*") == await here.query_artifacts(
            name_pattern="notes*"
        )
        assert await there.info() == await here.info()
        assert await there.timeline() == await here.timeline()
        assert await there.state_at() == await here.state_at()
        assert await there.replay_metadata() == await here.replay_metadata()
        fork_id = await there.fork(name="forked")
        assert await a.session(fork_id).get_state("k") == {"n": 2, "list": [1, "x", None]}
        assert await there.delete_artifact("notes.md") == 1
        await there.suspend()
        assert (await here.info()).status.value == "suspended"
        assert a.supervisor.is_live("session", session_id)
        assert not b.supervisor.is_live("session", session_id)


async def test_errors_of_a_call_run_elsewhere_keep_their_class(store_url: str) -> None:
    """A call that fails on the serving node raises the same error class here, and a bad
    argument is refused before anything is written."""
    async with node(store_url, "a") as a, node(store_url, "b") as b:
        session_id = await a.sessions.create()
        await a.session(session_id).set_state("k", 1)
        there = b.session(session_id)
        with pytest.raises(ArtifactNotFoundError):
            await there.get_artifact("missing.txt")
        with pytest.raises(InvalidArgumentError):
            await there.set_state("k", {1, 2})  # a set is not JSON
        assert await there.get_state("k") == 1


async def test_a_session_no_node_serves_is_served_by_the_caller(store_url: str) -> None:
    """Once the serving node has shut down, a handle on another node serves the session
    itself, with what was written before."""
    async with node(store_url, "b") as b:
        async with node(store_url, "a") as a:
            session_id = await a.sessions.create()
            await a.session(session_id).set_state("k", "written through a")
            await b.session(session_id).set_state("k", "written through b")
            assert a.supervisor.is_live("session", session_id)
        assert await b.session(session_id).get_state("k") == "written through b"
        assert b.supervisor.is_live("session", session_id)


async def test_a_node_without_the_token_cannot_ask_another(store_url: str) -> None:
    """A node opened without the cluster's token gets SessionMovedError for a session
    another node serves, and nothing is written."""
    async with node(store_url, "a") as a, node(store_url, "b", token=None) as b:
        session_id = await a.sessions.create()
        await a.session(session_id).set_state("k", 1)
        with pytest.raises(SessionMovedError, match="token"):
            await b.session(session_id).set_state("k", 2)
        assert await a.session(session_id).get_state("k") == 1


async def test_an_unknown_session_raises_not_found_through_another_node(
    store_url: str,
) -> None:
    """A missing session is not found, wherever the handle is."""
    async with node(store_url, "a"), node(store_url, "b") as b:
        with pytest.raises(SessionNotFoundError):
            await b.session("no-such-session").info()


async def test_the_calls_route_refuses_what_is_not_a_handle_call(store_url: str) -> None:
    """The route takes only a handle's methods, with their arguments, and a content of the
    length it says."""
    async with node(store_url, "a") as a, httpx.AsyncClient(headers=AUTH) as client:
        session_id = await a.sessions.create()
        base = f"{a.http_url}/sessions/{session_id}/calls"

        async def call(method: str, arguments: Any, tail: bytes = b"") -> httpx.Response:
            head = json.dumps({"arguments": arguments, "content_length": len(tail) or None})
            return await client.post(f"{base}/{method}", content=head.encode() + b"\n" + tail)

        assert (await call("_ref", {})).status_code == 422
        assert (await call("__init__", {})).status_code == 422
        assert (await call("set_state", {"key": "k", "nope": 1})).status_code == 422
        assert (await call("get_state", {"key": 5})).status_code == 422
        stored = await call("store_artifact", {"name": "x.txt", "type": "user_input"}, b"abc")
        assert stored.status_code == 200, stored.text
        head = json.dumps({"arguments": {"name": "y.txt", "type": "t"}, "content_length": 9})
        short = await client.post(f"{base}/store_artifact", content=head.encode() + b"\nabc")
        assert short.status_code == 422
        assert [i.name for i in await a.session(session_id).list_artifacts()] == ["x.txt"]
        no_token = await httpx.AsyncClient().post(f"{base}/get_state", content=b"{}\n")
        assert no_token.status_code == 401


async def test_every_answer_comes_back_as_the_record_it_was() -> None:
    """The answer of each call, encoded and decoded, equals the record the call returned."""
    async with open_runtime(store="memory") as rt:
        session_id = await rt.sessions.create(name="n", tags=["a", "b"])
        handle = rt.session(session_id)
        await handle.set_state("k", {"a": [1.5, None]})
        ref = await handle.store_artifact("f.txt", b"hi", type="user_input")
        answers: dict[str, Any] = {
            "info": await handle.info(),
            "timeline": await handle.timeline(),
            "store_artifact": ref,
            "get_artifact": await handle.get_artifact(ref),
            "list_artifacts": await handle.list_artifacts(),
            "artifact_audit_log": await handle.artifact_audit_log("f.txt"),
            "state_at": await handle.state_at(),
            "replay": await handle.replay(),
            "replay_metadata": await handle.replay_metadata(),
            "get_state": await handle.get_state("k"),
            "delete_artifact": 1,
            "revoke_artifact": False,
        }
        for method, answer in answers.items():
            assert decode_result(method, encode_result(method, answer)) == answer, method


async def test_a_value_is_refused_or_taken_alike_wherever_the_session_is(store_url: str) -> None:
    """A value the serving node would refuse is refused before it is sent, with the error
    the serving node would raise; times and the file read here go as they would locally."""
    async with node(store_url, "a") as a, node(store_url, "b") as b:
        session_id = await a.sessions.create()
        here, there = a.session(session_id), b.session(session_id)
        await here.set_state("k", 1)
        for bad in ({1: "x"}, OrderedDict(a=1), "\ud800"):
            with pytest.raises((InvalidArgumentError, ValidationError)) as local:
                await here.set_state("k", bad)
            with pytest.raises(type(local.value)):
                await there.set_state("k", bad)
        assert await there.get_state("k") == 1
        with pytest.raises(InvalidArgumentError):
            await there.replay(progress=ReplayProgress())
        await there.store_artifact("a.txt", b"x", type="user_input")
        earlier = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        assert [i.name for i in await there.query_artifacts(created_after=earlier)] == ["a.txt"]


async def test_a_stream_left_early_is_closed_on_either_node(store_url: str) -> None:
    """A stream of a session served elsewhere, or here, can be left after its first piece;
    the node's connections are still good after."""
    async with node(store_url, "a") as a, node(store_url, "b") as b:
        served_by_a = await a.sessions.create()
        await a.session(served_by_a).store_artifact("big", b"z" * 3_000_000, type="t")
        served_by_b = await b.sessions.create()
        await b.session(served_by_b).store_artifact("big", b"y" * 3_000_000, type="t")
        for session_id in (served_by_a, served_by_b):
            chunks = b.session(session_id).stream_artifact("big")
            assert (await anext(chunks))[:1] in (b"z", b"y")
            await chunks.aclose()  # type: ignore[attr-defined]
        assert (await b.session(served_by_a).artifact_info("big")).size == 3_000_000


async def test_a_file_stored_through_another_node_is_read_here(
    store_url: str, tmp_path: Any
) -> None:
    """store_file reads the file on the calling node and stores it where the session is."""
    (tmp_path / "notes.txt").write_bytes(b"from b's disk")
    async with node(store_url, "a") as a:
        async with open_runtime(
            store=store_url, node=Node("b", token=TOKEN), file_roots=[tmp_path]
        ) as b:
            session_id = await a.sessions.create()
            await a.session(session_id).set_state("k", 1)
            await b.session(session_id).store_file(tmp_path / "notes.txt", type="user_input")
        assert (await a.session(session_id).get_artifact("notes.txt")).content == b"from b's disk"


async def test_the_calls_route_answers_422_or_413_not_500(store_url: str) -> None:
    """A replay option of the wrong shape is refused with 422, and a first line over the
    JSON limit with 413, however the body comes in pieces."""
    async with (
        open_runtime(store=store_url, node=Node("a", token=TOKEN)) as a,
        anyio.create_task_group() as tasks,
        httpx.AsyncClient(headers=AUTH) as client,
    ):
        url = (
            await tasks.start(
                lambda task_status: serve(
                    a,
                    "127.0.0.1",
                    0,
                    token=TOKEN,
                    log_level=None,
                    max_json_bytes=1000,
                    task_status=task_status,
                )
            )
        ).url
        session_id = await a.sessions.create()
        base = f"{url}/sessions/{session_id}/calls"
        bad = json.dumps({"arguments": {"config": {"progress": 1}}}).encode() + b"\n"
        assert (await client.post(f"{base}/replay", content=bad)).status_code == 422
        head = json.dumps({"arguments": {"key": "k" * 5000}}).encode() + b"\n"
        assert (await client.post(f"{base}/get_state", content=head)).status_code == 413
        tasks.cancel_scope.cancel()


def test_an_error_answer_is_raised_as_its_class() -> None:
    """Of the classes sharing a kind, the one answered with the status comes back."""
    body = json.dumps({"error": {"kind": "ValidationError", "message": "m"}}).encode()
    assert type(error_of(body, 413)) is ContentTooLargeError
    assert type(error_of(body, 422)) is ValidationError
    moved = json.dumps({"error": {"kind": "SessionMoved", "message": "m"}}).encode()
    assert type(error_of(moved, 503)) is SessionMovedError


async def test_a_connection_the_node_closed_is_not_used_again() -> None:
    """A kept connection whose other end has closed is seen as closed before a request
    goes on it (the request would be taken as sent)."""
    from satchel._http_peers import _Connection

    closed = anyio.Event()

    async def close_at_once(stream: Any) -> None:
        await stream.aclose()
        closed.set()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, close_at_once)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        stream = await anyio.connect_tcp("127.0.0.1", port)
        connection = _Connection(stream, b"node")
        await closed.wait()
        for _ in range(500):  # the close reaches this end at once, give or take a loop round
            if connection.closed():
                break
            await anyio.sleep(0.01)
        assert connection.stale(anyio.current_time())
        await connection.aclose()
        tasks.cancel_scope.cancel()
