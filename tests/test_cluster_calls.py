"""A Python host embedded in a cluster node reaches every session through ``rt.session(id)``:
calls for a session another node serves run on that node."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

from satchel import (
    ArtifactNotFoundError,
    InvalidArgumentError,
    Node,
    SessionMovedError,
    SessionNotFoundError,
    open_runtime,
)
from satchel._serve import serve
from satchel._session_calls import decode_result, encode_result

from .ports import drop_table, networked_place

pytestmark = pytest.mark.anyio

TOKEN = "cluster-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def store_url() -> AsyncIterator[str]:
    """A PostgreSQL store URL naming a table of its own (dropped afterwards)."""
    store, _, table = networked_place()
    yield store
    await drop_table(table)


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
    async with open_runtime() as rt:
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
