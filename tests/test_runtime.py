"""open_runtime on RocksDB, and the asyncio and synchronous embeddings from their own hosts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from satchel import ActorCrashedError, StoreLockedError, ValidationError, open_runtime
from satchel.actors.sessions import _session_layout as layout
from satchel.storage import Batch

from .kernel_actors import Add, Boom, stored_counter_spec

ROOT = Path(__file__).resolve().parent.parent


async def test_restart_reloads_state_from_rocksdb(tmp_path: Path) -> None:
    """A crashed actor comes back with the state it had written to RocksDB."""
    async with open_runtime(tmp_path) as rt:
        rt.register(stored_counter_spec(rt.store))
        assert await rt.ask("stored", "s1", Add(5)) == 5
        with pytest.raises(ActorCrashedError):
            await rt.ask("stored", "s1", Boom())
        assert await rt.ask("stored", "s1", Add(1)) == 6


async def test_state_and_reminders_survive_reopen(tmp_path: Path, autojump_clock: None) -> None:
    """After closing and reopening the data folder, state is there and reminders fire."""
    async with open_runtime(tmp_path) as rt:
        rt.register(stored_counter_spec(rt.store))
        await rt.ask("stored", "s1", Add(2))
        await rt.supervisor.reminders.set("stored", "s1", "wake", rt.supervisor.clock() + 60, None)
        assert rt.statistics().supervisor.reminders == 1
    async with open_runtime(tmp_path) as rt:
        rt.register(stored_counter_spec(rt.store))
        await anyio.sleep(61)
        assert await rt.ask("stored", "s1", Add(0)) == 1002
        assert rt.statistics().supervisor.reminders == 0


async def test_open_folder_twice_is_locked(tmp_path: Path) -> None:
    """A second runtime on a folder in use fails with StoreLockedError."""
    async with open_runtime(tmp_path):
        with pytest.raises(StoreLockedError):
            async with open_runtime(tmp_path):
                pass  # pragma: no cover


async def test_statistics_and_actor_list() -> None:
    """The runtime lists live actors and reports where its data lives."""
    async with open_runtime(store="memory") as rt:
        rt.register(stored_counter_spec(rt.store))
        await rt.ask("stored", "x", Add(1))
        stats = rt.statistics()
        # The deadline actor is live from the start; "x" is the one this test woke.
        assert (stats.path, stats.backend, stats.supervisor.live_actors) == (None, "memory", 2)
        assert [(a.kind, a.id) for a in rt.actors()] == [("deadlines", "sweeper"), ("stored", "x")]
        assert (await rt.check()).clean


async def test_check_covers_sessions_too() -> None:
    """``rt.check`` finds a session whose index entry went missing, not only blob problems,
    and ``fix`` restores the entry."""
    async with open_runtime(store="memory") as rt:
        sid = await rt.sessions.create(name="indexed")
        record = await rt.sessions.get(sid)
        batch = Batch()
        updated_us = round(record.updated_at.timestamp() * 1_000_000)
        batch.delete(layout.updated_key(layout.bytes_of(sid), updated_us))
        rt.store.kv.write(batch)
        found = await rt.check()
        assert found.blobs.clean and not found.sessions.clean
        assert not (await rt.check(fix=True)).clean
        assert (await rt.check()).clean


HOST_PRELUDE = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from tests.kernel_actors import Add, Boom, stored_counter_spec
"""

ASYNCIO_HOST = """
import asyncio
import satchel
from satchel import ActorCrashedError, RuntimeClosedError

async def main(path):
    async with satchel.open_runtime(path) as rt:
        rt.register(stored_counter_spec(rt.store))
        assert await rt.ask("stored", "a", Add(2)) == 2
        ref = rt.ref("stored", "a")
        assert await ref.ask(Add(3)) == 5
        try:
            await rt.ask("stored", "a", Boom())
        except ActorCrashedError:
            pass
        await asyncio.gather(*(rt.ask("stored", f"b{i}", Add(i)) for i in range(20)))
        task = asyncio.create_task(rt.ask("stored", "a", Add(1)))
        await asyncio.sleep(0)
        stored = [a for a in rt.actors() if a.kind == "stored"]
        print("live", len(stored), "value", await task)
        sid = await rt.sessions.create(name="aio", tags=["t"])
        session = rt.session(sid)
        await session.set_state("k", [1, {"a": None}])
        print("session", await session.get_state("k"), (await rt.sessions.get(sid)).name)
        await rt.artifacts.store(sid, "a.md", b"# a", type="agent_output")
        print("query", [a.name for a in await rt.artifacts.query(session_id=sid)])
    try:
        await rt.ask("stored", "a", Add(0))
    except RuntimeClosedError:
        print("closed")
    async with satchel.open_runtime(path) as rt:
        rt.register(stored_counter_spec(rt.store))
        print("reopened", await rt.ask("stored", "a", Add(0)))

asyncio.run(main(sys.argv[1]))
"""

SYNC_HOST = """
import satchel.sync
from satchel import StoreLockedError

with satchel.sync.open_runtime(sys.argv[1]) as rt:
    rt.register(stored_counter_spec(rt.store))
    print("value", rt.ask("stored", "a", Add(4)), rt.ref("stored", "a").ask(Add(1)))
    print("live", len([a for a in rt.actors() if a.kind == "stored"]))
    session = rt.session(rt.sessions.create(name="sync"))
    session.set_state("n", 3)
    ref = session.store_artifact("out.txt", b"hello", type="tool_result", metadata={"tags": ["t"]})
    other = rt.session(rt.sessions.create(name="other"))
    session.share_artifact("out.txt", other.id, "read")
    seen = other.artifacts.query(tags=["t"])
    print("artifact", other.artifacts.get(session.id, ref.id).content, [a.name for a in seen])
    print("audit", [e.action for e in rt.artifacts.audit_log(session.id, "out.txt")])
    session.complete()
    print("session", session.get_state("n"), session.info().status)
    try:
        with satchel.sync.open_runtime(sys.argv[1]):
            pass
    except StoreLockedError:
        print("locked")
with satchel.sync.open_runtime(sys.argv[1]) as rt:
    rt.register(stored_counter_spec(rt.store))
    print("reopened", rt.ask("stored", "a", Add(0)))
"""


def run_host(source: str, folder: Path) -> list[str]:
    """Run a host program in its own interpreter; its printed lines."""
    script = folder / "host.py"
    script.write_text(HOST_PRELUDE + textwrap.dedent(source))
    result = subprocess.run(
        [sys.executable, str(script), str(folder / "data")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_asyncio_host(tmp_path: Path) -> None:
    """An asyncio.run program opens the runtime in its own loop; calls after close fail."""
    assert run_host(ASYNCIO_HOST, tmp_path) == [
        "live 21 value 6",
        "session [1, {'a': None}] aio",
        "query ['a.md']",
        "closed",
        "reopened 6",
    ]


def test_sync_host(tmp_path: Path) -> None:
    """A plain script drives the runtime through satchel.sync, errors included."""
    assert run_host(SYNC_HOST, tmp_path) == [
        "value 4 5",
        "live 1",
        "artifact b'hello' ['out.txt']",
        "audit ['share', 'read']",
        "session 3 completed",
        "locked",
        "reopened 5",
    ]


async def test_the_actor_idle_time_is_a_setting(tmp_path: Path, autojump_clock: None) -> None:
    """A session's actor leaves memory after ``actor_idle_s`` without a message, and comes
    back on the next call; a bad value is a ValidationError."""
    async with open_runtime(store="memory", actor_idle_s=10) as rt:
        sid = await rt.sessions.create()
        await rt.sessions.set_state(sid, "k", 1)
        assert rt.control.statistics().supervisor.live_actors >= 1
        live = rt.control.statistics().supervisor.live_actors
        await anyio.sleep(60)
        assert rt.control.statistics().supervisor.live_actors < live
        assert await rt.sessions.get_state(sid, "k") == 1
    with pytest.raises(ValidationError, match="actor_idle_s"):
        async with open_runtime(store="memory", actor_idle_s=0):
            pass


async def test_an_error_of_the_hosts_block_comes_out_as_itself() -> None:
    """An exception the host's code raises inside ``open_runtime`` is not wrapped in an
    exception group by the runtime's task groups."""
    with pytest.raises(KeyError, match="mine"):
        async with open_runtime(store="memory"):
            raise KeyError("mine")


def test_an_error_in_a_background_sync_runtime_comes_out_as_itself(tmp_path: Path) -> None:
    """The same from the blocking facade whose loop runs in a thread of its own."""
    import satchel.sync

    with (
        pytest.raises(KeyError, match="mine"),
        satchel.sync.open_runtime(tmp_path / "data", background=True),
    ):
        raise KeyError("mine")
