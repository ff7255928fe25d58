"""Scheduled replays: run by the hook actor when due, repeat, cancel, survive a restart."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from satchel import (
    IntegrityError,
    InvalidArgumentError,
    Runtime,
    SessionNotFoundError,
    ValidationError,
    open_runtime,
)


async def test_a_replay_runs_when_due_and_keeps_its_result(
    rt: Runtime, autojump_clock: None
) -> None:
    """A one-shot schedule runs at its time, once; its result is kept and listed."""
    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "k", 1)
    when = rt.supervisor.clock() + 30
    schedule = await rt.replays.schedule(sid, when=when, mode="exact")
    assert [s.id for s in await rt.replays.list(sid)] == [schedule]
    await anyio.sleep(20)
    assert await rt.replays.results(schedule) == []
    await anyio.sleep(20)
    (run,) = await rt.replays.results(schedule)
    assert (run.events_replayed, run.error) == (2, None)
    await anyio.sleep(600)
    assert len(await rt.replays.results(schedule)) == 1
    assert await rt.replays.cancel(schedule)
    assert await rt.replays.list() == []
    assert not await rt.replays.cancel(schedule)


async def test_repeating_schedules_and_cancel(rt: Runtime, autojump_clock: None) -> None:
    """An interval schedule runs every interval until cancelled."""
    sid = await rt.sessions.create()
    schedule = await rt.replays.schedule(sid, every_s=60)
    await anyio.sleep(185)
    runs = await rt.replays.results(schedule)
    assert len(runs) == 4  # now, +60, +120, +180
    assert runs == sorted(runs, key=lambda r: r.ran_at)
    await rt.replays.cancel(schedule)
    await anyio.sleep(300)
    assert await rt.replays.results(schedule) == []


async def test_a_schedule_survives_a_restart(tmp_path: Path, autojump_clock: None) -> None:
    """A schedule made before closing fires after reopening, including one that fell due
    while the runtime was closed."""
    async with open_runtime(tmp_path) as rt:
        sid = await rt.sessions.create()
        await rt.sessions.set_state(sid, "k", 1)
        schedule = await rt.replays.schedule(sid, when=rt.supervisor.clock() + 100)
    await anyio.sleep(500)  # closed while it falls due
    async with open_runtime(tmp_path) as rt:
        await anyio.sleep(1)
        (run,) = await rt.replays.results(schedule)
        assert run.events_replayed == 2


async def test_schedules_are_checked_and_dropped_with_their_session(
    rt: Runtime, autojump_clock: None
) -> None:
    """Bad schedules are refused; one whose session is gone is dropped when it fires."""
    sid = await rt.sessions.create()
    with pytest.raises(SessionNotFoundError):
        await rt.replays.schedule("00000000-0000-4000-8000-000000000000")
    with pytest.raises(ValidationError):
        await rt.replays.schedule(sid, mode="fast")
    with pytest.raises(ValidationError):
        await rt.replays.schedule(sid, every_s=0)
    with pytest.raises(InvalidArgumentError):
        await rt.replays.cancel("nope")
    schedule = await rt.replays.schedule(sid, when=rt.supervisor.clock() + 10, every_s=10)
    await rt.sessions.delete(sid)
    await anyio.sleep(30)
    assert await rt.replays.list() == []
    assert await rt.replays.results(schedule) == []


async def test_schedules_go_with_their_session(rt: Runtime, autojump_clock: None) -> None:
    """Deleting a session deletes its schedules and their runs in the same batch."""
    sid = await rt.sessions.create()
    keep = await rt.sessions.create()
    schedule = await rt.replays.schedule(sid, every_s=10)
    other = await rt.replays.schedule(keep, every_s=10)
    await anyio.sleep(1)
    assert await rt.replays.results(schedule)
    await rt.sessions.delete(sid)
    assert [s.id for s in await rt.replays.list()] == [other]
    assert await rt.replays.results(schedule) == []
    assert (await rt.sessions.check()).clean


async def test_a_replay_repeats_no_faster_than_the_runtime_allows(tmp_path: Path) -> None:
    """An interval under ``min_replay_interval_s`` (default 1 s) is a ValidationError (it
    once burned a core at 1e-9 s); a runtime may lower the floor."""
    async with open_runtime(store="memory") as rt:
        sid = await rt.sessions.create()
        for every_s in (1e-9, 0.5, float("inf")):
            with pytest.raises(ValidationError, match="min_replay_interval_s"):
                await rt.replays.schedule(sid, every_s=every_s)
        assert await rt.replays.schedule(sid, every_s=1)
    async with open_runtime(store="memory", min_replay_interval_s=0.01) as rt:
        sid = await rt.sessions.create()
        assert await rt.replays.schedule(sid, every_s=0.05)


async def test_a_run_kept_with_a_time_no_date_holds_reads_as_integrity_error(rt: Runtime) -> None:
    """A kept run whose stored time no date can hold (past the year 9999: a damaged record)
    makes ``results`` raise IntegrityError, not OverflowError."""
    from satchel.actors.hooks._hook_records import HookRecords
    from satchel.actors.hooks._schedule_layout import StoredRun

    sid = await rt.sessions.create()
    schedule = await rt.replays.schedule(sid, when=rt.supervisor.clock() + 3600)
    damaged = StoredRun(2**62, 1, 0, 0, 0, None)
    await HookRecords(rt.store.records).keep_run(schedule, damaged, kept=2)
    with pytest.raises(IntegrityError, match="replay run"):
        await rt.replays.results(schedule)
