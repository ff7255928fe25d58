"""The key-value contract: every backend passes these unchanged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satchel import InvalidArgumentError, StoreClosedError, StoreLockedError
from satchel.storage import (
    ABSENT,
    BLOBS,
    INDEX,
    Batch,
    KeyValueStore,
    RocksStore,
    prefix_upper_bound,
    scan_prefix,
)

from .conftest import BACKENDS, make_kv


def put_all(kv: KeyValueStore, pairs: dict[bytes, bytes]) -> None:
    batch = Batch()
    for key, value in pairs.items():
        batch.put(key, value)
    kv.write(batch)


def test_get_missing_is_none(kv: KeyValueStore) -> None:
    """A key never written reads as None."""
    assert kv.get(b"nope") is None


def test_put_then_get(kv: KeyValueStore) -> None:
    """A written value reads back byte for byte, NUL bytes included."""
    put_all(kv, {b"k": b"v\x00\xff"})
    assert kv.get(b"k") == b"v\x00\xff"


def test_empty_value_is_not_missing(kv: KeyValueStore) -> None:
    """An empty value is stored and read as b'' rather than None."""
    put_all(kv, {b"k": b""})
    assert kv.get(b"k") == b""


def test_later_op_in_batch_wins(kv: KeyValueStore) -> None:
    """Operations in one batch apply in order, so the last one on a key wins."""
    batch = Batch()
    batch.put(b"a", b"1")
    batch.delete(b"a")
    batch.put(b"b", b"1")
    batch.put(b"b", b"2")
    kv.write(batch)
    assert [kv.get(b"a"), kv.get(b"b")] == [None, b"2"]


def test_get_many_keeps_order_and_gaps(kv: KeyValueStore) -> None:
    """get_many answers in the order asked, with None for each missing key."""
    put_all(kv, {b"a": b"1", b"c": b"3"})
    assert kv.get_many([b"c", b"b", b"a"]) == [b"3", None, b"1"]
    assert kv.get_many([]) == []


def test_spaces_are_separate(kv: KeyValueStore) -> None:
    """The same key in the index and blob spaces holds two values."""
    batch = Batch()
    batch.put(b"k", b"index", INDEX)
    batch.put(b"k", b"blob", BLOBS)
    kv.write(batch)
    assert (kv.get(b"k"), kv.get(b"k", BLOBS)) == (b"index", b"blob")
    assert list(kv.scan(b"", b"\xff", space=BLOBS)) == [(b"k", b"blob")]


def test_scan_bounds_are_half_open(kv: KeyValueStore) -> None:
    """scan returns lower <= key < upper in order."""
    put_all(kv, {k: k for k in [b"a", b"b", b"ba", b"c", b"d"]})
    assert [k for k, _ in kv.scan(b"b", b"d")] == [b"b", b"ba", b"c"]


def test_scan_reverse_and_limit(kv: KeyValueStore) -> None:
    """A reverse scan starts below the upper bound, and limit counts from that end."""
    put_all(kv, {k: k for k in [b"a", b"b", b"c", b"d"]})
    assert [k for k, _ in kv.scan(b"a", b"d", reverse=True)] == [b"c", b"b", b"a"]
    assert [k for k, _ in kv.scan(b"a", b"d", reverse=True, limit=2)] == [b"c", b"b"]
    assert [k for k, _ in kv.scan(b"a", b"z", limit=2)] == [b"a", b"b"]
    assert list(kv.scan(b"a", b"z", limit=0)) == []


def test_scan_empty_range(kv: KeyValueStore) -> None:
    """A range with lower >= upper is empty."""
    put_all(kv, {b"a": b"1"})
    assert list(kv.scan(b"b", b"a")) == []
    assert list(kv.scan(b"a", b"a", reverse=True)) == []


def test_scan_prefix(kv: KeyValueStore) -> None:
    """scan_prefix finds exactly the keys with the prefix, including 0xff tails."""
    put_all(kv, {b"p": b"", b"p\x00": b"", b"p\xff\xff": b"", b"q": b"", b"o\xff": b""})
    assert [k for k, _ in scan_prefix(kv, b"p")] == [b"p", b"p\x00", b"p\xff\xff"]
    assert [k for k, _ in scan_prefix(kv, b"p", reverse=True, limit=1)] == [b"p\xff\xff"]


def test_prefix_upper_bound() -> None:
    """The bound of a prefix is the prefix with its last non-0xff byte raised."""
    assert prefix_upper_bound(b"ab") == b"ac"
    assert prefix_upper_bound(b"a\xff\xff") == b"b"
    with pytest.raises(ValueError, match="no upper bound"):
        prefix_upper_bound(b"\xff")


def test_delete_range(kv: KeyValueStore) -> None:
    """delete_range removes lower <= key < upper and nothing else."""
    put_all(kv, {k: k for k in [b"a", b"b", b"bb", b"c"]})
    batch = Batch()
    batch.delete_range(b"b", b"c")
    kv.write(batch)
    assert [k for k, _ in kv.scan(b"", b"z")] == [b"a", b"c"]


@pytest.mark.parametrize("bad", ["text", 3, bytearray(b"x"), None])
def test_batch_rejects_non_bytes(bad: object) -> None:
    """A key or value that is not bytes is a TypeError when it is added to a batch."""
    batch = Batch()
    with pytest.raises(TypeError, match="must be bytes"):
        batch.put(bad, b"v")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        batch.put(b"k", bad)  # type: ignore[arg-type]
    assert len(batch) == 0
    with pytest.raises(InvalidArgumentError, match="must be bytes"):
        batch.put_all([(b"k1", b"v"), (b"k2", bad)])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match="must be bytes"):
        batch.put_all([(bad, b"v"), (b"k2", b"v")])  # type: ignore[list-item]
    assert len(batch) == 0


def test_put_all_is_put_of_each_pair_in_order(kv: KeyValueStore) -> None:
    """``put_all`` writes its pairs as one ``put`` each would, later ones winning."""
    batch = Batch()
    batch.put(b"a", b"0")
    batch.put_all([(b"a", b"1"), (b"b", b"2"), (b"b", b"3")])
    batch.put(b"c", b"4", expect=ABSENT)  # a condition after them still names its own op
    kv.write(batch)
    assert list(kv.scan(b"", b"z")) == [(b"a", b"1"), (b"b", b"3"), (b"c", b"4")]


def test_closed_store_refuses(kv: KeyValueStore) -> None:
    """After close, reads and writes raise StoreClosedError."""
    kv.close()
    with pytest.raises(StoreClosedError):
        kv.get(b"a")
    with pytest.raises(StoreClosedError):
        kv.write(Batch())


def test_sync_write_is_counted(kv: KeyValueStore) -> None:
    """A sync write lands like any other and is counted by the backend."""
    batch = Batch()
    batch.put(b"k", b"v")
    kv.write(batch, sync=True)
    assert (kv.get(b"k"), kv.sync_writes) == (b"v", 1)  # type: ignore[attr-defined]


keys = st.binary(min_size=0, max_size=4)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), keys, st.binary(max_size=8)),
        st.tuples(st.just("delete"), keys, st.just(b"")),
        st.tuples(st.just("range"), keys, keys),
    ),
    max_size=30,
)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(ops, max_size=4), lower=keys, upper=keys)
def test_matches_a_sorted_dict(
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    batches: list[list[tuple[str, bytes, bytes]]],
    lower: bytes,
    upper: bytes,
) -> None:
    """Any sequence of batches leaves the backend equal to a plain dict, scans included."""
    kv = make_kv(backend, tmp_path_factory.mktemp("kv"))
    model: dict[bytes, bytes] = {}
    try:
        for ops_ in batches:
            batch = Batch()
            for op, key, value in ops_:
                if op == "put":
                    batch.put(key, value)
                    model[key] = value
                elif op == "delete":
                    batch.delete(key)
                    model.pop(key, None)
                else:
                    batch.delete_range(key, value)
                    for k in [k for k in model if key <= k < value]:
                        del model[k]
            kv.write(batch)
        expected = sorted((k, v) for k, v in model.items() if lower <= k < upper)
        assert list(kv.scan(lower, upper)) == expected
        assert list(kv.scan(lower, upper, reverse=True)) == expected[::-1]
        assert list(kv.scan(b"", b"\xff" * 5)) == sorted(model.items())
    finally:
        kv.close()


def test_second_open_is_locked(tmp_path: Path) -> None:
    """A second store on a folder in use gets StoreLockedError naming the folder."""
    first = RocksStore(tmp_path / "db")
    try:
        with pytest.raises(StoreLockedError, match="db' is in use"):
            RocksStore(tmp_path / "db")
    finally:
        first.close()
    RocksStore(tmp_path / "db").close()


def test_other_process_is_locked_out(tmp_path: Path) -> None:
    """Another process opening a folder in use reports StoreLocked, not a RocksDB trace."""
    folder = tmp_path / "db"
    first = RocksStore(folder)
    try:
        code = (
            "import sys\nfrom satchel.storage import RocksStore\n"
            "from satchel import StoreLockedError\n"
            f"try:\n    RocksStore({str(folder)!r})\nexcept StoreLockedError as e:\n"
            "    print('locked:', e)\n    sys.exit(3)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )
    finally:
        first.close()
    assert (result.returncode, str(folder) in result.stdout) == (3, True), result.stderr


def test_rocks_survives_reopen(tmp_path: Path) -> None:
    """What a RocksDB store wrote is there after close and reopen, in both spaces."""
    kv = RocksStore(tmp_path / "db")
    batch = Batch()
    batch.put(b"k", b"v")
    batch.put(b"c", b"chunk", BLOBS)
    kv.write(batch)
    kv.close()
    again = RocksStore(tmp_path / "db")
    try:
        assert (again.get(b"k"), again.get(b"c", BLOBS)) == (b"v", b"chunk")
    finally:
        again.close()


def test_rocks_index_keeps_bloom_filters_and_misses_read_through_them(tmp_path: Path) -> None:
    """The index's tables carry bloom filters (a read of an absent key skips the files that
    cannot hold it), and keys absent from flushed tables still read as missing."""
    kv = RocksStore(tmp_path / "db")
    batch = Batch()
    for i in range(200):
        batch.put(b"k%04d" % i, b"v")
    kv.write(batch)
    kv.compact()  # into table files, which the filters are part of
    assert kv.get(b"k0007") == b"v" and kv.get(b"k0007x") is None
    kv.close()
    options = (tmp_path / "db").glob("OPTIONS-*")
    index_tables = next(options).read_text().split('[TableOptions/BlockBasedTable "default"]')[1]
    assert "filter_policy=bloomfilter" in index_tables.split("[")[0]


def test_inverted_delete_range_is_a_no_op(kv: KeyValueStore) -> None:
    """A delete_range whose lower bound is not below its upper bound deletes nothing."""
    put_all(kv, {b"a": b"1", b"b": b"2"})
    batch = Batch()
    batch.delete_range(b"b", b"a")
    batch.delete_range(b"a", b"a")
    kv.write(batch)
    assert [k for k, _ in kv.scan(b"", b"z")] == [b"a", b"b"]


def test_compact_keeps_every_live_key(kv: KeyValueStore) -> None:
    """Compaction drops deleted keys and keeps every live one in both spaces."""
    batch = Batch()
    for i in range(200):
        batch.put(b"k%03d" % i, b"v" * 100)
        batch.put(b"c%03d" % i, b"x" * 1000, BLOBS)
    kv.write(batch)
    gone = Batch()
    gone.delete_range(b"k100", b"k200")
    kv.write(gone)
    kv.compact()
    assert [k for k, _ in kv.scan(b"k", b"l")] == [b"k%03d" % i for i in range(100)]
    assert len(list(kv.scan(b"c", b"d", space=BLOBS))) == 200
