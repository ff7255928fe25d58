"""Runtimes as nodes of a cluster on one PostgreSQL store: a session is served by one node at
a time, and a node that lost its lease has its writes refused and its actor stopped."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import anyio
import pytest

from satchel import (
    ActorNotFoundError,
    Node,
    SessionMovedError,
    SessionNotFoundError,
    StoreLockedError,
    ValidationError,
    open_runtime,
)
from satchel.actors.cluster import SessionPlacement
from satchel.actors.sessions import _session_layout as layout
from satchel.storage import Batch
from satchel.storage._keys import FENCE

pytestmark = pytest.mark.anyio


def placement_of(rt: Any) -> SessionPlacement:
    """The runtime's placement of sessions."""
    placement = rt.supervisor.placement
    assert isinstance(placement, SessionPlacement)
    return placement


async def expire(rt: Any, session_id: str) -> None:
    """Expire the lease on ``session_id`` by the database's clock: its node was paused."""
    leases = placement_of(rt).leases
    await leases._run(
        f"UPDATE {leases.table}_leases SET expires = now() - interval '1 second' "
        "WHERE session = %s RETURNING session",
        (session_id,),
    )


async def test_a_session_is_served_by_one_node_and_refused_by_the_other(store_url: str) -> None:
    """The node that first serves a session holds it; the other is refused until it lets go
    (and then at once)."""
    async with (
        open_runtime(store=store_url, node=Node("a")) as a,
        open_runtime(store=store_url, node=Node("b")) as b,
    ):
        session_id = await a.sessions.create()
        await a.sessions.set_state(session_id, "k", 1)
        with pytest.raises(SessionMovedError, match="node a"):
            await b.sessions.set_state(session_id, "k", 2)
        with pytest.raises(SessionMovedError):
            await b.sessions.get_state(session_id, "k")
        await a.control.stop(session_id)  # passivated, and its lease released
        await b.sessions.set_state(session_id, "k", 2)
        assert await b.sessions.get_state(session_id, "k") == 2
        with pytest.raises(SessionMovedError, match="node b"):
            await a.sessions.get_state(session_id, "k")


async def test_a_node_that_lost_its_lease_writes_nothing_and_stops_the_actor(
    store_url: str,
) -> None:
    """Node a's lease expires and b takes the session: a's late write is refused and not
    visible, a's next beat stops its actor, and b's state stands."""
    async with (
        open_runtime(store=store_url, node=Node("a")) as a,
        open_runtime(store=store_url, node=Node("b")) as b,
    ):
        session_id = await a.sessions.create()
        await a.sessions.set_state(session_id, "k", "by a")
        await expire(a, session_id)
        await b.sessions.set_state(session_id, "k", "by b")
        with pytest.raises(SessionMovedError):
            await a.sessions.set_state(session_id, "k", "late by a")
        with pytest.raises(SessionMovedError):
            await a.sessions.set_state(session_id, "other", "late by a")
        await placement_of(a).beat()
        assert placement_of(a).lost == 1
        with contextlib.suppress(ActorNotFoundError), anyio.fail_after(10):
            await a.control.stop(session_id)  # (the beat asked it to passivate already)
        assert not a.supervisor.is_live("session", session_id)
        assert await b.sessions.get_state(session_id, "k") == "by b"
        assert await b.sessions.list_state(session_id) == ["k"]
        with pytest.raises(SessionMovedError, match="node b"):
            await a.sessions.get_state(session_id, "k")
        assert (await b.sessions.check()).clean


async def test_a_closed_node_lets_its_sessions_go_at_once(store_url: str) -> None:
    """The sessions of a node that shut down are served by another at once, not after TTL."""
    async with open_runtime(store=store_url, node=Node("b", lease_ttl_s=3600)) as b:
        async with open_runtime(store=store_url, node=Node("a", lease_ttl_s=3600)) as a:
            made = [await a.sessions.create() for _ in range(5)]
            for session_id in made:
                await a.sessions.set_state(session_id, "k", session_id)
        for session_id in made:
            assert await b.sessions.get_state(session_id, "k") == session_id


async def test_artifacts_of_a_deposed_node_are_refused_whole(store_url: str) -> None:
    """An artifact stored by a node after its lease moved is refused, and check stays clean."""
    async with (
        open_runtime(store=store_url, node=Node("a")) as a,
        open_runtime(store=store_url, node=Node("b")) as b,
    ):
        session_id = await a.sessions.create()
        await a.session(session_id).store_artifact("notes", b"v1", type="text/plain")
        await expire(a, session_id)
        await b.sessions.set_state(session_id, "k", 1)
        with pytest.raises(SessionMovedError):
            await a.session(session_id).store_artifact("notes", b"v2 late", type="text/plain")
        versions = await b.session(session_id).artifacts.versions(session_id, "notes")
        assert [v.version for v in versions] == [1]
        assert (await b.check()).clean


async def test_a_node_needs_a_postgresql_store(tmp_path: Any) -> None:
    """A node on a data folder is refused: there is no shared database to hold leases."""
    with pytest.raises(ValidationError, match="postgresql"):
        async with open_runtime(tmp_path / "data", node=Node("a")):
            pass


@pytest.mark.parametrize("ttl", [0, -1, 0.1, 1e9, "10"])
def test_a_lease_time_out_of_range_is_refused(ttl: Any) -> None:
    """A node's lease time must be a number from 0.3 to 3600 seconds."""
    with pytest.raises(ValidationError):
        Node("a", lease_ttl_s=ttl)


async def test_two_runtimes_cannot_be_one_node(store_url: str) -> None:
    """A runtime opened as a node whose id a live runtime has is refused: two processes
    with one id would both think they hold its sessions."""
    async with open_runtime(store=store_url, node=Node("a")):
        with pytest.raises(StoreLockedError, match="in use"):
            async with open_runtime(store=store_url, node=Node("a")):
                pass


async def test_a_busy_actor_whose_lease_moved_stops_and_the_node_serves_again(
    store_url: str,
) -> None:
    """Node a's lease expires and b writes and lets go; a burst of writes queued on a's old
    actor is refused (SessionMovedError), the actor stops, and a serves the session again
    under a new lease."""
    async with (
        open_runtime(store=store_url, node=Node("a")) as a,
        open_runtime(store=store_url, node=Node("b")) as b,
    ):
        session_id = await a.sessions.create()
        await a.sessions.set_state(session_id, "k", "by a")
        await expire(a, session_id)
        await b.sessions.set_state(session_id, "k", "by b")
        await b.control.stop(session_id)
        outcomes: list[str] = []

        async def late(i: int) -> None:
            try:
                await a.sessions.set_state(session_id, f"late{i}", i)
                outcomes.append("written")
            except SessionMovedError:
                outcomes.append("moved")

        async with anyio.create_task_group() as tasks:
            for i in range(8):
                tasks.start_soon(late, i)
        assert "moved" in outcomes, outcomes
        with anyio.fail_after(10):
            while True:
                try:
                    await a.sessions.set_state(session_id, "again", 1)
                    break
                except SessionMovedError:
                    await anyio.sleep(0.01)
        stored = set(await a.sessions.list_state(session_id))
        assert {"k", "again"} <= stored
        assert await a.sessions.get_state(session_id, "k") == "by b"


async def test_asking_for_sessions_that_do_not_exist_leaves_no_lease(store_url: str) -> None:
    """Unknown session ids are answered SessionNotFound and leave no lease row nor fence
    record behind (a client guessing ids cannot fill the tables)."""
    async with open_runtime(store=store_url, node=Node("a")) as a:
        for _ in range(5):
            with pytest.raises(SessionNotFoundError):
                await a.sessions.get_state(str(uuid.uuid4()), "k")
        leases = placement_of(a).leases
        rows = await leases._run(f"SELECT count(*) FROM {leases.table}_leases", ())
        assert rows == [(0,)]
        assert await a.store.records.scan(FENCE, FENCE + b"\xff") == []


async def test_a_cascading_delete_takes_the_leases_of_the_sessions_below(store_url: str) -> None:
    """A cascade from node a while b serves a child is refused (SessionMoved) and deletes
    nothing; once b lets the child go, the cascade deletes both, and b cannot write it again."""
    async with (
        open_runtime(store=store_url, node=Node("a")) as a,
        open_runtime(store=store_url, node=Node("b")) as b,
    ):
        parent = await a.sessions.create()
        child = await a.sessions.create(parent_id=parent)
        await a.sessions.set_state(parent, "k", 1)
        await b.sessions.set_state(child, "k", 2)
        with pytest.raises(SessionMovedError, match="node b"):
            await a.sessions.delete(parent, cascade=True)
        assert await b.sessions.get_state(child, "k") == 2
        await b.control.stop(child)
        await a.sessions.delete(parent, cascade=True)
        with pytest.raises(SessionNotFoundError):
            await b.sessions.set_state(child, "k", 3)
        assert (await a.check()).clean
        assert (await b.check()).clean


async def test_audit_entries_written_on_two_nodes_are_all_kept(store_url: str) -> None:
    """A shared artifact read on nodes a and b in turn keeps every read's audit entry (the
    nodes number the entries of one log without overwriting each other's)."""
    async with (
        open_runtime(store=store_url, node=Node("a")) as a,
        open_runtime(store=store_url, node=Node("b")) as b,
    ):
        owner = await a.sessions.create()
        reader = await a.sessions.create()
        await a.artifacts.store(owner, "x", b"data", type="text/plain")
        await a.artifacts.share(owner, "x", reader, "read")
        for rt in (a, b, a, b, b, a):
            await rt.artifacts.as_session(reader).get(owner, "x")
        log = await a.artifacts.audit_log(owner, "x")
        assert [entry.action for entry in log].count("read") == 6, log


async def test_a_node_stopped_cleanly_can_start_again_at_once_under_its_id(store_url: str) -> None:
    """A node closed cleanly and opened again at once under its id is not refused (its old
    incarnation let go of the id and of its sessions)."""
    async with open_runtime(store=store_url, node=Node("a", lease_ttl_s=60)) as a:
        session_id = await a.sessions.create()
        await a.sessions.set_state(session_id, "k", 1)
    async with open_runtime(store=store_url, node=Node("a", lease_ttl_s=60)) as again:
        assert await again.sessions.get_state(session_id, "k") == 1


async def test_a_lease_left_by_a_claim_cut_short_runs_out(store_url: str) -> None:
    """A lease the node holds in the database but not in memory (its claim was cancelled
    after the acquire) is not renewed by the beat, so it runs out."""
    async with open_runtime(store=store_url, node=Node("a")) as a:
        session_id = await a.sessions.create()
        placement = placement_of(a)
        await placement.leases.acquire(session_id, placement.holder, ttl_s=30)
        assert session_id not in placement.held
        assert await placement.leases.renew(placement.holder, [], ttl_s=30) == set()
        assert await placement.leases.renew(placement.holder, ttl_s=30) == {session_id}


async def test_a_cascade_deletes_a_child_whose_record_is_gone(store_url: str) -> None:
    """A cascading delete on a node also removes a child whose own record was lost (it can
    have no lease), as on one node, and leaves no fence record behind."""
    async with open_runtime(store=store_url, node=Node("a")) as a:
        parent = await a.sessions.create()
        child = await a.sessions.create(parent_id=parent)
        await a.sessions.set_state(parent, "k", 1)
        lost = Batch()
        lost.delete(layout.record_key(layout.bytes_of(child)))
        await a.store.records.write(lost)
        await a.sessions.delete(parent, cascade=True)
        with pytest.raises(SessionNotFoundError):
            await a.sessions.get_state(parent, "k")
        assert await a.store.records.scan(FENCE, FENCE + b"\xff") == []


async def test_shares_go_through_after_reads_audited_on_another_node(store_url: str) -> None:
    """Shares on node a after reads of the same name audited on node b all succeed, each
    with its audit entry (a share numbered where b already wrote is numbered again)."""
    async with (
        open_runtime(store=store_url, node=Node("a")) as a,
        open_runtime(store=store_url, node=Node("b")) as b,
    ):
        owner = await a.sessions.create()
        readers = [await a.sessions.create() for _ in range(4)]
        await a.artifacts.store(owner, "x", b"data", type="text/plain")
        await a.artifacts.share(owner, "x", readers[0], "read")
        for _ in range(3):
            await b.artifacts.as_session(readers[0]).get(owner, "x")
        for reader in readers[1:]:
            await a.artifacts.share(owner, "x", reader, "read")
        actions = [entry.action for entry in await a.artifacts.audit_log(owner, "x")]
        assert (actions.count("share"), actions.count("read")) == (4, 3), actions
