"""Faults of the storage ports found in review, each kept as the test that failed before its
fix: conditions on PostgreSQL, dropped and cancelled connections, typed errors, and what
SplitRecords must not lose or misread."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import anyio
import pytest
import sniffio

from satchel import (
    InvalidArgumentError,
    StoreUnavailableError,
    ValidationError,
    WriteConflictError,
)
from satchel.storage import (
    ABSENT,
    BLOBS,
    INDEX,
    Batch,
    GroupCommit,
    LocalObjects,
    LocalRecords,
    MemoryStore,
    PostgresRecords,
    S3Objects,
    SplitRecords,
)

from .ports import open_objects, server_url

pytestmark = pytest.mark.anyio

BIG = bytes(range(256)) * 4


# -- helpers -----------------------------------------------------------------------------


def _pg_sync(url: str, autocommit: bool = True) -> Any:
    import psycopg

    return psycopg.Connection.connect(url, autocommit=autocommit)


async def _pg_exec(conn: Any, sql: str, params: Sequence[Any] | None = None) -> list[Any]:
    def run() -> list[Any]:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []

    return await anyio.to_thread.run_sync(run)


async def _wait_for_lock_waiters(watch: Any, app: str, count: int) -> None:
    with anyio.fail_after(20):
        while True:
            rows = await _pg_exec(
                watch,
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                "AND wait_event_type = 'Lock'",
                (app,),
            )
            if rows[0][0] >= count:
                return
            await anyio.sleep(0.02)


def _with_app(url: str, app: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={app}"


# -- PostgreSQL ----------------------------------------------------------------------------


async def test_pg_delete_expect_absent_takes_no_lock_write_skew() -> None:
    """Two batches, each asserting (delete expect=ABSENT) that the key the other one puts is
    absent, both commit on PostgreSQL: no serial order allows that (the second one's
    condition fails in either order), and the memory and RocksDB backends refuse one.
    ``PERFORM … FOR UPDATE`` neither sees nor waits for a row another transaction is
    inserting, so the ABSENT check of a delete holds nothing until commit."""
    url = server_url("SATCHEL_TEST_POSTGRES")
    table = f"t_{uuid.uuid4().hex[:16]}"
    app = f"skew{uuid.uuid4().hex[:8]}"
    one = await PostgresRecords.open(_with_app(url, app), table=table)
    two = await PostgresRecords.open(_with_app(url, app), table=table)  # a second process
    blocker = await anyio.to_thread.run_sync(_pg_sync, url, False)
    watch = await anyio.to_thread.run_sync(_pg_sync, url, True)
    try:
        # Another writer is inserting a and b (uncommitted): it only widens the window in
        # which both batches have checked their condition and neither has written.
        await _pg_exec(blocker, f"INSERT INTO {table} VALUES (0, 'a', ''), (0, 'b', '')")
        results: dict[str, bool] = {}

        async def run(name: str, records: PostgresRecords, absent: bytes, put: bytes) -> None:
            batch = Batch()
            batch.delete(absent, expect=ABSENT)  # "absent must not exist"
            batch.put(put, name.encode())
            try:
                await records.write(batch)
                results[name] = True
            except WriteConflictError:
                results[name] = False

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run, "T1", one, b"a", b"b")
            tasks.start_soon(run, "T2", two, b"b", b"a")
            await _wait_for_lock_waiters(watch, app, 2)
            await anyio.to_thread.run_sync(blocker.rollback)
        # Serializable outcomes: exactly one of them commits.
        assert sorted(results.values()) == [False, True], (
            results,
            await one.scan(b"", b"\xff"),
        )
    finally:
        await anyio.to_thread.run_sync(blocker.close)
        await anyio.to_thread.run_sync(watch.close)
        await one.drop()
        await one.aclose()
        await two.aclose()


async def test_pg_reads_fail_after_a_restart_when_two_connections_were_idle() -> None:
    """After the server cut every session (a restart), a read retries once, on the next idle
    connection, which is just as dead: the read fails with StoreUnavailableError although
    the server is up. ("the first call after the server is back succeeds" holds only with
    one idle connection, as in test_postgres_faults.)"""
    url = server_url("SATCHEL_TEST_POSTGRES")
    app = f"drop{uuid.uuid4().hex[:8]}"
    records = await PostgresRecords.open(_with_app(url, app), table=f"t_{uuid.uuid4().hex[:16]}")
    watch = await anyio.to_thread.run_sync(_pg_sync, url, True)
    try:
        batch = Batch()
        batch.put(b"kept", b"1")
        await records.write(batch)

        async def scan_slowly() -> None:
            await records._fetch("SELECT pg_sleep(0.3)", ())

        async with anyio.create_task_group() as tasks:  # three connections, all idle after
            for _ in range(3):
                tasks.start_soon(scan_slowly)
        await _pg_exec(
            watch,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (app,),
        )
        await anyio.sleep(0.2)
        assert await records.get(b"kept") == b"1"
    finally:
        await anyio.to_thread.run_sync(watch.close)
        for _ in range(5):  # each dead idle connection fails one call (writes too)
            try:
                await records.drop()
                break
            except StoreUnavailableError:
                continue
        await records.aclose()


async def test_pg_an_over_long_key_is_an_invalid_argument() -> None:
    """A key past the btree's row size limit (~2.7 kB) fails with StoreUnavailableError
    ("PostgreSQL did not answer"): ProgramLimitExceeded (54000) is an OperationalError in
    psycopg, and _translate maps every OperationalError to "unavailable". The error is
    permanent, the server did answer, and StoreUnavailableError tells the caller the
    write may have been committed and is worth retrying; InvalidArgumentError is right."""
    url = server_url("SATCHEL_TEST_POSTGRES")
    records = await PostgresRecords.open(url, table=f"t_{uuid.uuid4().hex[:16]}")
    try:
        import os

        batch = Batch()
        batch.put(os.urandom(8192), b"v")
        with pytest.raises(InvalidArgumentError):
            await records.write(batch)
    finally:
        await records.drop()
        await records.aclose()


# -- S3 ------------------------------------------------------------------------------------


async def test_s3_a_server_that_drops_connections_is_a_typed_error() -> None:
    """An endpoint that accepts a connection and closes it without an answer fails with
    botocore's ConnectionClosedError (an HTTPClientError, not a ConnectionError), which
    S3Objects passes on raw instead of StoreUnavailableError. ReadTimeoutError and
    ResponseStreamingError (a body cut mid-read) are of the same family."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.recv(65536)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(StoreUnavailableError):
            await S3Objects.open(f"s3://bucket?endpoint=http://127.0.0.1:{port}")
    finally:
        stop.set()
        thread.join()
        listener.close()


# -- SplitRecords --------------------------------------------------------------------------


class CommitThenFail:
    """A record store whose write commits and then fails: a connection dropped (or a task
    cancelled) after the server committed, before the reply arrived. StoreUnavailableError
    says so itself: "a write that fails with it may or may not have been committed"."""

    def __init__(self, inner: LocalRecords) -> None:
        self.inner = inner
        self.fail_next = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def write(self, batch: Batch, *, sync: bool | None = None) -> None:
        await self.inner.write(batch, sync=sync)
        if self.fail_next:
            self.fail_next = False
            raise StoreUnavailableError("the connection broke before the reply")


async def test_split_a_write_of_unknown_outcome_must_not_delete_its_objects() -> None:
    """When the record commit fails with an error that does not mean "not committed",
    SplitRecords deletes the objects it put although the committed record names them: the
    value is lost (get raises ObjectNotFoundError for a record that exists)."""
    records = CommitThenFail(LocalRecords(MemoryStore()))
    split = SplitRecords(records, LocalObjects(MemoryStore()), namespace="n", large=16)  # type: ignore[arg-type]
    batch = Batch()
    batch.put(b"chunk", BIG, BLOBS)
    records.fail_next = True
    with pytest.raises(StoreUnavailableError):
        await split.write(batch)
    if await split.records.get(b"chunk", BLOBS) is not None:  # it was committed
        assert await split.get(b"chunk", BLOBS) == BIG


async def test_split_pg_s3_a_write_cancelled_after_its_commit_loses_its_value() -> None:
    """The same on PostgreSQL with S3, with no fake: an asyncio task cancelled while its
    commit's reply is on its way (the server committed) makes SplitRecords delete the
    object the committed row names."""
    if sniffio.current_async_library() != "asyncio":
        pytest.skip("asyncio only: a Trio cancellation does not cut a commit in its thread")
    url = server_url("SATCHEL_TEST_POSTGRES")
    app = f"cancel{uuid.uuid4().hex[:8]}"
    table = f"t_{uuid.uuid4().hex[:16]}"
    rows = await PostgresRecords.open(_with_app(url, app), table=table)
    blocker = await anyio.to_thread.run_sync(_pg_sync, url, False)
    watch = await anyio.to_thread.run_sync(_pg_sync, url, True)
    try:
        async with open_objects("s3", None) as objects:  # type: ignore[arg-type]
            split = SplitRecords(rows, objects, namespace="n", large=16)
            first = Batch()
            first.put(b"chunk", b"small")
            await split.write(first)  # an index record the commit will wait on
            await _pg_exec(blocker, f"SELECT 1 FROM {table} WHERE key = 'chunk' FOR UPDATE")
            batch = Batch()
            batch.put(b"chunk", BIG, BLOBS)
            batch.put(b"chunk", b"names the object")
            import asyncio

            task = asyncio.ensure_future(split.write(batch))
            await _wait_for_lock_waiters(watch, app, 1)
            await anyio.to_thread.run_sync(blocker.commit)  # the commit goes on at once
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            committed = await rows.get(b"chunk")
            if committed == b"names the object":
                assert await split.get(b"chunk", BLOBS) == BIG
            else:
                pytest.skip("the cancellation came before the commit (timing)")
    finally:
        await anyio.to_thread.run_sync(blocker.close)
        await anyio.to_thread.run_sync(watch.close)
        await rows.drop()
        await rows.aclose()


class GatedObjects(LocalObjects):
    """Objects whose next get waits until released (a slow S3 GET)."""

    def __init__(self, kv: MemoryStore) -> None:
        super().__init__(kv)
        self.gate: anyio.Event | None = None
        self.entered = anyio.Event()

    async def get(self, key: str) -> bytes:
        if self.gate is not None:
            gate, self.gate = self.gate, None
            self.entered.set()
            await gate.wait()
        return await super().get(key)


async def test_split_a_read_racing_an_overwrite_fails() -> None:
    """A reader that read a row and is fetching its object fails with ObjectNotFoundError
    when a writer replaces the value meanwhile (the superseded object is deleted right
    after the commit). get must give the old or the new value, never an error: the module
    docstring's "a put over a large value writes a new object rather than replace the one a
    reader may be reading" is defeated by the immediate delete. It happens even when the
    value is rewritten unchanged (content-named chunks written twice)."""
    objects = GatedObjects(MemoryStore())
    split = SplitRecords(LocalRecords(MemoryStore()), objects, namespace="n", large=16)
    batch = Batch()
    batch.put(b"chunk", BIG, BLOBS)
    await split.write(batch)
    objects.gate = gate = anyio.Event()
    got: list[object] = []

    async def read() -> None:
        try:
            got.append(await split.get(b"chunk", BLOBS))
        except Exception as error:
            got.append(error)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(read)
        await objects.entered.wait()
        again = Batch()
        again.put(b"chunk", BIG, BLOBS)  # the same bytes again
        await split.write(again)
        gate.set()
    assert got == [BIG]


# -- GroupCommit ---------------------------------------------------------------------------


class ReadFails(MemoryStore):
    """A store whose index read of one key fails once another key was read (an I/O error
    under the group commit, after a writer ahead in the group was checked)."""

    taken_read = False

    def get(self, key: bytes, space: Any = INDEX) -> bytes | None:
        if key == b"taken":
            self.taken_read = True
        if key == b"unreadable" and self.taken_read:
            raise OSError("read failed")
        return super().get(key, space)


async def test_group_commit_a_conflict_is_reported_as_a_write_failure() -> None:
    """In a group, writer 1's condition fails (WriteConflictError, it is released), then the
    read for writer 2's condition fails: _flush releases the whole group again and
    overwrites writer 1's error, so writer 1 sees StoreWriteFailedError for what was a
    plain conflict (a caller that retries on conflicts gives up)."""
    kv = ReadFails()
    seed = Batch()
    seed.put(b"taken", b"1")
    kv.write(seed)
    group = GroupCommit(kv)
    errors: dict[str, BaseException | None] = {}

    async def write(name: str, key: bytes) -> None:
        batch = Batch()
        batch.put(key, b"x", expect=ABSENT)
        try:
            await group.write(batch)
            errors[name] = None
        except Exception as error:
            errors[name] = error

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(write, "conflicting", b"taken")
        tasks.start_soon(write, "unreadable", b"unreadable")
    assert isinstance(errors["conflicting"], WriteConflictError), errors


async def test_split_reads_rows_a_plain_record_store_wrote_as_garbage() -> None:
    """SplitRecords stores blob rows with a one-byte tag (0 inline, 1 object name) in the
    same table and space a plain record store uses for raw values, with no marker of the
    format. Opening an existing PostgreSQL store with an s3:// URL added (open_networked)
    then misreads every blob written before: a value starting with 0x00 loses its first
    byte, any other is taken for an object name. (Dropping the URL later returns tagged
    rows as values.)"""
    records = LocalRecords(MemoryStore())
    plain = Batch()
    plain.put(b"chunk", b"\x00\x01raw chunk bytes", BLOBS)
    await records.write(plain)  # open_networked(store) without objects: PostgresRecords
    with pytest.raises(ValidationError):
        await SplitRecords.open(records, LocalObjects(MemoryStore()), large=16)


async def test_pg_a_cancelled_write_waiting_on_a_lock_returns_promptly() -> None:
    """On Trio every PostgreSQL call runs in a worker thread that a cancellation waits for
    (anyio.to_thread.run_sync without abandon_on_cancel), and no statement or lock timeout
    is set: a write waiting on a row lock another session holds ignores its cancel scope
    (a request deadline, a shutdown) until the lock is released, forever if it never is.
    On asyncio psycopg cancels the query and the call returns at once."""
    url = server_url("SATCHEL_TEST_POSTGRES")
    table = f"t_{uuid.uuid4().hex[:16]}"
    records = await PostgresRecords.open(url, table=table)
    blocker = await anyio.to_thread.run_sync(_pg_sync, url, False)
    try:
        first = Batch()
        first.put(b"k", b"1")
        await records.write(first)
        await _pg_exec(blocker, f"SELECT 1 FROM {table} WHERE key = 'k' FOR UPDATE")
        release = threading.Timer(4.0, blocker.rollback)
        release.start()
        second = Batch()
        second.put(b"k", b"2")
        started = anyio.current_time()
        with anyio.move_on_after(0.5):
            await records.write(second)
        elapsed = anyio.current_time() - started
        release.join()
        assert elapsed < 2.0, f"the cancelled write returned after {elapsed:.1f} s"
    finally:
        await anyio.to_thread.run_sync(blocker.close)
        await records.drop()
        await records.aclose()


async def test_local_objects_keep_apart_from_blob_chunks_beside_them() -> None:
    """LocalObjects over a store's blob space list their own keys only, never BlobStore's
    binary chunk keys beside them (which once made ``list`` fail on a UnicodeDecodeError)."""
    from satchel.storage import open_store

    store = open_store(backend="memory")
    try:
        assert store.kv is not None
        objects = LocalObjects(store.kv)
        chunk = Batch()
        chunk.put(b"\x80\x81" + bytes(14) + bytes(4), b"chunk bytes", BLOBS)  # chunk_key
        chunk.put(b"\xff\xfe", b"chunk bytes", BLOBS)
        await store.records.write(chunk)
        await objects.put("mine", b"object")
        assert [key async for key in objects.list()] == ["mine"]
        assert await store.records.get(b"\xff\xfe", BLOBS) == b"chunk bytes"
    finally:
        store.close()


async def test_pg_unconditional_writes_never_conflict() -> None:
    """Two batches with no condition at all, writing two keys in opposite orders, deadlock
    in PostgreSQL; the loser (SQLSTATE 40P01) raises WriteConflictError, which the port
    documents only for a failed condition and which memory and RocksDB never raise for an
    unconditional write, so callers of plain writes do not handle it. The deadlock's
    transaction was rolled back whole, so the store could retry it itself (or order the
    row locks: lock every key of the batch in key order first)."""
    url = server_url("SATCHEL_TEST_POSTGRES")
    table = f"t_{uuid.uuid4().hex[:16]}"
    app = f"dl{uuid.uuid4().hex[:8]}"
    one = await PostgresRecords.open(_with_app(url, app), table=table)
    two = await PostgresRecords.open(_with_app(url, app), table=table)
    blocker = await anyio.to_thread.run_sync(_pg_sync, url, False)
    watch = await anyio.to_thread.run_sync(_pg_sync, url, True)
    try:
        seed = Batch()
        for key in (b"a", b"b", b"x", b"y"):
            seed.put(key, b"0")
        await one.write(seed)
        await _pg_exec(blocker, f"SELECT 1 FROM {table} WHERE key IN ('x', 'y') FOR UPDATE")
        errors: list[BaseException] = []

        async def run(records: PostgresRecords, keys: tuple[bytes, ...]) -> None:
            batch = Batch()
            for key in keys:
                batch.put(key, b"1")
            try:
                await records.write(batch)
            except Exception as error:
                errors.append(error)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run, one, (b"a", b"x", b"b"))
            tasks.start_soon(run, two, (b"b", b"y", b"a"))
            await _wait_for_lock_waiters(watch, app, 2)
            await anyio.to_thread.run_sync(blocker.rollback)
        assert errors == []
    finally:
        await anyio.to_thread.run_sync(blocker.close)
        await anyio.to_thread.run_sync(watch.close)
        await one.drop()
        await one.aclose()
        await two.aclose()


async def test_split_sweep_of_one_store_deletes_objects_another_store_names() -> None:
    """Two record stores given the same object store (two satchel_table tables in one
    database, both opened with the same s3:// URL: nothing refuses it, and the names carry
    nothing of the table): ``sweep`` on one deletes every object the other names, as no
    record of its own names them. Objects must be named under their store (open_networked
    could put them under the table's name), or sweep must refuse a foreign bucket."""
    now = [10_000_000_000]
    shared = LocalObjects(MemoryStore())
    first = await SplitRecords.open(LocalRecords(MemoryStore()), shared, large=16)
    second = await SplitRecords.open(LocalRecords(MemoryStore()), shared, large=16)
    first._clock = second._clock = lambda: now[0]
    batch = Batch()
    batch.put(b"chunk", BIG, BLOBS)
    await first.write(batch)
    now[0] += 7200 * 1_000_000  # past the default grace period
    await second.sweep()
    assert await first.get(b"chunk", BLOBS) == BIG
