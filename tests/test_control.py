"""rt.control: listing, inspecting and steering live actors, replay schedules, check and gc."""

from __future__ import annotations

import anyio
import pytest

from satchel import (
    ActorNotFoundError,
    InvalidStateTransitionError,
    Runtime,
    SessionNotFoundError,
)
from satchel.actors.sessions import _session_layout as layout
from satchel.storage import Batch

MISSING = "00000000-0000-4000-8000-000000000000"


def live_ids(rt: Runtime) -> set[str]:
    """Ids of the live session actors."""
    return {a.id for a in rt.control.actors("session") if a.state == "running"}


async def test_actors_lists_live_sessions_with_their_counters(rt: Runtime) -> None:
    """A session that just worked is listed with its mailbox and message counters."""
    sid = await rt.sessions.create(name="busy")
    await rt.sessions.set_state(sid, "k", 1)
    [actor] = [a for a in rt.control.actors() if a.id == sid]
    assert actor.kind == "session" and actor.state == "running"
    assert actor.messages_handled >= 1 and actor.mailbox_depth == 0
    assert actor.mailbox_peak >= 1 and actor.mailbox_capacity > 0
    assert actor.last_activity > 0 and actor.restarts == 0


async def test_stop_flushes_and_removes_the_actor(rt: Runtime) -> None:
    """stop returns once the actor is gone; its state is still there when it comes back."""
    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "k", "kept")
    await rt.control.stop(sid)
    assert sid not in live_ids(rt)
    inspected = await rt.control.inspect(sid)
    assert inspected.actor is None and inspected.session is not None
    assert inspected.session.id == sid
    assert await rt.sessions.get_state(sid, "k") == "kept"
    assert sid in live_ids(rt)
    with pytest.raises(ActorNotFoundError):
        await rt.control.stop(MISSING)


async def test_passivate_and_restart_are_obeyed(rt: Runtime) -> None:
    """passivate takes the actor out of memory after its turn; restart starts it again."""
    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "k", 1)  # creating writes records; the actor starts on use
    rt.control.restart(sid)
    await anyio.wait_all_tasks_blocked()
    inspected = await rt.control.inspect(sid)
    assert inspected.actor is not None and inspected.actor.activations == 2
    rt.control.passivate(sid)
    await anyio.wait_all_tasks_blocked()
    assert sid not in live_ids(rt)
    with pytest.raises(ActorNotFoundError):
        rt.control.passivate(sid)


async def test_lifecycle_verbs_go_through_the_session_rules(rt: Runtime) -> None:
    """suspend, resume, complete and fail change the status, and refuse what the lifecycle
    does not allow."""
    a, b = await rt.sessions.create(), await rt.sessions.create()
    await rt.control.suspend(a)
    assert (await rt.sessions.get(a)).status.value == "suspended"
    with pytest.raises(InvalidStateTransitionError):
        await rt.control.suspend(a)
    await rt.control.resume(a)
    await rt.control.complete(a)
    await rt.control.fail(b, "operator stopped it")
    assert (await rt.sessions.get(a)).status.value == "completed"
    assert (await rt.sessions.get(b)).failure_reason == "operator stopped it"


async def test_inspect_unknown_actors(rt: Runtime) -> None:
    """An unknown session is SessionNotFound; an actor of another kind that is not live is
    ActorNotFound."""
    with pytest.raises(SessionNotFoundError):
        await rt.control.inspect(MISSING)
    with pytest.raises(ActorNotFoundError):
        await rt.control.inspect("nobody", kind="storage")


async def test_replay_schedules_are_listed_and_cancelled(rt: Runtime) -> None:
    """A scheduled replay is listed until it is cancelled."""
    sid = await rt.sessions.create()
    schedule = await rt.control.schedule_replay(sid, every_s=3600, when=4_000_000_000)
    assert [s.id for s in await rt.control.schedules(sid)] == [schedule]
    assert await rt.control.schedule_results(schedule) == []
    assert await rt.control.cancel_schedule(schedule) is True
    assert await rt.control.schedules() == []
    assert await rt.control.cancel_schedule(schedule) is False


async def test_check_and_gc_keep_data_readable(rt: Runtime) -> None:
    """check is clean; gc passivates idle sessions, compacts, and every artifact still reads."""
    sid = await rt.sessions.create()
    for i in range(20):
        await rt.artifacts.store(sid, f"a{i}", b"x" * 5000 + bytes([i]), type="tool_result")
    await rt.artifacts.delete(sid, "a0")
    assert (await rt.control.check()).clean
    report = await rt.control.gc()
    assert report.passivated >= 1 and report.compacted and report.orphan_chunks_freed == 0
    await anyio.wait_all_tasks_blocked()
    assert sid not in live_ids(rt)
    assert (await rt.artifacts.get(sid, "a19")).content == b"x" * 5000 + bytes([19])
    assert (await rt.control.check()).clean


async def test_statistics_count_actors_by_kind(rt: Runtime) -> None:
    """statistics counts live actors per kind and names the backend."""
    await rt.sessions.set_state(await rt.sessions.create(), "k", 1)
    stats = rt.control.statistics()
    assert stats.actors_by_kind.get("session", 0) >= 1
    assert stats.backend in ("memory", "rocksdb")
    assert stats.supervisor.live_actors == sum(stats.actors_by_kind.values())


async def test_one_check_with_fix_leaves_everything_clean(rt: Runtime) -> None:
    """A session whose record was lost: one check(fix=True) repairs the sessions and the blob
    references their repair released, so a second check finds nothing."""
    sid = await rt.sessions.create()
    await rt.artifacts.store(sid, "a.txt", b"content only this session holds", type="agent_output")
    batch = Batch()
    batch.delete(layout.record_key(layout.bytes_of(sid)))
    rt.store.kv.write(batch)
    assert not (await rt.control.check(fix=True)).clean
    assert (await rt.control.check()).clean
