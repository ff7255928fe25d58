"""The fast paths of the core writes: event-log turns lent to the asker, one-pass checks of
values, index-only batches, reverse scans, and a lone writer's group commit on asyncio."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import uvloop

import satchel
from satchel import HookContext, HookResult, open_runtime
from satchel.runtime import current_native
from satchel.runtime._errors import InvalidArgumentError, ValidationError
from satchel.storage import Batch, GroupCommit, MemoryStore
from satchel.storage import _group_commit as group_commit

from .test_asyncio_host import Host


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Host:
    """Runs ``main`` as an asyncio host would: ``asyncio.run``, or on uvloop."""
    factory = uvloop.new_event_loop if request.param == "uvloop" else None

    def host(main: Callable[[], Awaitable[Any]]) -> Any:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(main())  # type: ignore[arg-type]

    return host


async def test_an_append_is_lent_to_the_asker(tmp_path: Path) -> None:
    """With no hook registered, an append to an idle session runs in the asker's task (no
    mailbox hop), as set_state does; pop and clear too."""
    async with open_runtime(tmp_path / "data") as rt:
        sid = await rt.sessions.create()
        await rt.sessions.set_state(sid, "k", 1)  # live and idle
        queued: list[Any] = []
        offer = rt.supervisor.offer

        def offered(key: Any, item: Any) -> bool:
            queued.append(item[0])
            return offer(key, item)

        rt.supervisor.offer = offered  # type: ignore[method-assign]
        assert await rt.sessions.append_events(sid, [{"n": 1}], state={"s": 1}) == 1
        assert await rt.sessions.append_events(sid, [{"n": 2}, {"n": 3}]) == 3
        assert (await rt.sessions.pop_event(sid)) is not None
        assert await rt.sessions.clear_events(sid) == 2
        assert queued == []  # nothing went through the mailbox
        assert await rt.sessions.get_state(sid, "s") == 1
        assert await rt.sessions.last_event_position(sid) == 3


async def test_a_hook_still_queues_an_append(tmp_path: Path) -> None:
    """A state_changed hook runs for an append's variables (so the turn is queued, not
    lent) and may change them."""
    async with open_runtime(tmp_path / "data") as rt:
        sid = await rt.sessions.create()

        def double(context: HookContext) -> HookResult:
            return HookResult.modify({"value": context.data["value"] * 2})

        rt.hooks.register("state_changed", double)
        await rt.sessions.append_events(sid, [{"n": 1}], state={"s": 21})
        assert await rt.sessions.get_state(sid, "s") == 42


@pytest.mark.parametrize("durability", ["process", "machine"])
def test_cancelled_appenders_leave_the_log_whole(
    run: Host, tmp_path: Path, durability: str
) -> None:
    """asyncio host tasks cancelled at random points while appending (their turns lent):
    every acknowledged append is in the log with its state, positions have no gaps, and
    the journal and counters check clean."""

    async def main() -> tuple[dict[str, int], list[Any], dict[str, Any], bool]:
        async with satchel.open_runtime(tmp_path / "data", durability=durability) as rt:
            sid = await rt.sessions.create()
            acknowledged: dict[str, int] = {}

            async def appender(name: str) -> None:
                for i in range(10_000):
                    await rt.sessions.append_events(sid, [{"w": name, "i": i}], state={name: i})
                    acknowledged[name] = i

            rng = random.Random(11)
            for round_ in range(20):
                tasks = [asyncio.create_task(appender(f"w{round_}.{n}")) for n in range(3)]
                for _ in range(rng.randrange(1, 40)):
                    await asyncio.sleep(0)
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with pytest.raises(asyncio.CancelledError):
                        await task
            events = await rt.sessions.events(sid)
            state = await rt.sessions.state(sid)
            report = await rt.control.check()
            return acknowledged, events, state, report.clean

    acknowledged, events, state, clean = run(main)
    assert clean
    assert [e.position for e in events] == list(range(1, len(events) + 1))
    last: dict[str, int] = {}
    for event in events:
        name, i = event.data["w"], event.data["i"]
        assert i == last.get(name, -1) + 1  # each writer's appends in order, none lost
        last[name] = i
    assert last == {name: state[name] for name in last}  # each append's state with it
    for name, i in acknowledged.items():
        assert last[name] in (i, i + 1)  # one cut by its cancellation may have landed


async def test_checks_name_the_value_at_fault(tmp_path: Path) -> None:
    """The one-pass checks report what the separate ones did, with the path to the value."""
    async with open_runtime(tmp_path / "data") as rt:
        sid = await rt.sessions.create()
        with pytest.raises(ValidationError, match=r"state 'k'\['a'\]\[1\]: integer"):
            await rt.sessions.set_state(sid, "k", {"a": [1, 1 << 64]})
        with pytest.raises(InvalidArgumentError, match=r"state 'k'\['a'\]: bytes is not"):
            await rt.sessions.set_state(sid, "k", {"a": b"x"})
        with pytest.raises(ValidationError, match=r"state 'k'\['f'\]: nan is not a finite"):
            await rt.sessions.set_state(sid, "k", {"f": float("nan")})
        with pytest.raises(InvalidArgumentError, match=r"an event: map keys must be strings"):
            await rt.sessions.append_events(sid, [{1: "x"}])
        with pytest.raises(ValidationError, match=r"an event\['t'\] holds|an event holds"):
            await rt.sessions.append_events(sid, [{"t": "\ud800"}])
        with pytest.raises(ValidationError, match=r"state 'v' holds text that is not valid"):
            await rt.sessions.append_events(sid, [{"n": 1}], state={"v": "\udfff"})
        deep: Any = "x"
        for _ in range(70):
            deep = {"d": deep}
        with pytest.raises(ValidationError, match="nested more than 64 levels"):
            await rt.sessions.append_events(sid, [deep])
        # Values at the bounds pass; nothing refused above was written.
        await rt.sessions.set_state(sid, "k", {"a": [True, None, -(1 << 63), (1 << 64) - 1]})
        assert await rt.sessions.get_state(sid, "k") == {
            "a": [True, None, -(1 << 63), (1 << 64) - 1]
        }
        assert await rt.sessions.events(sid) == []


async def test_events_of_one_append_share_their_time_and_read_back_whole(
    tmp_path: Path,
) -> None:
    async with open_runtime(tmp_path / "data") as rt:
        sid = await rt.sessions.create()
        await rt.sessions.append_events(sid, [{"n": n} for n in range(5)], at=1_700_000_000.25)
        await rt.sessions.append_events(sid, [{"n": 5}], at=1_700_000_001)
        events = await rt.sessions.events(sid, last=4)
        assert [e.position for e in events] == [3, 4, 5, 6]
        assert [e.data for e in events] == [{"n": 2}, {"n": 3}, {"n": 4}, {"n": 5}]
        assert [e.at.timestamp() for e in events] == [1_700_000_000.25] * 3 + [1_700_000_001]
        assert events == (await rt.sessions.events(sid))[2:]  # forward and backward agree
        after = await rt.sessions.events(sid, after=1_700_000_000.5)
        assert [e.position for e in after] == [6]
        assert repr(events[-1]).startswith("SessionEvent(position=6, at=datetime")


async def test_index_only_batches_and_mixed_ones_land_whole(tmp_path: Path) -> None:
    """A batch of index puts, deletes and range deletes takes the short path; one with a
    blob-space value the long one; each lands whole."""
    from satchel.storage import BLOBS
    from satchel.storage._rocks import RocksStore

    kv = RocksStore(tmp_path / "kv")
    try:
        batch = Batch()
        for n in range(5):
            batch.put(b"k%d" % n, b"v%d" % n)
        batch.delete(b"k1")
        batch.delete_range(b"k3", b"k4")
        kv.write(batch)
        assert [k for k, _ in kv.scan(b"k", b"l")] == [b"k0", b"k2", b"k4"]
        mixed = Batch()
        mixed.put(b"k5", b"v5")
        mixed.put(b"b", b"blob", BLOBS)
        mixed.delete(b"k0")
        kv.write(mixed, sync=True)
        assert kv.get(b"b", BLOBS) == b"blob"
        assert [k for k, _ in kv.scan(b"k", b"l", reverse=True, limit=2)] == [b"k5", b"k4"]
        assert [k for k, _ in kv.scan(b"k2", b"k5", reverse=True)] == [b"k4", b"k2"]
        assert [k for k, _ in kv.scan(b"k3", b"k9", limit=1)] == [b"k4"]
    finally:
        kv.close()


def test_a_lone_writer_on_asyncio_skips_passes_but_not_for_long() -> None:
    """With nothing else runnable a group is written without a scheduler pass, at most
    _MAX_SKIPS times in a row; writers that can run still join one group."""

    async def main() -> None:
        kv = MemoryStore()
        group = GroupCommit(kv)
        native = current_native()
        passes = 0
        real_pass = type(native).uncancellable_pass

        async def counted(self: Any) -> None:
            nonlocal passes
            passes += 1
            await real_pass(self)

        type(native).uncancellable_pass = counted  # type: ignore[method-assign]
        try:
            for n in range(8):
                batch = Batch()
                batch.put(b"k%d" % n, b"v")
                await group.write(batch)
            # Of each _MAX_SKIPS + 1 lone groups in a row, one took its pass.
            assert passes == 8 // (group_commit._MAX_SKIPS + 1)
            before = group.statistics().groups

            async def writer(n: int) -> None:
                batch = Batch()
                batch.put(b"c%d" % n, b"v")
                await group.write(batch)

            async with anyio.create_task_group() as tasks:
                for n in range(10):
                    tasks.start_soon(writer, n)
            stats = group.statistics()
            assert stats.groups - before <= 2 and stats.largest_group >= 9
            assert all(kv.get(b"c%d" % n) == b"v" for n in range(10))
        finally:
            type(native).uncancellable_pass = real_pass  # type: ignore[method-assign]

    asyncio.run(main())


async def test_trio_takes_every_pass() -> None:
    """Where the loop cannot tell that a writer is alone (Trio), each group takes its pass."""
    native = current_native()
    if native.name == "trio":
        assert not native.alone()
