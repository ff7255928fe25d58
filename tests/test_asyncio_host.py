"""The runtime embedded in a plain asyncio program (``asyncio.run``, no AnyIO runner): the
host's own coroutines, iterators, hooks and cancellations, as agent frameworks use them."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import trio
import uvloop

import satchel
from satchel import (
    ForeignLoopError,
    HookContext,
    HookResult,
    RuntimeClosedError,
    StoreLockedError,
)
from satchel.storage import BlobLimits

SMALL = BlobLimits(chunk_size=4096, compress_min=64, max_size=1 << 20)


Host = Callable[[Callable[[], Awaitable[Any]]], Any]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Host:
    """Runs ``main`` as an asyncio host would: ``asyncio.run``, or on uvloop."""
    factory = uvloop.new_event_loop if request.param == "uvloop" else None

    def host(main: Callable[[], Awaitable[Any]]) -> Any:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(main())  # type: ignore[arg-type]

    return host


async def pieces(content: bytes, size: int) -> AsyncIterator[bytes]:
    """``content`` in pieces, as an asyncio producer that awaits between them."""
    for start in range(0, len(content), size):
        await asyncio.sleep(0)
        yield content[start : start + size]


def test_streams_both_ways_with_asyncio_iterators(run: Host, tmp_path: Path) -> None:
    """An artifact is stored from an asyncio async generator and read back with async for."""
    content = random.Random(1).randbytes(50_000)

    async def main() -> tuple[bytes, int]:
        async with satchel.open_runtime(tmp_path / "data", limits=SMALL) as rt:
            session = rt.session(await rt.sessions.create())
            ref = await session.store_artifact("big.bin", pieces(content, 3000), type="tool_result")
            chunks = [chunk async for chunk in session.stream_artifact(ref)]
            return b"".join(chunks), len(chunks)

    read, count = run(main)
    assert (read, count) == (content, 13)


def test_async_hooks_await_the_hosts_loop(run: Host, tmp_path: Path) -> None:
    """A before-hook awaiting asyncio (a sleep, a future set by a loop callback) runs and its
    change lands; an observer awaiting asyncio sees the write."""
    seen: list[Any] = []

    async def double(context: HookContext) -> HookResult:
        await asyncio.sleep(0.001)
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(future.set_result, 2)
        factor = await future
        return HookResult.modify({"value": context.data["value"] * factor})

    async def observe(context: HookContext) -> None:
        await asyncio.sleep(0)
        seen.append(context.data["value"])

    async def main() -> Any:
        async with satchel.open_runtime(store="memory") as rt:
            rt.hooks.register("state_changed", double)
            rt.hooks.register("state_changed", observe, phase="after")
            session = rt.session(await rt.sessions.create())
            await session.set_state("n", 21)
            return await session.get_state("n")

    assert run(main) == 42
    assert seen == [42]


def test_subscriptions_follow_writes_from_other_tasks(run: Host, tmp_path: Path) -> None:
    """A subscriber reads the events of writes made by another asyncio task."""

    async def main() -> list[str]:
        async with satchel.open_runtime(store="memory") as rt:
            sid = await rt.sessions.create()
            session = rt.session(sid)
            async with rt.events.subscribe(session_id=sid, kinds=["state_set"]) as events:

                async def writer() -> None:
                    for i in range(3):
                        await session.set_state(f"k{i}", i)

                task = asyncio.create_task(writer())
                keys = []
                async for event in events:
                    keys.append(event.data["key"])
                    if len(keys) == 3:
                        break
                await task
            return keys

    assert run(main) == ["k0", "k1", "k2"]


@pytest.mark.parametrize("durability", ["process", "machine"])
def test_cancelled_host_tasks_leave_sessions_consistent(
    run: Host, tmp_path: Path, durability: str
) -> None:
    """Host tasks cancelled at random points (Task.cancel, asyncio.timeout) while writing
    leave every acknowledged write in place, nothing half-written, and the next call works."""

    async def main() -> tuple[dict[str, int], dict[str, Any], bool, Any]:
        async with satchel.open_runtime(tmp_path / "data", durability=durability) as rt:
            session = rt.session(await rt.sessions.create())
            acknowledged: dict[str, int] = {}

            async def writer(name: str) -> None:
                for i in range(10_000):
                    await session.set_state(name, i)
                    acknowledged[name] = i

            rng = random.Random(7)
            for round_ in range(30):
                tasks = [asyncio.create_task(writer(f"w{round_}.{n}")) for n in range(4)]
                for _ in range(rng.randrange(1, 40)):
                    await asyncio.sleep(0)
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with pytest.raises(asyncio.CancelledError):
                        await task
            for round_ in range(10):
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.0005 * (round_ + 1)):
                        await writer(f"t{round_}")
            stored = {key: await session.get_state(key) for key in await session.list_state()}
            report = await rt.control.check()
            await session.set_state("after", 1)
            return acknowledged, stored, report.clean, await session.get_state("after")

    acknowledged, stored, ok, after = run(main)
    assert ok and after == 1
    # Each write the host saw return is there; a write cut by its cancellation may have
    # landed too (it was already handed over), one step ahead at most.
    for key, value in acknowledged.items():
        assert stored[key] in (value, value + 1), key
    assert set(stored) - {"after"} >= set(acknowledged)


def test_a_cancelled_queued_ask_lets_its_turn_finish(run: Host, tmp_path: Path) -> None:
    """With an awaited observer registered (turns queued, not lent, on asyncio), a host task
    cancelled mid-write gets CancelledError, the write completes whole, the session works."""

    async def main() -> tuple[Any, Any]:
        observing = asyncio.Event()

        async def slow(context: HookContext) -> None:
            if context.data["key"] == "k":
                observing.set()  # the turn is under way: written, its observer awaited
                await asyncio.sleep(0.01)

        async with satchel.open_runtime(store="memory") as rt:
            rt.hooks.register("state_changed", slow, phase="after")
            session = rt.session(await rt.sessions.create())
            task = asyncio.create_task(session.set_state("k", "v"))
            await observing.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await session.set_state("k2", "v2")
            return await session.get_state("k"), await session.get_state("k2")

    assert run(main) == ("v", "v2")


def test_a_call_from_another_loop_names_the_fix(run: Host, tmp_path: Path) -> None:
    """Calling the runtime from a thread running its own asyncio loop, or from Trio, raises
    ForeignLoopError naming satchel.sync; the runtime keeps working in its own loop."""
    errors: list[BaseException] = []

    async def main() -> Any:
        async with satchel.open_runtime(store="memory") as rt:
            session = rt.session(await rt.sessions.create())

            def other_thread() -> None:
                try:
                    asyncio.run(session.set_state("k", 1))
                except ForeignLoopError as error:
                    errors.append(error)
                try:
                    trio.run(session.set_state, "k", 1)
                except ForeignLoopError as error:
                    errors.append(error)

            await asyncio.to_thread(other_thread)
            await session.set_state("k", 2)
            return await session.get_state("k")

    assert run(main) == 2
    assert [type(e) for e in errors] == [ForeignLoopError, ForeignLoopError]
    assert "satchel.sync" in str(errors[0])


def test_a_second_opener_is_told_the_holders_pid(run: Host, tmp_path: Path) -> None:
    """Opening a data folder another runtime holds raises StoreLocked naming that holder."""

    async def main() -> str:
        async with satchel.open_runtime(tmp_path / "data"):
            with pytest.raises(StoreLockedError) as caught:
                async with satchel.open_runtime(tmp_path / "data"):
                    pass
            return str(caught.value)

    message = run(main)
    assert f"pid {os.getpid()}" in message


def test_a_deadline_passing_during_a_synced_write_ends_its_own_block(
    run: Host, tmp_path: Path
) -> None:
    """asyncio.timeout and AnyIO deadlines that pass while a lent write waits on its group
    commit end their own block (TimeoutError, cancelled_caught); the write is whole and
    nothing raises after the block."""

    async def main() -> tuple[str, bool, str, Any]:
        async with satchel.open_runtime(tmp_path / "data", durability="machine") as rt:
            session = rt.session(await rt.sessions.create())
            for i in range(3):  # past the lone writes the group commit makes at once
                await session.set_state("k", i)
            outcome = "no TimeoutError"
            try:
                async with asyncio.timeout(0):
                    await session.set_state("k", 10)
            except TimeoutError:
                outcome = "TimeoutError"
            with anyio.move_on_after(0) as scope:
                await session.set_state("k", 11)
            try:
                await asyncio.sleep(0)
                after = "nothing"
            except asyncio.CancelledError:
                after = "a stray CancelledError"
            return outcome, scope.cancelled_caught, after, await session.get_state("k")

    assert run(main) == ("TimeoutError", True, "nothing", 11)


def test_calls_in_flight_when_the_runtime_closes(run: Host, tmp_path: Path) -> None:
    """Host tasks still writing when the runtime closes get RuntimeClosedError; every write
    they saw return is there on reopening, nothing half-written, the folder checks clean."""

    async def main() -> tuple[list[Any], dict[str, int], dict[str, Any], bool]:
        acknowledged: dict[str, int] = {}
        async with satchel.open_runtime(tmp_path / "data") as rt:
            session = rt.session(await rt.sessions.create())

            async def writer(name: str) -> None:
                for i in range(1_000_000):
                    await session.set_state(name, i)
                    acknowledged[name] = i

            tasks = [asyncio.create_task(writer(f"w{n}")) for n in range(4)]
            await asyncio.sleep(0.02)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        async with satchel.open_runtime(tmp_path / "data") as rt:
            again = rt.session(session.id)
            stored = {key: await again.get_state(key) for key in await again.list_state()}
            clean = (await rt.control.check()).clean
        return [type(o) for o in outcomes], acknowledged, stored, clean

    outcomes, acknowledged, stored, clean = run(main)
    assert outcomes == [RuntimeClosedError] * 4
    assert clean and set(stored) == set(acknowledged)
    for key, value in acknowledged.items():
        assert stored[key] in (value, value + 1), key
