"""SatchelSession's writes in the runtime's own loop: run in the caller's task (no task or hop
of their own) and settled before a cancellation is raised, however often it comes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from agents import TResponseInputItem

from satchel import Runtime, open_runtime
from satchel.integrations.openai_agents import SatchelSession

from .openai_support import slowed

ITEMS: list[TResponseInputItem] = [{"role": "user", "content": "a"}]


@pytest.fixture
def anyio_backend() -> str:
    """The SDK runs on asyncio only."""
    return "asyncio"


@pytest.fixture(params=["process", "machine"])
async def rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime on RocksDB at each durability (``machine`` writes wait on their sync)."""
    async with open_runtime(tmp_path / "satchel", durability=request.param) as runtime:
        yield runtime


async def test_a_write_runs_in_the_callers_task(rt: Runtime) -> None:
    """No task per call: the write runs in the task that calls add_items."""
    session = SatchelSession("direct", rt)
    seen: list[Any] = []
    real = rt.sessions.append_events

    async def append_events(*args: Any, **kwargs: Any) -> int:
        seen.append(asyncio.current_task())
        position: int = await real(*args, **kwargs)
        return position

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rt.sessions, "append_events", append_events)
        await session.add_items(ITEMS)
        await session.add_items(ITEMS)
    assert seen and all(task is asyncio.current_task() for task in seen)
    assert await session.get_items() == ITEMS * 2


async def test_repeated_cancellations_wait_for_the_write(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller cancelled three times while its write waits gets CancelledError once the
    write is done, and the write is whole."""
    session = SatchelSession("cancelled", rt)
    tasks = slowed(rt, monkeypatch)
    task = asyncio.create_task(session.add_items(ITEMS))
    await asyncio.sleep(0.01)
    for _ in range(3):
        task.cancel()
        await asyncio.sleep(0)
    assert not task.done()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tasks and tasks[0] is task
    assert await session.get_items() == ITEMS


async def test_a_timeout_during_a_write_is_raised_after_it(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``asyncio.timeout`` still recognises its cancellation, raised once the write lands."""
    session = SatchelSession("timed", rt)
    slowed(rt, monkeypatch)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.005):
            await session.add_items(ITEMS)
    assert await session.get_items() == ITEMS
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0


async def test_an_error_of_the_write_reaches_the_caller(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails after waiting raises its own error; cancelled meanwhile, the
    caller gets the cancellation, after the failure."""
    session = SatchelSession("failing", rt)

    async def append_events(*args: Any, **kwargs: Any) -> int:
        await asyncio.sleep(0.02)
        raise OSError("disk on fire")

    monkeypatch.setattr(rt.sessions, "append_events", append_events)
    with pytest.raises(OSError, match="disk on fire"):
        await session.add_items(ITEMS)
    task = asyncio.create_task(session.add_items(ITEMS))
    await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancelled_pop_returns_nothing_and_pops_once(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pop_item cancelled after it began still pops exactly one item."""
    session = SatchelSession("pop", rt)
    await session.add_items([*ITEMS, {"role": "user", "content": "b"}])
    slowed(rt, monkeypatch, method="pop_event")
    task = asyncio.create_task(session.pop_item())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await session.get_items() == ITEMS


async def test_writers_cancelled_during_a_group_commit_land_whole(tmp_path: Path) -> None:
    """Writers cancelled while the runtime's own synced write holds them (a group commit at
    machine durability, no slowed call) get CancelledError after their items land: none lost,
    none twice, in order."""
    async with open_runtime(tmp_path / "satchel", durability="machine") as rt:
        session = SatchelSession("grouped", rt)
        await session.add_items(ITEMS)
        outcomes: list[str] = []
        for n in range(20):
            tasks = [
                asyncio.create_task(session.add_items([{"role": "user", "content": f"{n}.{k}"}]))
                for k in range(3)
            ]
            await asyncio.sleep(0)
            for task in tasks:
                task.cancel()
            for task in tasks:
                try:
                    await task
                    outcomes.append("returned")
                except asyncio.CancelledError:
                    outcomes.append("cancelled")
        assert "cancelled" in outcomes  # the cancellations came while the writes waited
        items = await session.get_items()
        contents = [item["content"] for item in items]  # type: ignore[index]
        assert contents == ["a"] + [f"{n}.{k}" for n in range(20) for k in range(3)]
