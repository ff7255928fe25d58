"""Live events across cluster nodes: a subscriber on one node sees the entries written on
another, once, and only those it follows."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from satchel import Node, open_runtime

pytestmark = pytest.mark.anyio


async def listening(rt: Any) -> None:
    """Wait until the node listens to the other nodes' events."""
    with anyio.fail_after(10):
        await rt._cluster.events.listening.wait()


async def test_a_subscriber_on_one_node_sees_entries_written_on_another(store_url: str) -> None:
    """Writes served by node a reach a subscriber of every session on node b, in order."""
    async with (
        open_runtime(store=store_url, node=Node("a")) as a,
        open_runtime(store=store_url, node=Node("b")) as b,
    ):
        await listening(b)
        session_id = await a.sessions.create()
        async with b.events.subscribe(kinds=["state_set"]) as feed:
            for i in range(5):
                await a.sessions.set_state(session_id, "k", i)
            with anyio.fail_after(10):
                seen = [await feed.__anext__() for _ in range(5)]
        assert [(e.session_id, e.data["value"]) for e in seen] == [
            (session_id, i) for i in range(5)
        ]
        assert [e.seq for e in seen] == sorted(e.seq for e in seen)


async def test_a_subscriber_sees_its_session_only_and_each_entry_once(store_url: str) -> None:
    """A subscriber to one session on node a gets that session's entries written on a and on
    b once each, and none of another session's."""
    async with (
        open_runtime(store=store_url, node=Node("a")) as a,
        open_runtime(store=store_url, node=Node("b")) as b,
    ):
        await listening(a)
        followed = await a.sessions.create()
        other = await a.sessions.create()
        async with a.events.subscribe(session_id=followed, kinds=["state_set"]) as feed:
            await a.sessions.set_state(followed, "k", "on a")
            await b.sessions.set_state(other, "k", "not followed")
            await a.control.stop(followed)  # b serves it next
            await b.sessions.set_state(followed, "k", "on b")
            with anyio.fail_after(10):
                seen = [await feed.__anext__() for _ in range(2)]
            with anyio.move_on_after(0.5):
                extra = await feed.__anext__()
                pytest.fail(f"an entry came twice or unasked: {extra}")
        assert [e.data["value"] for e in seen] == ["on a", "on b"]
