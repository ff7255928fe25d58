"""Session policies on the virtual clock: max duration, idle timeout, retention, rate, quota."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from satchel import (
    QuotaExceededError,
    RateLimitedError,
    Runtime,
    SessionConfig,
    SessionNotFoundError,
    open_runtime,
)

DAY = 86_400


def live_sessions(rt: Runtime) -> set[str]:
    """Ids of the session actors now live."""
    return {a.id for a in rt.actors() if a.kind == "session"}


async def test_max_duration_fails_active_and_suspended_sessions(
    rt: Runtime, autojump_clock: trio.abc.Clock
) -> None:
    """A session still active or suspended past max_duration_s is failed with reason timeout."""
    active = await rt.sessions.create(config={"max_duration_s": 60})
    suspended = await rt.sessions.create(config={"max_duration_s": 90})
    finished = await rt.sessions.create(config={"max_duration_s": 30})
    await rt.sessions.suspend(suspended)
    await rt.sessions.complete(finished)
    await trio.sleep(59)
    assert (await rt.sessions.get(active)).status == "active"
    await trio.sleep(2)
    info = await rt.sessions.get(active)
    assert (info.status, info.failure_reason) == ("failed", "timeout")
    await trio.sleep(30)
    assert (await rt.sessions.get(suspended)).status == "failed"
    assert (await rt.sessions.get(finished)).status == "completed"
    assert (await rt.session(active).timeline())[-1].data["reason"] == "timeout"


async def test_idle_timeout_suspends_and_passivates(
    rt: Runtime, autojump_clock: trio.abc.Clock
) -> None:
    """Activity postpones the idle timeout; once idle, the session is suspended and passivated."""
    sid = await rt.sessions.create(config={"idle_timeout_s": 30})
    session = rt.session(sid)
    await trio.sleep(20)
    await session.set_state("k", 1)
    await trio.sleep(15)
    assert (await session.info()).status == "active"
    assert sid in live_sessions(rt)
    await trio.sleep(16)
    info = await session.info()
    assert info.status == "suspended"
    assert sid not in live_sessions(rt)
    assert (await session.timeline())[-1].data == {
        "from": "active",
        "to": "suspended",
        "reason": "idle",
    }
    await session.resume()
    await trio.sleep(31)
    assert (await session.info()).status == "suspended"


async def test_retention_archives_then_deletes(rt: Runtime, autojump_clock: trio.abc.Clock) -> None:
    """An ended session is archived after retention_days, then deleted after the second period."""
    config = {"retention_days": 1, "archive_retention_days": 2}
    done = await rt.sessions.create(config=config)
    kept = await rt.sessions.create(config=config)
    await rt.sessions.complete(done)
    await trio.sleep(DAY + 1)
    assert (await rt.sessions.get(done)).status == "archived"
    assert (await rt.sessions.get(kept)).status == "active"
    await trio.sleep(2 * DAY + 1)
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.get(done)
    assert (await rt.sessions.get(kept)).status == "active"
    assert (await rt.sessions.check()).clean


async def test_retention_keeps_an_archived_parent_of_children(
    rt: Runtime, autojump_clock: trio.abc.Clock
) -> None:
    """An archived session with children is not deleted by retention, and is retried later."""
    parent = await rt.sessions.create(config={"archive_retention_days": 1})
    child = await rt.sessions.create(parent_id=parent)
    await rt.sessions.complete(parent)
    await rt.sessions.archive(parent)
    await trio.sleep(DAY + 1)
    assert (await rt.sessions.get(parent)).status == "archived"
    await rt.sessions.delete(child)
    await trio.sleep(DAY + 1)
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.get(parent)


async def test_runtime_defaults_apply_and_can_be_overridden(autojump_clock: trio.abc.Clock) -> None:
    """session_defaults is the config of new sessions; fields given at creation override it."""
    defaults = SessionConfig(max_duration_s=10)
    async with open_runtime(store="memory", session_defaults=defaults) as rt:
        short = await rt.sessions.create()
        longer = await rt.sessions.create(config={"max_duration_s": 100})
        await trio.sleep(11)
        assert (await rt.sessions.get(short)).status == "failed"
        assert (await rt.sessions.get(longer)).status == "active"


async def test_deadlines_survive_reopen_and_catch_up(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Deadlines are persisted: after a reopen they fire, also those that fell due while closed."""
    async with open_runtime(tmp_path) as rt:
        soon = await rt.sessions.create(config={"max_duration_s": 50})
        later = await rt.sessions.create(config={"max_duration_s": 500})
    await trio.sleep(100)
    async with open_runtime(tmp_path) as rt:
        await trio.sleep(0.1)
        assert (await rt.sessions.get(soon)).status == "failed"
        assert (await rt.sessions.get(later)).status == "active"
        await trio.sleep(401)
        assert (await rt.sessions.get(later)).status == "failed"


async def test_rate_limit_refuses_bursts(rt: Runtime, autojump_clock: trio.abc.Clock) -> None:
    """Past its burst a session refuses operations with RateLimited until tokens refill."""
    session = rt.session(await rt.sessions.create(config={"rate_limit": 2, "rate_burst": 3}))
    for i in range(3):
        await session.set_state("k", i)
    with pytest.raises(RateLimitedError, match="rate limit"):
        await session.set_state("k", 99)
    with pytest.raises(RateLimitedError):
        await session.get_state("k")
    await trio.sleep(0.5)  # one token back
    await session.set_state("k", 3)
    with pytest.raises(RateLimitedError):
        await session.get_state("k")
    await trio.sleep(10)
    assert await session.get_state("k") == 3


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
