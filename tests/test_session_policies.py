"""Session policies on the virtual clock: max duration, idle timeout, retention, rate, quota."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from satchel import (
    QuotaExceededError,
    RateLimitedError,
    Runtime,
    SessionConfig,
    SessionNotActiveError,
    SessionNotFoundError,
    ValidationError,
    open_runtime,
)
from satchel.actors.sessions import _session_layout as layout
from satchel.actors.sessions._deadlines import RETRY_S
from satchel.storage import Batch

DAY = 86_400


def live_sessions(rt: Runtime) -> set[str]:
    """Ids of the session actors now live."""
    return {a.id for a in rt.actors() if a.kind == "session"}


async def test_max_duration_fails_active_and_suspended_sessions(
    rt: Runtime, autojump_clock: None
) -> None:
    """A session still active or suspended past max_duration_s is failed with reason timeout."""
    active = await rt.sessions.create(config={"max_duration_s": 60})
    suspended = await rt.sessions.create(config={"max_duration_s": 90})
    finished = await rt.sessions.create(config={"max_duration_s": 30})
    await rt.sessions.suspend(suspended)
    await rt.sessions.complete(finished)
    await anyio.sleep(59)
    assert (await rt.sessions.get(active)).status == "active"
    await anyio.sleep(2)
    info = await rt.sessions.get(active)
    assert (info.status, info.failure_reason) == ("failed", "timeout")
    await anyio.sleep(30)
    assert (await rt.sessions.get(suspended)).status == "failed"
    assert (await rt.sessions.get(finished)).status == "completed"
    assert (await rt.session(active).timeline())[-1].data["reason"] == "timeout"


async def test_idle_timeout_suspends_and_passivates(rt: Runtime, autojump_clock: None) -> None:
    """Activity postpones the idle timeout; once idle, the session is suspended and passivated."""
    sid = await rt.sessions.create(config={"idle_timeout_s": 30})
    session = rt.session(sid)
    await anyio.sleep(20)
    await session.set_state("k", 1)
    await anyio.sleep(15)
    assert (await session.info()).status == "active"
    assert sid in live_sessions(rt)
    await anyio.sleep(16)
    info = await session.info()
    assert info.status == "suspended"
    assert sid not in live_sessions(rt)
    assert (await session.timeline())[-1].data == {
        "from": "active",
        "to": "suspended",
        "reason": "idle",
    }
    await session.resume()
    await anyio.sleep(31)
    assert (await session.info()).status == "suspended"


async def test_retention_archives_then_deletes(rt: Runtime, autojump_clock: None) -> None:
    """An ended session is archived after retention_days, then deleted after the second period."""
    config = {"retention_days": 1, "archive_retention_days": 2}
    done = await rt.sessions.create(config=config)
    kept = await rt.sessions.create(config=config)
    await rt.sessions.complete(done)
    await anyio.sleep(DAY + 1)
    assert (await rt.sessions.get(done)).status == "archived"
    assert (await rt.sessions.get(kept)).status == "active"
    await anyio.sleep(2 * DAY + 1)
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.get(done)
    assert (await rt.sessions.get(kept)).status == "active"
    assert (await rt.sessions.check()).clean


async def test_retention_keeps_an_archived_parent_of_children(
    rt: Runtime, autojump_clock: None
) -> None:
    """An archived session with children is not deleted by retention, and is retried later."""
    parent = await rt.sessions.create(config={"archive_retention_days": 1})
    child = await rt.sessions.create(parent_id=parent)
    await rt.sessions.complete(parent)
    await rt.sessions.archive(parent)
    await anyio.sleep(DAY + 1)
    assert (await rt.sessions.get(parent)).status == "archived"
    await rt.sessions.delete(child)
    await anyio.sleep(DAY + 1)
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.get(parent)


async def test_runtime_defaults_apply_and_can_be_overridden(autojump_clock: None) -> None:
    """session_defaults is the config of new sessions; fields given at creation override it."""
    defaults = SessionConfig(max_duration_s=10)
    async with open_runtime(store="memory", session_defaults=defaults) as rt:
        short = await rt.sessions.create()
        longer = await rt.sessions.create(config={"max_duration_s": 100})
        await anyio.sleep(11)
        assert (await rt.sessions.get(short)).status == "failed"
        assert (await rt.sessions.get(longer)).status == "active"


async def test_deadlines_survive_reopen_and_catch_up(tmp_path: Path, autojump_clock: None) -> None:
    """Deadlines are persisted: after a reopen they fire, also those that fell due while closed."""
    async with open_runtime(tmp_path) as rt:
        soon = await rt.sessions.create(config={"max_duration_s": 50})
        later = await rt.sessions.create(config={"max_duration_s": 500})
    await anyio.sleep(100)
    async with open_runtime(tmp_path) as rt:
        await anyio.sleep(0.1)
        assert (await rt.sessions.get(soon)).status == "failed"
        assert (await rt.sessions.get(later)).status == "active"
        await anyio.sleep(401)
        assert (await rt.sessions.get(later)).status == "failed"


async def test_rate_limit_refuses_bursts(rt: Runtime, autojump_clock: None) -> None:
    """Past its burst a session refuses operations with RateLimited until tokens refill."""
    session = rt.session(await rt.sessions.create(config={"rate_limit": 2, "rate_burst": 3}))
    for i in range(3):
        await session.set_state("k", i)
    with pytest.raises(RateLimitedError, match="rate limit"):
        await session.set_state("k", 99)
    with pytest.raises(RateLimitedError):
        await session.get_state("k")
    await anyio.sleep(0.5)  # one token back
    await session.set_state("k", 3)
    with pytest.raises(RateLimitedError):
        await session.get_state("k")
    await anyio.sleep(10)
    assert await session.get_state("k") == 3


@pytest.mark.parametrize("status", ["suspended", "completed"])
async def test_writes_refused_for_the_status_cost_no_token(rt: Runtime, status: str) -> None:
    """Writes a suspended or completed session refuses (SessionNotActive) take nothing from
    its rate limit: the tokens it had are still there for what it does take."""
    sid = await rt.sessions.create(config={"rate_limit": 0.001, "rate_burst": 4})
    await rt.artifacts.store(sid, "a", b"x", type="text")  # one token
    await (rt.sessions.suspend(sid) if status == "suspended" else rt.sessions.complete(sid))
    refused = [
        lambda: rt.sessions.set_state(sid, "k", 1),
        lambda: rt.sessions.delete_state(sid, "k"),
        lambda: rt.sessions.append_events(sid, [{"n": 1}]),
        lambda: rt.sessions.pop_event(sid),
        lambda: rt.sessions.clear_events(sid),
        lambda: rt.artifacts.store(sid, "b", b"x", type="text"),
        lambda: rt.artifacts.delete(sid, "a"),
    ]
    for write in refused * 2:
        with pytest.raises(SessionNotActiveError):
            await write()
    await rt.sessions.get_state(sid, "k")  # the last two tokens
    await rt.sessions.get_state(sid, "k")
    with pytest.raises(RateLimitedError):
        await rt.sessions.get_state(sid, "k")


async def test_operation_quota_refuses_before_writing(rt: Runtime) -> None:
    """At max_operations further writes raise QuotaExceeded and write nothing."""
    session = rt.session(await rt.sessions.create(config={"max_operations": 3}))
    for i in range(3):
        await session.set_state(f"k{i}", i)
    with pytest.raises(QuotaExceededError, match="max_operations"):
        await session.set_state("k3", 3)
    with pytest.raises(QuotaExceededError):
        await session.delete_state("k0")
    info = await session.info()
    assert info.operation_count == 3
    assert await session.list_state() == ["k0", "k1", "k2"]
    assert len(await session.timeline()) == 4
    await session.complete()
    assert (await session.info()).status == "completed"


async def test_deadlines_due_during_a_sweep_are_not_lost(
    rt: Runtime, autojump_clock: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deadline falling due while the sweeper is telling another session still fires."""
    from satchel.actors.sessions._session import SessionActor

    first = await rt.sessions.create(config={"max_duration_s": 10})
    second = await rt.sessions.create(config={"max_duration_s": 10.01})
    assert live_sessions(rt) == set()  # creating wakes no actor: the sweep will
    slow_start = SessionActor.on_start

    async def on_start(self: SessionActor) -> None:
        await anyio.sleep(0.05)  # the virtual clock moves while the sweep waits on this
        await slow_start(self)

    monkeypatch.setattr(SessionActor, "on_start", on_start)
    await anyio.sleep(20)
    assert (await rt.sessions.get(first)).status == "failed"
    assert (await rt.sessions.get(second)).status == "failed"


async def test_a_cancelled_create_does_not_silence_later_deadlines(
    rt: Runtime, autojump_clock: None
) -> None:
    """Cancelling a create after it committed leaves every deadline scheduled."""
    with anyio.move_on_after(0):
        await rt.sessions.create(config={"max_duration_s": 10})
    await rt.sessions.create(config={"max_duration_s": 20})
    await anyio.sleep(100)
    sessions = await rt.sessions.list()
    assert sessions and {s.status for s in sessions} == {"failed"}


def corrupt_counters(rt: Runtime, session_id: str) -> None:
    """Make a session's actor unable to start (its counters no longer decode)."""
    from satchel.actors.sessions import _session_layout as layout
    from satchel.storage import Batch

    batch = Batch()
    batch.put(layout.counters_key(layout.bytes_of(session_id)), b"broken")
    rt.store.kv.write(batch)


async def test_a_broken_session_does_not_stop_other_deadlines(
    rt: Runtime, autojump_clock: None
) -> None:
    """A session whose actor cannot start is skipped; later deadlines of others still fire."""
    broken = await rt.sessions.create(config={"max_duration_s": 10})
    healthy = await rt.sessions.create(config={"max_duration_s": 100})
    corrupt_counters(rt, broken)
    await anyio.sleep(50)
    late = await rt.sessions.create(config={"max_duration_s": 10})
    await anyio.sleep(100)
    assert (await rt.sessions.get(healthy)).status == "failed"
    assert (await rt.sessions.get(late)).status == "failed"


async def test_reopen_with_a_broken_due_session_still_opens(
    tmp_path: Path, autojump_clock: None
) -> None:
    """A runtime opens although a session with a due deadline cannot start."""
    async with open_runtime(tmp_path) as rt:
        broken = await rt.sessions.create(config={"max_duration_s": 10})
        fine = await rt.sessions.create(config={"max_duration_s": 10})
        corrupt_counters(rt, broken)
    await anyio.sleep(20)
    async with open_runtime(tmp_path) as rt:
        await anyio.sleep(0.1)
        assert (await rt.sessions.get(fine)).status == "failed"


async def test_rate_limit_survives_passivation_and_spares_save(
    rt: Runtime, autojump_clock: None
) -> None:
    """Passivating a session does not refill its bucket; save and load are not counted."""
    sid = await rt.sessions.create(config={"rate_limit": 1, "rate_burst": 1})
    await rt.sessions.set_state(sid, "k", 1)
    rt.supervisor.request("session", sid, "passivate")
    await anyio.sleep(0.01)
    assert sid not in live_sessions(rt)
    with pytest.raises(RateLimitedError):
        await rt.sessions.set_state(sid, "k", 2)
    await rt.sessions.save(sid)
    assert await rt.sessions.load(sid) == sid
    assert await rt.sessions.save_all() >= 1


async def test_reads_postpone_the_idle_timeout(rt: Runtime, autojump_clock: None) -> None:
    """A session only read from is not idle."""
    sid = await rt.sessions.create(config={"idle_timeout_s": 30})
    await rt.sessions.set_state(sid, "k", 1)
    for _ in range(4):
        await anyio.sleep(20)
        assert await rt.sessions.get_state(sid, "k") == 1
    assert (await rt.sessions.get(sid)).status == "active"
    await anyio.sleep(31)
    assert (await rt.sessions.get(sid)).status == "suspended"


@pytest.mark.parametrize(
    "config",
    [
        {"retention_days": 1e9},
        {"max_duration_s": 1e15},
        {"idle_timeout_s": float("inf")},
        {"archive_retention_days": 0},
    ],
)
async def test_durations_are_bounded(rt: Runtime, config: dict[str, float]) -> None:
    """Durations outside (0, 100 years] are refused at creation with ValidationError."""
    with pytest.raises(ValidationError, match="at most"):
        await rt.sessions.create(config=config)


async def test_upkeep_is_no_activity_for_the_idle_timeout(
    rt: Runtime, autojump_clock: None
) -> None:
    """A host that saves every live session now and then does not keep them from going idle:
    saves are upkeep, not operations."""
    sid = await rt.sessions.create(config={"idle_timeout_s": 100})
    await rt.sessions.set_state(sid, "k", 1)
    for _ in range(20):  # 1,000 s with no operation, a save every 50 s
        await anyio.sleep(50)
        await rt.sessions.save_all()
    assert (await rt.sessions.get(sid)).status == "suspended"


async def test_a_deadline_a_session_could_not_take_at_start_is_retried(
    tmp_path: Path, autojump_clock: None
) -> None:
    """A deadline that fell due while the runtime was closed, and that its session could not
    take at the next start (its data damaged, then repaired and its actor cleared), is
    retried after RETRY_S."""
    async with open_runtime(tmp_path / "data") as rt:
        sid = await rt.sessions.create(config={"max_duration_s": 30})
        counters_key = layout.counters_key(layout.bytes_of(sid))
        good = rt.store.kv.get(counters_key)
        assert good is not None
        damage = Batch()
        damage.put(counters_key, b"bad")
        rt.store.kv.write(damage)
    await anyio.sleep(60)  # closed while the deadline falls due
    async with open_runtime(tmp_path / "data") as rt:
        await anyio.sleep(5)  # the start's sweep told the session, which could not load
        repair = Batch()
        repair.put(counters_key, good)
        rt.store.kv.write(repair)
        rt.control.clear_failure(sid)  # as an operator does once the data is repaired
        await anyio.sleep(RETRY_S + 5)
        assert (await rt.sessions.get(sid)).status == "failed"
