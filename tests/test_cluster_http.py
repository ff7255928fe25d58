"""Cluster nodes over HTTP: a request for a session reaches the node serving it, whichever
node the client asked."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

from satchel import HookResult, Node, open_runtime
from satchel._serve import serve

pytestmark = pytest.mark.anyio

TOKEN = "cluster-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@asynccontextmanager
async def node(
    store_url: str, name: str, lease_ttl_s: float = 10.0
) -> AsyncIterator[tuple[Any, str]]:
    """A runtime as node ``name``, served over HTTP on a free port: it and its URL."""
    async with (
        open_runtime(store=store_url, node=Node(name, lease_ttl_s=lease_ttl_s)) as rt,
        anyio.create_task_group() as tasks,
    ):
        info = await tasks.start(
            lambda task_status: serve(
                rt, "127.0.0.1", 0, token=TOKEN, log_level=None, task_status=task_status
            )
        )
        try:
            yield rt, info.url
        finally:
            tasks.cancel_scope.cancel()


async def test_a_request_to_any_node_reaches_the_sessions_node(store_url: str) -> None:
    """State written through node a is read, written and listed through node b, which
    forwards to a (the session stays on a)."""
    async with (
        node(store_url, "a") as (a, url_a),
        node(store_url, "b") as (b, url_b),
        httpx.AsyncClient(headers=AUTH) as client,
    ):
        made = await client.post(f"{url_a}/sessions", json={})
        assert made.status_code == 201, made.text
        session_id = made.json()["id"]
        put = await client.put(f"{url_a}/sessions/{session_id}/state/k", json={"value": 1})
        assert put.status_code == 204, put.text
        put = await client.put(f"{url_b}/sessions/{session_id}/state/k", json={"value": 2})
        assert put.status_code == 204, put.text
        got = await client.get(f"{url_b}/sessions/{session_id}/state/k")
        assert got.status_code == 200 and got.json()["value"] == 2, got.text
        assert a.supervisor.is_live("session", session_id)
        assert not b.supervisor.is_live("session", session_id)


async def test_the_sessions_of_a_stopped_node_are_served_by_another(store_url: str) -> None:
    """Once node a has shut down, node b serves a's sessions itself."""
    async with node(store_url, "b") as (b, url_b), httpx.AsyncClient(headers=AUTH) as client:
        async with node(store_url, "a") as (_, url_a):
            session_id = (await client.post(f"{url_a}/sessions", json={})).json()["id"]
            await client.put(f"{url_a}/sessions/{session_id}/state/k", json={"value": "a"})
        got = await client.get(f"{url_b}/sessions/{session_id}/state/k")
        assert got.status_code == 200 and got.json()["value"] == "a", got.text
        assert b.supervisor.is_live("session", session_id)


async def test_an_owner_that_does_not_answer_gives_session_moved(store_url: str) -> None:
    """A session whose node holds its lease but does not answer is refused with 503
    SessionMoved (the client asks again), not served twice."""
    async with (
        node(store_url, "b") as (_, url_b),
        httpx.AsyncClient(headers=AUTH) as client,
        open_runtime(store=store_url, node=Node("a", "http://127.0.0.1:9")) as a,
    ):
        session_id = await a.sessions.create()
        await a.sessions.set_state(session_id, "k", 1)
        got = await client.get(f"{url_b}/sessions/{session_id}/state/k")
        assert got.status_code == 503, got.text
        assert got.json()["error"]["kind"] == "SessionMoved"


async def test_each_node_reports_itself_and_the_live_nodes(store_url: str) -> None:
    """GET /control/cluster on a node names it, counts the sessions it serves, and lists both
    nodes with their addresses."""
    async with (
        node(store_url, "a") as (a, url_a),
        node(store_url, "b") as (_, url_b),
        httpx.AsyncClient(headers=AUTH) as client,
    ):
        session_id = await a.sessions.create()
        await a.sessions.set_state(session_id, "k", 1)
        got = await client.get(f"{url_a}/control/cluster")
        assert got.status_code == 200, got.text
        status = got.json()
        assert (status["node"], status["address"], status["sessions_served"]) == ("a", url_a, 1)
        assert [(n["node"], n["address"]) for n in status["nodes"]] == [("a", url_a), ("b", url_b)]


async def test_a_streamed_upload_and_download_pass_through_another_node(store_url: str) -> None:
    """A chunked 3 MiB artifact upload sent to node b for a session a serves is stored by a,
    and downloads whole through b."""
    content = os.urandom(3 << 20)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 256 * 1024):
            yield content[start : start + 256 * 1024]

    async with (
        node(store_url, "a") as (a, _),
        node(store_url, "b") as (_, url_b),
        httpx.AsyncClient(headers=AUTH, timeout=60) as client,
    ):
        session_id = await a.sessions.create()
        await a.sessions.set_state(session_id, "k", 1)
        put = await client.put(f"{url_b}/sessions/{session_id}/artifacts/blob", content=pieces())
        assert put.status_code == 201, put.text
        got = await client.get(f"{url_b}/sessions/{session_id}/artifacts/blob")
        assert got.status_code == 200, got.text
        assert got.content == content
        assert a.supervisor.is_live("session", session_id)


async def test_an_owner_slower_than_a_lease_still_answers_through_a_forward(
    store_url: str,
) -> None:
    """A write the owning node takes 1.5 s over (a slow hook; leases of 1 s) answers 204
    through another node, once: a node that has the whole request is waited for."""
    async with (
        node(store_url, "a", lease_ttl_s=1.0) as (a, _),
        node(store_url, "b", lease_ttl_s=1.0) as (_, url_b),
        httpx.AsyncClient(headers=AUTH, timeout=30) as client,
    ):

        async def slow(context: Any) -> HookResult:
            await anyio.sleep(1.5)
            return HookResult.proceed()

        a.hooks.register("state_changed", slow, deadline_s=5)
        session_id = await a.sessions.create()
        await a.sessions.set_state(session_id, "k", 0)
        put = await client.put(f"{url_b}/sessions/{session_id}/state/k", json={"value": 1})
        assert put.status_code == 204, put.text
        timeline = await a.sessions.timeline(session_id)
        assert [e.kind for e in timeline].count("state_set") == 2


async def test_a_session_named_by_its_key_is_found_again_after_it_moved(store_url: str) -> None:
    """Node b forwards a keyed session's requests to a; once c serves it, b's next request
    after one SessionMoved answer reaches c (b forgot where it was, by the session's id)."""
    async with (
        node(store_url, "a", lease_ttl_s=30) as (a, _),
        node(store_url, "b", lease_ttl_s=30) as (_, url_b),
        node(store_url, "c", lease_ttl_s=30) as (c, _),
        httpx.AsyncClient(headers=AUTH) as client,
    ):
        await a.sessions.create(key="the-key")
        await a.sessions.set_state("the-key", "k", 1)
        got = await client.get(f"{url_b}/sessions/the-key/state/k")
        assert got.status_code == 200, got.text
        session_id = (await a.sessions.get("the-key")).id
        await a.control.stop(session_id)
        await c.sessions.set_state("the-key", "k", 2)
        codes = [(await client.get(f"{url_b}/sessions/the-key/state/k")).status_code for _ in "..."]
        assert codes[1:] == [200, 200], codes


async def test_more_forwarded_writes_than_a_connection_serves_all_land(store_url: str) -> None:
    """1,100 writes with bodies forwarded one after another all answer 204 (the server
    closes a kept connection after 1,000 requests: the forwarding node retires it first)."""
    async with (
        node(store_url, "a") as (a, _),
        node(store_url, "b") as (_, url_b),
        httpx.AsyncClient(headers=AUTH) as client,
    ):
        session_id = await a.sessions.create()
        await a.sessions.set_state(session_id, "k", 0)
        codes = set()
        for i in range(1100):
            put = await client.put(f"{url_b}/sessions/{session_id}/state/k", json={"value": i})
            codes.add(put.status_code)
        assert codes == {204}
        assert await a.sessions.get_state(session_id, "k") == 1099
