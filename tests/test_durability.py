"""Durability modes: process (WAL) and machine (synced, by group commit)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import trio

from satchel import Runtime, StoreWriteFailedError, ValidationError, open_runtime
from satchel.actors import check_sessions
from satchel.storage import Batch, GroupCommit, MemoryStore, RocksStore, _keys


@pytest.fixture
async def machine(tmp_path: Path) -> Any:
    """A runtime on RocksDB in machine durability."""
    async with open_runtime(tmp_path / "data", durability="machine") as rt:
        yield rt


def syncs(rt: Runtime) -> int:
    """Synced writes the backend has been asked for."""
    kv = rt.store.kv
    assert isinstance(kv, RocksStore | MemoryStore)
    return kv.sync_writes


async def test_process_mode_does_not_sync_state_writes(tmp_path: Path) -> None:
    """In process durability a state update is a WAL write without fsync."""
    async with open_runtime(tmp_path / "data") as rt:
        sid = await rt.sessions.create()
        before = syncs(rt)
        await rt.sessions.set_state(sid, "k", 1)
        assert syncs(rt) == before
        assert rt.statistics().durability == "process"
        assert rt.control.statistics().group_commit is None


async def test_machine_mode_asks_rocksdb_for_synced_writes(machine: Runtime) -> None:
    """Every acknowledged write in machine durability was written with sync=True."""
    sid = await machine.sessions.create()
    kv = machine.store.kv
    assert isinstance(kv, RocksStore)
    assert kv.last_write_options is not None and kv.last_write_options.sync is True
    before = syncs(machine)
    await machine.sessions.set_state(sid, "k", 1)
    assert syncs(machine) == before + 1 and kv.last_write_options.sync is True
    await machine.artifacts.store(sid, "a", b"x" * 200_000, type="tool_result")
    assert kv.last_write_options.sync is True
    assert machine.statistics().durability == "machine"
    stats = machine.control.statistics()
    assert stats.durability == "machine" and stats.group_commit is not None


async def test_concurrent_writers_share_a_few_syncs(machine: Runtime) -> None:
    """Updates from 100 sessions at once are made durable by a handful of synced batches."""
    sessions = [await machine.sessions.create() for _ in range(100)]
    for sid in sessions:  # start every actor, so all updates arrive together
        await machine.sessions.set_state(sid, "step", 0)
    before = syncs(machine)
    async with anyio.create_task_group() as nursery:
        for sid in sessions:
            nursery.start_soon(machine.sessions.set_state, sid, "step", 1)
    assert syncs(machine) - before <= 10
    assert [await machine.sessions.get_state(s, "step") for s in sessions] == [1] * 100
    group = machine.control.statistics().group_commit
    assert group is not None and group.largest_group >= 10


async def test_order_is_kept_per_session(machine: Runtime) -> None:
    """Each session's writes land in the order they were acknowledged, interleaved or not."""
    sessions = [await machine.sessions.create() for _ in range(5)]

    async def writer(sid: str) -> None:
        for i in range(20):
            await machine.sessions.set_state(sid, "i", i)
            assert await machine.sessions.get_state(sid, "i") == i  # reads its own write

    async with anyio.create_task_group() as nursery:
        for sid in sessions:
            nursery.start_soon(writer, sid)
    for sid in sessions:
        entries = await machine.sessions.timeline(sid)
        values = [e.data["value"] for e in entries[1:]]
        assert values == list(range(20))


async def test_a_failed_group_fails_its_writers_and_writes_nothing(tmp_path: Path) -> None:
    """When the synced batch fails, every writer in it gets the error, nothing of it is
    stored, and the sessions go on afterwards with consistent records."""
    async with open_runtime(tmp_path / "data", durability="machine") as rt:
        sessions = [await rt.sessions.create() for _ in range(5)]
        for sid in sessions:
            await rt.sessions.set_state(sid, "k", "before")
        kv = rt.store.kv
        real_write = kv.write
        failing = True

        def write(batch: Batch, *, sync: bool | None = None) -> None:
            if failing and sync:
                raise OSError("disk full")
            real_write(batch, sync=sync)

        kv.write = write  # type: ignore[method-assign]
        errors: list[BaseException] = []

        async def update(sid: str) -> None:
            try:
                await rt.sessions.set_state(sid, "k", "after")
            except StoreWriteFailedError as error:
                errors.append(error)

        async with anyio.create_task_group() as nursery:
            for sid in sessions:
                nursery.start_soon(update, sid)
        assert len(errors) == 5
        assert [await rt.sessions.get_state(s, "k") for s in sessions] == ["before"] * 5
        failing = False
        for sid in sessions:
            await rt.sessions.set_state(sid, "k", "again")
            kinds = [e.kind for e in await rt.sessions.timeline(sid)]
            assert kinds == ["session_created", "state_set", "state_set"]
        assert (await check_sessions(rt.store.records)).clean


async def test_group_bounds_split_groups() -> None:
    """A group takes at most max_writes batches; the rest form the next group."""
    kv = MemoryStore()
    group = GroupCommit(kv, max_writes=3)
    async with anyio.create_task_group() as writers:
        for i in range(10):
            batch = Batch()
            batch.put(b"k%d" % i, b"v")
            writers.start_soon(group.write, batch)
    stats = group.statistics()
    assert (stats.writes, stats.groups, stats.largest_group) == (10, 4, 3)
    assert kv.sync_writes == 4 and kv.get(b"k9") == b"v"


async def test_writers_writing_again_at_once_keep_forming_one_group() -> None:
    """Writers that write again as soon as their group is on disk form one group each round,
    in whichever order Trio runs the batch that releases them (and the next leader)."""
    kv = MemoryStore()
    group = GroupCommit(kv)

    async def writer(i: int) -> None:
        for round_ in range(10):
            batch = Batch()
            batch.put(b"k%d-%d" % (i, round_), b"v")
            await group.write(batch)

    async with anyio.create_task_group() as writers:
        for i in range(50):
            writers.start_soon(writer, i)
    stats = group.statistics()
    assert (stats.writes, stats.groups, stats.largest_group) == (500, 10, 50)


async def test_session_scripts_read_their_own_writes(machine: Runtime) -> None:
    """A session script's write is durable before its next call reads it."""
    sid = await machine.sessions.create()
    script = (
        "for i = 1, 5 do State.set('n', i) assert(State.get('n') == i) end return State.get('n')"
    )
    assert await machine.run_lua(script, session_id=sid, output=lambda _: None) == [5]


async def test_durability_is_validated(tmp_path: Path) -> None:
    """An unknown durability is a ValidationError before anything opens."""
    with pytest.raises(ValidationError, match="durability"):
        async with open_runtime(tmp_path / "data", durability="disk"):  # type: ignore[arg-type]
            pass
    assert not (tmp_path / "data").exists()


async def test_a_cancelled_writer_is_still_written_with_its_group() -> None:
    """A write is no cancellation point: cancelled writers are written with their group and
    released, and see Cancelled at their next checkpoint (no turn is cut half-way)."""
    kv = MemoryStore()
    group = GroupCommit(kv)
    landed: list[int] = []
    released: list[int] = []

    async def writer(i: int, scope: anyio.CancelScope) -> None:
        batch = Batch()
        batch.put(b"k%d" % i, b"v")
        with scope:
            await group.write(batch)
            released.append(i)
            await anyio.lowlevel.checkpoint()
            landed.append(i)

    scopes = [anyio.CancelScope() for _ in range(4)]
    scopes[0].cancel()  # the leader
    scopes[2].cancel()  # a follower
    async with anyio.create_task_group() as nursery:
        for i, scope in enumerate(scopes):
            nursery.start_soon(writer, i, scope)
    assert sorted(released) == [0, 1, 2, 3] and sorted(landed) == [1, 3]
    assert all(kv.get(b"k%d" % i) == b"v" for i in range(4))
    assert group.statistics().groups == 1


async def test_machine_mode_writes_into_a_recycled_log(tmp_path: Path) -> None:
    """Opening in machine durability leaves a pre-sized, recycled write-ahead log and no
    trace of the key that filled it; process durability does not prime."""
    async with open_runtime(tmp_path / "data", durability="machine") as rt:
        logs = sorted((tmp_path / "data").glob("*.log"))
        assert max(log.stat().st_size for log in logs) >= 6 << 20
        assert rt.store.kv.get(_keys.WAL_PRIMER) is None
        sid = await rt.sessions.create()
        await rt.sessions.set_state(sid, "k", 1)
    async with open_runtime(tmp_path / "other") as rt:
        assert max(log.stat().st_size for log in (tmp_path / "other").glob("*.log")) < 1 << 20
    async with open_runtime(tmp_path / "data") as rt:
        assert await rt.sessions.get_state(sid, "k") == 1


def test_an_interrupt_in_the_synced_write_releases_every_writer() -> None:
    """A KeyboardInterrupt out of a group's synced write goes up the leader; the group's
    other writers, and those queued behind it, fail with StoreWriteFailedError, none hangs."""
    kv = MemoryStore()
    real_write = kv.write

    def interrupted(batch: Batch, *, sync: bool | None = None) -> None:
        if sync:
            raise KeyboardInterrupt
        real_write(batch, sync=sync)

    kv.write = interrupted  # type: ignore[method-assign]
    group = GroupCommit(kv, max_writes=2)
    outcomes: list[str] = []

    async def writer(i: int) -> None:
        batch = Batch()
        batch.put(b"k%d" % i, b"v")
        try:
            await group.write(batch)
        except KeyboardInterrupt:
            outcomes.append("interrupt")
        except StoreWriteFailedError:
            outcomes.append("failed")

    async def writers() -> None:
        async with anyio.create_task_group() as nursery:
            for i in range(5):
                nursery.start_soon(writer, i)

    # In a thread of its own: a writer left waiting (uncancellably) must fail the test, not
    # hang it.
    runner = threading.Thread(target=trio.run, args=(writers,), daemon=True)
    runner.start()
    runner.join(timeout=10)
    assert not runner.is_alive(), f"writers still waiting; done: {outcomes}"
    assert sorted(outcomes) == ["failed"] * 4 + ["interrupt"]
    assert kv.get(b"k0") is None and group.statistics().failed_groups == 1


async def test_a_lent_turn_unshielded_is_not_cut_by_an_observer_registered_meanwhile(
    tmp_path: Path,
) -> None:
    """An awaited observer registered while an unshielded lent turn waits on its group
    commit runs whole, even though the asker was cancelled meanwhile."""
    async with open_runtime(tmp_path / "data", durability="machine") as rt:
        sid = await rt.sessions.create()
        await rt.sessions.set_state(sid, "k", 0)  # live and idle: the next update is lent
        seen: list[str] = []
        # An untimed observer: the point is observed, and the turn is lent unshielded.
        rt.hooks.register("state_changed", lambda _: None, phase="after", deadline_s=None)

        async def slow_observer(_: object) -> None:
            seen.append("start")
            await anyio.lowlevel.checkpoint()
            seen.append("end")

        cell = rt.supervisor.resident(("session", sid))
        assert cell is not None
        asking = anyio.CancelScope()
        kv = rt.store.kv
        real_write = kv.write

        def write_then_meddle(batch: Batch, *, sync: bool | None = None) -> None:
            # Inside the lent turn's group commit: an awaited observer comes, the asker goes.
            real_write(batch, sync=sync)
            if sync and cell._lent and not asking.cancel_called:
                rt.hooks.register("state_changed", slow_observer, phase="after")
                asking.cancel()

        kv.write = write_then_meddle  # type: ignore[method-assign]
        with anyio.fail_after(10), asking:
            await rt.sessions.set_state(sid, "k", 1)
        kv.write = real_write  # type: ignore[method-assign]
        assert seen == ["start", "end"] and asking.cancelled_caught
        assert await rt.sessions.get_state(sid, "k") == 1
