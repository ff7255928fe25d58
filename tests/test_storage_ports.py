"""The record and object port contracts, on every backend (memory, RocksDB, PostgreSQL, S3)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satchel import (
    InvalidArgumentError,
    ObjectNotFoundError,
    StoreUnavailableError,
    ValidationError,
    WriteConflictError,
)
from satchel.storage import (
    ABSENT,
    BLOBS,
    Batch,
    Equals,
    LocalObjects,
    LocalRecords,
    MemoryStore,
    ObjectStore,
    PostgresRecords,
    RecordStore,
    RocksStore,
    S3Location,
    S3Objects,
    SplitRecords,
    iter_pairs,
    open_networked,
    prefix_pairs,
    split_table,
)

from .ports import OBJECT_BACKENDS, RECORD_BACKENDS, open_objects, open_records, server_url

pytestmark = pytest.mark.anyio
T = TypeVar("T")


@pytest.fixture(params=RECORD_BACKENDS)
async def records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RecordStore]:
    """A fresh record store of each backend."""
    async with open_records(request.param, tmp_path) as store:
        yield store


@pytest.fixture(params=OBJECT_BACKENDS)
async def objects(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    """A fresh object store of each backend."""
    async with open_objects(request.param, tmp_path) as store:
        yield store


async def commit(records: RecordStore, *puts: tuple[bytes, bytes]) -> None:
    txn = records.transaction()
    for key, value in puts:
        txn.put(key, value)
    await txn.commit()


# -- records -------------------------------------------------------------------------------


async def test_committed_puts_read_back(records: RecordStore) -> None:
    """A committed put reads back by get, get_many and scan; a missing key reads as None."""
    await commit(records, (b"a", b"1"), (b"b", b"2"))
    assert await records.get(b"a") == b"1"
    assert await records.get(b"zz") is None
    assert await records.get_many([b"b", b"zz", b"a"]) == [b"2", None, b"1"]
    assert await records.get_many([]) == []
    assert await records.scan(b"a", b"c") == [(b"a", b"1"), (b"b", b"2")]


async def test_the_blob_space_is_apart_from_the_index(records: RecordStore) -> None:
    """A record written to the blob space reads back there and nowhere in the index space."""
    batch = Batch()
    batch.put(b"k", b"blob", BLOBS)
    batch.put(b"k", b"record")
    await records.write(batch)
    assert await records.get(b"k", BLOBS) == b"blob"
    assert await records.get_many([b"k"], BLOBS) == [b"blob"]
    assert await records.scan(b"", b"\xff", space=BLOBS) == [(b"k", b"blob")]
    assert await records.get(b"k") == b"record"
    with pytest.raises(InvalidArgumentError):
        batch.put(b"k", b"x", BLOBS, expect=ABSENT)  # conditions are for records only
    gone = Batch()
    gone.delete(b"k", BLOBS)
    await records.write(gone)
    assert await records.get(b"k", BLOBS) is None
    assert await records.get(b"k") == b"record"


async def test_nothing_is_visible_before_commit(records: RecordStore) -> None:
    """Buffered operations are invisible until commit, and an empty commit writes nothing."""
    txn = records.transaction()
    txn.put(b"k", b"v")
    assert await records.get(b"k") is None
    assert await txn.get(b"k") is None
    await txn.commit()
    assert await records.get(b"k") == b"v"
    await records.transaction().commit()


async def test_scan_orders_bytewise_with_reverse_and_limit(records: RecordStore) -> None:
    """Scan keeps byte order (0x00 and 0xff included), bounds [lower, upper), reverse, limit."""
    keys = [b"\x00", b"a", b"a\x00", b"a\xff", b"b", b"\xff"]
    await commit(records, *((key, key) for key in reversed(keys)))
    assert [k for k, _ in await records.scan(b"\x00", b"\xff\xff")] == keys
    assert [k for k, _ in await records.scan(b"a", b"b")] == [b"a", b"a\x00", b"a\xff"]
    assert [k for k, _ in await records.scan(b"a", b"\xff", reverse=True, limit=2)] == [
        b"b",
        b"a\xff",
    ]
    assert await records.scan(b"a", b"b", limit=0) == []
    assert await records.scan(b"b", b"a") == []


async def test_paged_and_prefix_reads(records: RecordStore) -> None:
    """iter_pairs reads a range a page at a time, either way, and prefix_pairs a prefix."""
    keys = [b"p", b"p\x00", b"p\x00\x00", b"p\x01", b"p\xff", b"q"]
    await commit(records, *((key, key) for key in keys))
    pages = [k async for k, _ in iter_pairs(records, b"p", b"q", page=2)]
    assert pages == keys[:-1]
    backwards = [k async for k, _ in iter_pairs(records, b"p", b"q", reverse=True, page=2)]
    assert backwards == keys[-2::-1]
    assert [k for k, _ in await prefix_pairs(records, b"p\x00")] == [b"p\x00", b"p\x00\x00"]
    assert await prefix_pairs(records, b"p", reverse=True, limit=1) == [(b"p\xff", b"p\xff")]


async def test_delete_and_delete_range(records: RecordStore) -> None:
    """Delete removes one key (a missing one is no error); delete_range removes [lower, upper)."""
    await commit(records, *((bytes([c]), b"x") for c in b"abcdef"))
    txn = records.transaction()
    txn.delete(b"a")
    txn.delete(b"nothing")
    txn.delete_range(b"c", b"e")
    txn.delete_range(b"f", b"c")  # empty: no effect
    await txn.commit()
    assert [k for k, _ in await records.scan(b"a", b"z")] == [b"b", b"e", b"f"]


async def test_later_operations_win(records: RecordStore) -> None:
    """Within a transaction, operations apply in order: the last word on a key stands."""
    txn = records.transaction()
    txn.put(b"k", b"1")
    txn.delete(b"k")
    txn.put(b"k", b"2")
    txn.put(b"r", b"1")
    txn.delete_range(b"r", b"s")
    await txn.commit()
    assert await records.scan(b"a", b"z") == [(b"k", b"2")]


async def test_conditions_that_hold_commit(records: RecordStore) -> None:
    """A put expecting absence, and a put and delete expecting the current value, commit."""
    txn = records.transaction()
    txn.put(b"n", b"1", expect=ABSENT)
    await txn.commit()
    txn = records.transaction()
    txn.put(b"n", b"2", expect=Equals(b"1"))
    txn.delete(b"gone", expect=ABSENT)
    await txn.commit()
    txn = records.transaction()
    txn.delete(b"n", expect=Equals(b"2"))
    await txn.commit()
    assert await records.get(b"n") is None


@pytest.mark.parametrize("failing", ["absent", "equals-changed", "equals-missing", "delete"])
async def test_a_failed_condition_writes_nothing(records: RecordStore, failing: str) -> None:
    """A failed condition raises WriteConflictError and none of the transaction is written."""
    await commit(records, (b"n", b"1"))
    txn = records.transaction()
    txn.put(b"other", b"x")
    if failing == "absent":
        txn.put(b"n", b"2", expect=ABSENT)
    elif failing == "equals-changed":
        txn.put(b"n", b"2", expect=Equals(b"0"))
    elif failing == "equals-missing":
        txn.put(b"missing", b"2", expect=Equals(b"0"))
    else:
        txn.delete(b"n", expect=Equals(b"0"))
    txn.delete_range(b"a", b"z")
    with pytest.raises(WriteConflictError):
        await txn.commit()
    assert await records.scan(b"", b"\xff") == [(b"n", b"1")]


async def test_conditions_see_the_transactions_earlier_operations(records: RecordStore) -> None:
    """A condition is checked against the state the transaction's earlier operations leave."""
    txn = records.transaction()
    txn.put(b"k", b"1")
    txn.put(b"k", b"2", expect=Equals(b"1"))
    txn.delete(b"k", expect=Equals(b"2"))
    txn.put(b"k", b"3", expect=ABSENT)
    await txn.commit()
    assert await records.get(b"k") == b"3"


async def test_bad_arguments_are_refused(records: RecordStore) -> None:
    """A condition that is not ABSENT or Equals, or a key that is not bytes, is refused."""
    txn = records.transaction()
    with pytest.raises(InvalidArgumentError):
        txn.put(b"k", b"v", expect=b"v")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        txn.put("k", b"v")  # type: ignore[arg-type]
    await txn.commit()
    with pytest.raises(InvalidArgumentError):
        await txn.commit()
    assert await records.get(b"k") is None


async def test_racing_read_modify_writes_never_both_win(records: RecordStore) -> None:
    """Writers racing to increment one counter, each retrying on conflict, lose no increment."""
    await commit(records, (b"count", b"0"))
    writers, rounds = 8, 5
    conflicts = 0

    async def increment() -> None:
        nonlocal conflicts
        for _ in range(rounds):
            while True:
                txn = records.transaction()
                old = await txn.get(b"count")
                assert old is not None
                await anyio.lowlevel.checkpoint()  # let the others read the same value
                txn.put(b"count", str(int(old) + 1).encode(), expect=Equals(old))
                try:
                    await txn.commit()
                    break
                except WriteConflictError:
                    conflicts += 1

    async with anyio.create_task_group() as tasks:
        for _ in range(writers):
            tasks.start_soon(increment)
    assert await records.get(b"count") == str(writers * rounds).encode()
    assert conflicts > 0


async def test_two_writers_creating_one_key_one_wins(records: RecordStore) -> None:
    """Of writers that all expect a key absent, exactly one creates it."""
    results: list[bool] = []

    async def create(value: bytes) -> None:
        txn = records.transaction()
        txn.put(b"only", value, expect=ABSENT)
        try:
            await txn.commit()
            results.append(True)
        except WriteConflictError:
            results.append(False)

    async with anyio.create_task_group() as tasks:
        for i in range(6):
            tasks.start_soon(create, bytes([i]))
    assert sorted(results) == [False] * 5 + [True]


# A model test: random transactions with conditions that hold or fail, against a dict.
_keys = st.sampled_from([b"a", b"b", b"b\x00", b"c", b"\xff"])
_values = st.binary(max_size=8)
_conditions = st.one_of(st.none(), st.just(ABSENT), _values.map(Equals))
_ops = st.one_of(
    st.tuples(st.just("put"), _keys, _values, _conditions),
    st.tuples(st.just("delete"), _keys, st.none(), _conditions),
    st.tuples(st.just("range"), _keys, _keys, st.none()),
)


def _apply_model(model: dict[bytes, bytes], ops: list[tuple[object, ...]]) -> bool:
    """Apply ``ops`` to a copy of ``model`` with the port's rules; False on a conflict."""
    state = dict(model)
    for op, key, value, expect in ops:
        assert isinstance(key, bytes)
        if op == "range":
            assert isinstance(value, bytes)
            state = {k: v for k, v in state.items() if not key <= k < value}
            continue
        current = state.get(key)
        if expect is ABSENT and current is not None:
            return False
        if isinstance(expect, Equals) and current != expect.value:
            return False
        if op == "put":
            assert isinstance(value, bytes)
            state[key] = value
        else:
            state.pop(key, None)
    model.clear()
    model.update(state)
    return True


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(transactions=st.lists(st.lists(_ops, min_size=1, max_size=5), max_size=8))
async def test_transactions_match_a_model(
    records: RecordStore, transactions: list[list[tuple[object, ...]]]
) -> None:
    """Random transactions commit or conflict exactly as a dict model of the rules says."""
    prefix = uuid.uuid4().bytes  # every example on its own keys
    model: dict[bytes, bytes] = {}
    for ops in transactions:
        txn = records.transaction()
        for op, key, value, expect in ops:
            assert isinstance(key, bytes)
            if op == "put":
                assert isinstance(value, bytes)
                txn.put(prefix + key, value, expect=expect)  # type: ignore[arg-type]
            elif op == "delete":
                txn.delete(prefix + key, expect=expect)  # type: ignore[arg-type]
            else:
                assert isinstance(value, bytes)
                txn.delete_range(prefix + key, prefix + value)
        expected = _apply_model(model, ops)
        if expected:
            await txn.commit()
        else:
            with pytest.raises(WriteConflictError):
                await txn.commit()
        stored = await records.scan(prefix, prefix + b"\xff\xff")
        assert stored == sorted((prefix + k, v) for k, v in model.items())


# -- objects -------------------------------------------------------------------------------


async def test_objects_put_get_and_range(objects: ObjectStore) -> None:
    """A put object reads back whole and by range; a range past the end is cut short."""
    data = bytes(range(256)) * 300
    await objects.put("chunks/ab/one", data)
    assert await objects.get("chunks/ab/one") == data
    assert await objects.get_range("chunks/ab/one", 10, 5) == data[10:15]
    assert await objects.get_range("chunks/ab/one", len(data) - 3, 10) == data[-3:]
    assert await objects.get_range("chunks/ab/one", len(data) + 5, 10) == b""
    assert await objects.get_range("chunks/ab/one", 0, 0) == b""
    await objects.put("chunks/ab/one", data)  # idempotent
    await objects.put("empty", b"")
    assert await objects.get("empty") == b""


async def test_missing_objects_raise_and_delete_is_idempotent(objects: ObjectStore) -> None:
    """A missing object raises ObjectNotFoundError on get and range; delete twice is fine."""
    await objects.put("k", b"v")
    await objects.delete("k")
    await objects.delete("k")
    with pytest.raises(ObjectNotFoundError):
        await objects.get("k")
    with pytest.raises(ObjectNotFoundError):
        await objects.get_range("k", 0, 1)
    with pytest.raises(InvalidArgumentError):
        await objects.get("")


async def test_objects_list_by_prefix_in_order(objects: ObjectStore) -> None:
    """list(prefix) gives the keys under the prefix, ascending, and nothing else."""
    names = ["b/2", "a/1", "b/10", "b/1", "c"]
    for name in names:
        await objects.put(name, name.encode())
    assert [k async for k in objects.list("b/")] == ["b/1", "b/10", "b/2"]
    assert [k async for k in objects.list()] == sorted(names)
    assert [k async for k in objects.list("zzz")] == []


def _run_to_end(step: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that must finish at its first step, without suspending."""
    try:
        step.send(None)
    except StopIteration as finished:
        return finished.value  # type: ignore[no-any-return]
    step.close()
    raise AssertionError("the coroutine suspended")


@pytest.mark.parametrize("backend", ["memory", "rocksdb"])
def test_local_reads_and_commits_do_not_suspend(backend: str, tmp_path: Path) -> None:
    """On a local backend in process durability, reads and a conditional commit finish at
    their first step: they never hand the event loop to another task."""
    kv = MemoryStore() if backend == "memory" else RocksStore(tmp_path / "db")
    records, objects = LocalRecords(kv), LocalObjects(kv)
    txn = records.transaction()
    txn.put(b"k", b"v", expect=ABSENT)
    _run_to_end(txn.commit())
    assert _run_to_end(records.get(b"k")) == b"v"
    assert _run_to_end(records.scan(b"a", b"z")) == [(b"k", b"v")]
    assert _run_to_end(txn.get(b"k")) == b"v"
    _run_to_end(objects.put("o", b"x" * 100_000))
    assert _run_to_end(objects.get_range("o", 1, 2)) == b"xx"
    _run_to_end(records.aclose())


async def test_an_unreachable_object_store_is_a_typed_error() -> None:
    """An S3 endpoint nobody answers fails with StoreUnavailableError, not botocore's error."""
    with pytest.raises(StoreUnavailableError):
        await S3Objects.open("s3://bucket?endpoint=http://127.0.0.1:9")


@pytest.mark.parametrize(
    "url", ["http://bucket", "s3://", "s3://bucket?endpoint=x&colour=red", "bucket"]
)
def test_malformed_object_store_urls_are_refused(url: str) -> None:
    """An object store URL that is not s3://bucket[/prefix]?endpoint=… is a ValidationError."""
    with pytest.raises(ValidationError):
        S3Location.parse(url)


def test_object_store_urls_name_bucket_prefix_endpoint_and_region() -> None:
    """The bucket, a key prefix, the endpoint and the region come from the URL."""
    where = S3Location.parse("s3://b/some/prefix/?endpoint=http://h:1&region=eu-west-3")
    assert (where.bucket, where.prefix, where.endpoint, where.region) == (
        "b",
        "some/prefix/",
        "http://h:1",
        "eu-west-3",
    )


def test_the_table_parameter_is_taken_out_of_a_postgresql_url() -> None:
    """satchel_table names the table and never reaches libpq; other parameters stay."""
    assert split_table("postgresql://u@h/db?host=/tmp&satchel_table=t2") == (
        "postgresql://u@h/db?host=%2Ftmp",
        "t2",
    )
    assert split_table("postgresql://u@h/db") == ("postgresql://u@h/db", "satchel_records")


async def test_open_networked_refuses_what_it_cannot_open() -> None:
    """A store that is not a postgresql:// URL, or objects that are not s3://, are refused."""
    with pytest.raises(ValidationError):
        await open_networked("rocksdb")
    with pytest.raises(ValidationError):
        await open_networked("postgresql://h/db", "file:///tmp")


async def test_open_networked_opens_postgresql_with_s3() -> None:
    """open_networked gives PostgreSQL records with large blob values in S3."""
    postgres = server_url("SATCHEL_TEST_POSTGRES")
    bucket, _, query = server_url("SATCHEL_TEST_S3").partition("?")
    table = f"t_{uuid.uuid4().hex[:16]}"
    sep = "&" if "?" in postgres else "?"
    records = await open_networked(
        f"{postgres}{sep}satchel_table={table}", f"{bucket}/{table}?{query}"
    )
    try:
        assert isinstance(records, SplitRecords)
        batch = Batch()
        batch.put(b"chunk", b"x" * 70_000, BLOBS)
        await records.write(batch)
        assert [name async for name in records.objects.list()] != []
        assert await records.get(b"chunk", BLOBS) == b"x" * 70_000
        gone = Batch()
        gone.delete(b"chunk", BLOBS)
        await records.write(gone)
    finally:
        assert isinstance(records, SplitRecords)
        assert isinstance(records.records, PostgresRecords)
        await records.records.drop()
        await records.aclose()
