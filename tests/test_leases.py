"""Session leases on PostgreSQL: one holder at a time, epochs that only grow, and writes
fenced by the epoch (a deposed holder writes nothing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from satchel import SessionMovedError, StoreLockedError, ValidationError
from satchel.storage import Batch, Fence, PostgresLeases, PostgresRecords, fence_key

from .ports import drop_table, networked_place, server_url

pytestmark = pytest.mark.anyio

TTL = 30.0


@pytest.fixture
async def place() -> AsyncIterator[tuple[PostgresRecords, PostgresLeases]]:
    """Records and leases on a table of their own, dropped afterwards."""
    _, _, table = networked_place()
    url = server_url("SATCHEL_TEST_POSTGRES")
    records = await PostgresRecords.open(url, table=table)
    leases = await PostgresLeases.open(url, table=table)
    try:
        yield records, leases
    finally:
        await leases.aclose()
        await records.aclose()
        await drop_table(table)


async def _expire(leases: PostgresLeases, session: str) -> None:
    """Make the lease on ``session`` expired by the database's clock (a node paused past it)."""
    await leases._run(
        f"UPDATE {leases.table}_leases SET expires = now() - interval '1 second' "
        "WHERE session = %s RETURNING session",
        (session,),
    )


async def test_one_node_holds_a_lease_and_the_other_is_told_who(place: Any) -> None:
    """The first node to ask holds the lease; a second is refused and told the holder."""
    _, leases = place
    first = await leases.acquire("s1", "node-a", ttl_s=TTL)
    second = await leases.acquire("s1", "node-b", ttl_s=TTL)
    assert (first.granted, first.node, first.epoch) == (True, "node-a", 1)
    assert (second.granted, second.node, second.epoch) == (False, "node-a", 1)
    again = await leases.acquire("s1", "node-a", ttl_s=TTL)
    assert (again.granted, again.epoch) == (True, 1)


async def test_a_released_or_expired_lease_moves_with_a_new_epoch(place: Any) -> None:
    """Released, the lease goes to the next node at epoch 2; expired, at epoch 3."""
    _, leases = place
    await leases.release(await leases.acquire("s1", "node-a", ttl_s=TTL))
    taken = await leases.acquire("s1", "node-b", ttl_s=TTL)
    assert (taken.granted, taken.node, taken.epoch) == (True, "node-b", 2)
    await _expire(leases, "s1")
    assert await leases.renew("node-b", ttl_s=TTL) == set()
    back = await leases.acquire("s1", "node-a", ttl_s=TTL)
    assert (back.granted, back.node, back.epoch) == (True, "node-a", 3)


async def test_renew_extends_only_the_nodes_own_live_leases(place: Any) -> None:
    """A node's renewal names the sessions it still holds, not others' nor expired ones."""
    _, leases = place
    for session in ("s1", "s2", "s3"):
        await leases.acquire(session, "node-a", ttl_s=TTL)
    await leases.acquire("s4", "node-b", ttl_s=TTL)
    await _expire(leases, "s2")
    assert await leases.renew("node-a", ttl_s=TTL) == {"s1", "s3"}
    assert await leases.renew("node-b", ttl_s=TTL) == {"s4"}


async def test_a_deposed_holder_writes_nothing(place: Any) -> None:
    """After the lease moved, the old holder's fenced write fails whole; the new one's lands."""
    records, leases = place
    old = await leases.acquire("s1", "node-a", ttl_s=TTL)
    old_view = Fence(records, "s1", old.epoch)
    batch = Batch()
    batch.put(b"k\x00one", b"by a")
    await old_view.write(batch)
    await _expire(leases, "s1")
    new = await leases.acquire("s1", "node-b", ttl_s=TTL)
    late = Batch()
    late.put(b"k\x00one", b"late by a")
    late.put(b"k\x00two", b"late by a")
    with pytest.raises(SessionMovedError):
        await old_view.write(late)
    assert await records.get(b"k\x00one") == b"by a"
    assert await records.get(b"k\x00two") is None
    fresh = Batch()
    fresh.put(b"k\x00two", b"by b")
    await Fence(records, "s1", new.epoch).write(fresh)
    assert await records.get(b"k\x00two") == b"by b"
    assert await records.get(fence_key("s1")) == (2).to_bytes(8, "big")


async def test_many_nodes_racing_for_one_session_leave_one_holder(place: Any) -> None:
    """Twenty nodes asking at once for each of five sessions: one is granted per session."""
    _, leases = place
    granted: dict[str, list[str]] = {f"s{i}": [] for i in range(5)}

    async def ask(session: str, node: str) -> None:
        lease = await leases.acquire(session, node, ttl_s=TTL)
        if lease.granted:
            granted[session].append(node)

    async with anyio.create_task_group() as tasks:
        for node in range(20):
            for session in granted:
                tasks.start_soon(ask, session, f"node-{node}")
    assert all(len(holders) == 1 for holders in granted.values()), granted


async def test_nodes_register_and_are_listed_while_they_beat(place: Any) -> None:
    """Registered nodes are listed with their addresses; a silent one drops out."""
    _, leases = place
    await leases.register("node-a", "node-a#1", "http://127.0.0.1:1", ttl_s=TTL)
    await leases.register("node-b", "node-b#1", "http://127.0.0.1:2", ttl_s=TTL)
    await leases._run(
        f"UPDATE {leases.table}_nodes SET heartbeat = now() - interval '1 minute' "
        "WHERE node = 'node-b' RETURNING node",
        (),
    )
    listed = await leases.nodes(within_s=10)
    assert [(n.node, n.address) for n in listed] == [("node-a", "http://127.0.0.1:1")]


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, "é"])
async def test_a_malformed_node_id_is_refused(place: Any, bad: str) -> None:
    """A node id with spaces, accents, or of the wrong length is a ValidationError."""
    _, leases = place
    with pytest.raises(ValidationError):
        await leases.acquire("s1", bad, ttl_s=TTL)


async def test_a_node_id_beating_elsewhere_cannot_be_registered_again(place: Any) -> None:
    """A second process taking a live node's id is refused; once that node is silent past
    the lease time, its id is free, and the new incarnation's leases are not the old one's."""
    _, leases = place
    await leases.register("node-a", "node-a#old", "http://127.0.0.1:1", ttl_s=TTL)
    old = await leases.acquire("s1", "node-a#old", ttl_s=TTL)
    with pytest.raises(StoreLockedError, match="in use"):
        await leases.register("node-a", "node-a#new", "http://127.0.0.1:2", ttl_s=TTL)
    await leases._run(
        f"UPDATE {leases.table}_nodes SET heartbeat = now() - interval '1 hour' "
        "WHERE node = 'node-a' RETURNING node",
        (),
    )
    await leases.register("node-a", "node-a#new", "http://127.0.0.1:2", ttl_s=TTL)
    taken = await leases.acquire("s1", "node-a#new", ttl_s=TTL)
    assert (taken.granted, taken.node_id) == (False, "node-a")  # the old one's, unexpired
    await _expire(leases, "s1")
    taken = await leases.acquire("s1", "node-a#new", ttl_s=TTL)
    assert (taken.granted, taken.epoch) == (True, old.epoch + 1)
