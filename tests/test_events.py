"""Correlated events: journal entries carry their session's correlation id and cause, and
subscribers follow them live."""

from __future__ import annotations

import logging
from typing import Any, cast

import anyio
import pytest

from satchel import IntegrityError, InvalidArgumentError, Runtime, ValidationError


async def test_subscribers_follow_events_live(rt: Runtime) -> None:
    """A subscriber gets each entry of the sessions and kinds it asked for, as written."""
    sid = await rt.sessions.create(name="watched")
    other = await rt.sessions.create(name="other")
    async with rt.events.subscribe(session_id=sid, kinds=["state_set", "artifact_stored"]) as feed:
        await rt.sessions.set_state(other, "x", 1)  # another session: not followed
        await rt.sessions.set_state(sid, "x", 2)
        await rt.sessions.delete_state(sid, "x")  # another kind: not followed
        await rt.artifacts.store(sid, "r.txt", b"r", type="tool_result", metadata=None)
        first = await feed.__anext__()
        second = await feed.__anext__()
        assert (first.kind, first.data["value"], first.seq) == ("state_set", 2, 2)
        assert (second.kind, second.data["name"]) == ("artifact_stored", "r.txt")
        assert {first.session_id, second.session_id} == {sid}
        with anyio.move_on_after(0.01):
            await feed.__anext__()
            pytest.fail("an unwanted event arrived")
    assert not rt.events.active


async def test_correlation_and_causation(rt: Runtime) -> None:
    """Children and forks share their root's correlation id; their first entries name the
    entry of the parent or origin they came from."""
    root = await rt.sessions.create(name="root")
    await rt.sessions.set_state(root, "k", 1)
    child = await rt.sessions.create(name="child", parent_id=root)
    grandchild = await rt.sessions.create(name="grandchild", parent_id=child)
    fork = await rt.sessions.fork(child)
    for sid in (root, child, grandchild, fork):
        assert {e.correlation_id for e in await rt.sessions.timeline(sid)} == {root}
    assert (await rt.sessions.timeline(child))[0].cause == {"session_id": root, "seq": 2}
    assert (await rt.sessions.timeline(grandchild))[0].cause == {"session_id": child, "seq": 1}
    assert (await rt.sessions.timeline(fork))[0].cause == {"session_id": child, "seq": 1}
    assert (await rt.sessions.timeline(root))[1].cause is None


async def test_creates_and_forks_are_published(rt: Runtime) -> None:
    """Session creation and forks reach subscribers of every session, with correlation."""
    async with rt.events.subscribe() as feed:
        root = await rt.sessions.create()
        fork = await rt.sessions.fork(root)
        created, forked = await feed.__anext__(), await feed.__anext__()
    assert (created.kind, created.session_id, created.correlation_id) == (
        "session_created",
        root,
        root,
    )
    assert (forked.kind, forked.session_id, forked.correlation_id) == ("session_forked", fork, root)
    assert forked.cause == {"session_id": root, "seq": 1}


async def test_a_full_buffer_drops_and_counts(rt: Runtime) -> None:
    """A subscriber that does not keep up loses events (counted), and no writer waits."""
    sid = await rt.sessions.create()
    async with rt.events.subscribe(session_id=sid, buffer=2) as feed:
        for n in range(5):
            await rt.sessions.set_state(sid, "n", n)
        assert feed.dropped == 3
        assert [(await feed.__anext__()).data["value"] for _ in range(2)] == [0, 1]
    with pytest.raises(ValidationError):
        async with rt.events.subscribe(buffer=0):
            pass


async def test_correlation_is_fixed_at_creation(rt: Runtime) -> None:
    """A fork keeps its correlation id after its origin is deleted, in the timeline and in
    events alike."""
    root = await rt.sessions.create()
    fork = await rt.sessions.fork(root)
    await rt.sessions.delete(root)
    assert {e.correlation_id for e in await rt.sessions.timeline(fork)} == {root}
    async with rt.events.subscribe(session_id=fork) as feed:
        await rt.sessions.set_state(fork, "k", 1)
        assert (await feed.__anext__()).correlation_id == root


async def test_a_reader_finishes_when_the_subscription_ends(rt: Runtime) -> None:
    """Iterating a subscription ends when it is closed; a bare string of kinds is refused."""
    sid = await rt.sessions.create()
    got: list[str] = []

    async def read(feed: object) -> None:
        async for event in feed:  # type: ignore[attr-defined]
            got.append(event.kind)

    async with anyio.create_task_group() as nursery, rt.events.subscribe(session_id=sid) as feed:
        nursery.start_soon(read, feed)
        await rt.sessions.set_state(sid, "k", 1)
        await anyio.sleep(0.01)
    assert got == ["state_set"]
    with pytest.raises(InvalidArgumentError):
        async with rt.events.subscribe(kinds="state_set"):
            pass


async def test_readers_sharing_a_subscription_each_wake(rt: Runtime) -> None:
    """Two tasks reading one subscription between them read every event once, and both
    finish when it ends (a second waiting reader was never woken)."""
    sid = await rt.sessions.create()
    got: list[tuple[int, str]] = []

    async def read(feed: object, reader: int) -> None:
        async for event in feed:  # type: ignore[attr-defined]
            got.append((reader, event.data["key"]))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks, rt.events.subscribe(session_id=sid) as feed:
            tasks.start_soon(read, feed, 1)
            tasks.start_soon(read, feed, 2)
            await anyio.wait_all_tasks_blocked()
            for i in range(4):
                await rt.sessions.set_state(sid, f"k{i}", i)
                await anyio.wait_all_tasks_blocked()
    assert sorted(key for _, key in got) == ["k0", "k1", "k2", "k3"]


#: A time past the year 9999, which no date can hold: only a damaged record stores it.
PAST_9999_US = 2**62


async def damage_entry(rt: Runtime, sid: str, seq: int) -> None:
    """Store journal entry ``seq`` of session ``sid`` again with a time no date can hold."""
    from satchel.actors.sessions import _session_layout as layout
    from satchel.storage import Batch

    key = layout.journal_key(layout.bytes_of(sid), seq)
    raw = await rt.store.records.get(key)
    assert raw is not None
    _, kind, data, cause = layout.decode_entry_with_cause(raw)
    damaged = Batch()
    damaged.put(key, layout.encode_entry(PAST_9999_US, kind, data, cause))
    await rt.store.records.write(damaged)


@pytest.mark.parametrize("seq", [1, 2])
async def test_a_journal_entry_with_a_time_no_date_holds_reads_as_integrity_error(
    rt: Runtime, seq: int
) -> None:
    """A journal entry, the first or the last, whose stored time no date can hold (a damaged
    record) makes the timeline and the replay metadata raise IntegrityError."""
    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "k", 1)
    await damage_entry(rt, sid, seq)
    with pytest.raises(IntegrityError, match="journal entry"):
        await rt.sessions.timeline(sid)
    with pytest.raises(IntegrityError, match="journal entry"):
        await rt.sessions.replay_metadata(sid)


#: Journal entries damaged in other ways: not msgpack, cut short, a time that is no number,
#: a kind that is no text.
OTHER_DAMAGE = [b"\xc1", b"\x93\x01\xa1x", b"\x94\xa1x\xa1k\x80\xc0", b"\x94\x01\x01\x80\xc0"]


async def put_entry(rt: Runtime, sid: str, seq: int, raw: bytes) -> None:
    """Store ``raw`` as journal entry ``seq`` of session ``sid``."""
    from satchel.actors.sessions import _session_layout as layout
    from satchel.storage import Batch

    damaged = Batch()
    damaged.put(layout.journal_key(layout.bytes_of(sid), seq), raw)
    await rt.store.records.write(damaged)


@pytest.mark.parametrize("raw", [None, *OTHER_DAMAGE])
async def test_another_nodes_damaged_entry_is_skipped_and_the_rest_delivered(
    rt: Runtime, caplog: pytest.LogCaptureFixture, raw: bytes | None
) -> None:
    """An entry another cluster node wrote that is damaged (a time no date can hold, bytes
    that are no entry) is logged and skipped, and the next entry of the same notice still
    reaches the subscriber here."""
    from satchel.actors.cluster._events import ClusterEvents

    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "k", 1)
    await rt.sessions.set_state(sid, "k", 2)
    if raw is None:
        await damage_entry(rt, sid, 2)
    else:
        await put_entry(rt, sid, 2, raw)
    listener = ClusterEvents(cast(Any, None), rt.events, rt.store.records, holder="here")
    async with rt.events.subscribe(session_id=sid) as feed:
        with caplog.at_level(logging.WARNING, logger="satchel.cluster"):
            await listener._received(f"there\n{sid} 2\n{sid} 3")
        delivered = await feed.__anext__()
    assert (delivered.seq, delivered.data["value"]) == (3, 2)
    assert listener.received == 1
    assert "entry 2 of session" in caplog.text and "journal entry" in caplog.text


@pytest.mark.parametrize("raw", OTHER_DAMAGE)
async def test_a_journal_entry_that_does_not_decode_reads_as_integrity_error(
    rt: Runtime, raw: bytes
) -> None:
    """A journal entry whose bytes are no entry (a damaged record) makes the timeline raise
    IntegrityError, not msgpack's or Python's own errors."""
    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "k", 1)
    await put_entry(rt, sid, 2, raw)
    with pytest.raises(IntegrityError, match="journal entry"):
        await rt.sessions.timeline(sid)


async def test_a_damaged_first_entry_is_an_integrity_error_for_its_children(rt: Runtime) -> None:
    """A session whose first journal entry is of the wrong shape (a damaged record) makes
    creating a child of it raise IntegrityError, not a bare AttributeError."""
    parent = await rt.sessions.create()
    await put_entry(rt, parent, 1, b"\x93\x01\xa1k\x92\x01\x02")  # data is a list
    with pytest.raises(IntegrityError, match="journal entry"):
        await rt.sessions.create(parent_id=parent)
