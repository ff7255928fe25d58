"""Large blob-space values as files beside the RocksDB index."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satchel.storage import BLOBS, Batch, KeyValueStore, RocksStore, open_store
from satchel.storage import _chunk_files as chunk_files
from satchel.storage._chunk_files import LARGE_VALUE

BIG = LARGE_VALUE


def big(fill: int) -> bytes:
    return bytes([fill]) * BIG


def files_under(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "chunks").rglob("*") if p.is_file())


def write(kv: KeyValueStore, *ops: tuple[str, bytes, bytes | None], sync: bool = False) -> None:
    batch = Batch()
    for op, key, value in ops:
        if op == "put":
            assert value is not None
            batch.put(key, value, BLOBS)
        elif op == "delete":
            batch.delete(key, BLOBS)
        else:
            assert value is not None
            batch.delete_range(key, value, BLOBS)
    kv.write(batch, sync=sync)


def test_large_values_are_files_and_small_ones_are_not(tmp_path: Path) -> None:
    """A blob-space value of 64 KiB or more is a file named by its key; a smaller one and
    every index value stay in RocksDB."""
    kv = RocksStore(tmp_path / "db")
    try:
        batch = Batch()
        batch.put(b"\x01big", big(1), BLOBS)
        batch.put(b"\x01small", b"s" * (BIG - 1), BLOBS)
        batch.put(b"\x01index", big(2))
        kv.write(batch)
        assert files_under(tmp_path / "db") == [b"\x01big".hex()]
        assert kv.get(b"\x01big", BLOBS) == big(1) and kv.get(b"\x01index") == big(2)
        assert [k for k, _ in kv.scan(b"", b"\xff", space=BLOBS)] == [b"\x01big", b"\x01small"]
    finally:
        kv.close()


@pytest.mark.parametrize("backend", ["memory", "rocksdb"])
def test_the_last_operation_on_a_key_wins_across_sizes(backend: str, tmp_path: Path) -> None:
    """Overwriting a large value with a small one and back, deleting and putting again in one
    batch, and ranges: every backend reads what was written last."""
    store = open_store(tmp_path / "data", backend=backend)  # type: ignore[arg-type]
    kv = store.kv
    try:
        write(kv, ("put", b"a", big(1)), ("put", b"b", b"small"))
        write(kv, ("put", b"a", b"small"), ("put", b"b", big(2)))
        assert (kv.get(b"a", BLOBS), kv.get(b"b", BLOBS)) == (b"small", big(2))
        both_ways = [(b"a", b"small"), (b"b", big(2))]  # "a" has an older file left behind
        assert list(kv.scan(b"", b"\xff", space=BLOBS)) == both_ways
        assert list(kv.scan(b"", b"\xff", space=BLOBS, reverse=True)) == both_ways[::-1]
        write(kv, ("put", b"a", big(3)), ("put", b"a", big(4)))
        assert kv.get(b"a", BLOBS) == big(4)
        write(kv, ("delete", b"a", None), ("put", b"a", big(5)), ("put", b"c", big(6)))
        write(kv, ("delete_range", b"b", b"d"), ("put", b"c", big(7)))
        assert kv.get_many([b"a", b"b", b"c"], BLOBS) == [big(5), None, big(7)]
        pairs = list(kv.scan(b"", b"\xff", space=BLOBS))
        assert pairs == [(b"a", big(5)), (b"c", big(7))]
        assert list(kv.scan(b"", b"\xff", space=BLOBS, reverse=True, limit=1)) == [(b"c", big(7))]
    finally:
        store.close()
    if backend == "rocksdb":
        assert not [n for n in files_under(tmp_path / "data") if n.endswith(".new")]


def test_files_survive_reopen_and_removed_ones_stay_removed(tmp_path: Path) -> None:
    """What was written as files reads back after reopening; deleted files are gone."""
    kv = RocksStore(tmp_path / "db")
    write(kv, ("put", b"k1", big(1)), ("put", b"k2", big(2)))
    write(kv, ("delete", b"k1", None))
    kv.close()
    again = RocksStore(tmp_path / "db")
    try:
        assert (again.get(b"k1", BLOBS), again.get(b"k2", BLOBS)) == (None, big(2))
        assert files_under(tmp_path / "db") == [b"k2".hex()]
    finally:
        again.close()


def test_a_synced_write_makes_earlier_unsynced_files_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files written without sync (staged chunks) are fsynced, with their folders, by the next
    synced write, as a synced log write covers the writes before it."""
    kv = RocksStore(tmp_path / "db")
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    try:
        write(kv, ("put", b"\x07staged", big(1)))
        assert synced == []
        batch = Batch()
        batch.put(b"commit", b"1")
        kv.write(batch, sync=True)
        chunk = tmp_path / "db" / "chunks" / "07"
        assert str(chunk / b"\x07staged".hex()) in synced
        assert str(chunk) in synced and str(tmp_path / "db" / "chunks") in synced
        assert str(tmp_path / "db") in synced  # the new chunks folder's own entry
        synced.clear()
        kv.write(batch, sync=True)
        assert synced == []  # nothing left to sync
    finally:
        kv.close()


async def test_a_file_nothing_names_is_an_orphan_check_removes(tmp_path: Path) -> None:
    """A chunk file written by a store that never committed (a crash between file and index)
    is reported by check and removed by check(fix=True)."""
    store = open_store(tmp_path / "data")
    try:
        content = os.urandom(3 * BIG)
        staged = await store.blobs.put(content)
        owner = Batch()
        owner.put(b"owner", b"")  # a reference's owner is a record of the index
        await store.blobs.commit(owner, add=[(staged, b"owner")])
        write(store.kv, ("put", os.urandom(16) + b"\x00\x00\x00\x00", big(9)))
        report = await store.check()
        assert not report.clean and len(report.orphan_chunks) == 1
        await store.check(fix=True)
        assert (await store.check()).clean
        assert await store.blobs.read(staged.ref.hash) == content
    finally:
        store.close()


def test_files_of_a_write_that_never_committed_go_at_the_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process stopped after writing a batch's new files but before its index commit
    leaves marks; the next open removes those files and marks, and keeps committed ones."""
    kv = RocksStore(tmp_path / "db")
    write(kv, ("put", b"kept", big(1)))
    real_write = kv._files.write

    def stop_after_files(pairs: Any, *, sync: bool) -> None:
        real_write(pairs, sync=sync)
        raise KeyboardInterrupt  # the process stops here, before the commit

    monkeypatch.setattr(kv._files, "write", stop_after_files)
    with pytest.raises(KeyboardInterrupt):
        write(kv, ("put", b"lost", big(2)))
    assert sorted(files_under(tmp_path / "db")) == sorted([b"kept".hex(), b"lost".hex()])
    kv.close()
    again = RocksStore(tmp_path / "db")
    try:
        assert files_under(tmp_path / "db") == [b"kept".hex()]
        assert again.get(b"kept", BLOBS) == big(1) and again.get(b"lost", BLOBS) is None
        assert list(again.scan(b"", b"\xff")) == []  # no mark left in the index
    finally:
        again.close()


def test_the_empty_key_stays_in_rocksdb(tmp_path: Path) -> None:
    """The empty key names no file: its large value is kept in RocksDB and reads back."""
    kv = RocksStore(tmp_path / "db", file_values_from=1)
    try:
        write(kv, ("put", b"", big(3)), ("put", b"k", b"v"))
        assert kv.get(b"", BLOBS) == big(3)
        assert list(kv.scan(b"", b"\xff", space=BLOBS)) == [(b"", big(3)), (b"k", b"v")]
        assert files_under(tmp_path / "db") == [b"k".hex()]
    finally:
        kv.close()


def test_files_a_committed_delete_left_go_at_the_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process stopped after committing a delete but before removing its files leaves
    marks; the next open removes those files, and only those."""
    kv = RocksStore(tmp_path / "db")
    write(kv, ("put", b"kept", big(1)), ("put", b"gone1", big(2)), ("put", b"gone2", big(3)))

    def stop_before_removing(keys: Any) -> None:
        raise KeyboardInterrupt  # the process stops here, after the commit

    monkeypatch.setattr(kv._files, "remove", stop_before_removing)
    with pytest.raises(KeyboardInterrupt):
        write(kv, ("delete", b"gone1", None), ("delete_range", b"gone2", b"gone3"))
    assert len(files_under(tmp_path / "db")) == 3  # committed, not yet removed
    kv.close()
    again = RocksStore(tmp_path / "db")
    try:
        assert files_under(tmp_path / "db") == [b"kept".hex()]
        assert again.get(b"gone1", BLOBS) is None and again.get(b"gone2", BLOBS) is None
        assert list(again.scan(b"", b"\xff")) == []  # no mark left in the index
    finally:
        again.close()


def test_a_file_put_a_later_operation_overrides_writes_no_file(tmp_path: Path) -> None:
    """A large put followed in the same batch by a delete, a range delete or a small put of
    its key leaves no file, before and after a reopen."""
    kv = RocksStore(tmp_path / "db")
    write(
        kv,
        ("put", b"k1", big(1)),
        ("delete", b"k1", None),
        ("put", b"k2", big(2)),
        ("delete_range", b"k2", b"k3"),
        ("put", b"k3", big(3)),
        ("put", b"k3", b"small"),
    )
    for reopen in (False, True):
        if reopen:
            kv.close()
            kv = RocksStore(tmp_path / "db")
        assert files_under(tmp_path / "db") == []
        assert [kv.get(k, BLOBS) for k in (b"k1", b"k2", b"k3")] == [None, None, b"small"]
        assert list(kv.scan(b"", b"\xff", space=BLOBS)) == [(b"k3", b"small")]
    kv.close()


class _FailingOs:
    """The ``os`` module as ``_chunk_files`` sees it, with chosen calls failing."""

    def __init__(self) -> None:
        self.write_budget: int | None = None
        self.unlink_refused: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def write(self, fd: int, data: Any) -> int:
        if self.write_budget is not None:
            if self.write_budget <= 0:
                raise OSError(28, "No space left on device")
            data = data[: self.write_budget]
            self.write_budget -= len(data)
        return os.write(fd, data)

    def unlink(self, path: str) -> None:
        if os.path.basename(path) in self.unlink_refused:
            raise PermissionError(13, "Permission denied", path)
        os.unlink(path)


def test_a_failed_file_write_commits_nothing_and_a_retry_keeps_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose second file cannot be written whole raises, leaves no file and no index
    record; the same batch written again lands and survives a reopen."""
    failing = _FailingOs()
    monkeypatch.setattr(chunk_files, "os", failing)
    kv = RocksStore(tmp_path / "db")
    batch = Batch()
    batch.put(b"a", big(1), BLOBS)
    batch.put(b"b", big(2) * 2, BLOBS)
    batch.put(b"record", b"1")
    failing.write_budget = BIG + 1000
    with pytest.raises(OSError, match="No space"):
        kv.write(batch)
    assert files_under(tmp_path / "db") == []
    assert (kv.get(b"record"), kv.get(b"a", BLOBS), kv.get(b"b", BLOBS)) == (None, None, None)
    failing.write_budget = None
    kv.write(batch)
    kv.close()
    again = RocksStore(tmp_path / "db")
    try:
        assert again.get(b"record") == b"1"
        assert (again.get(b"a", BLOBS), again.get(b"b", BLOBS)) == (big(1), big(2) * 2)
        assert list(again.scan(b"c", b"d")) == []  # no mark left in the index
    finally:
        again.close()


def test_a_file_a_committed_delete_cannot_remove_reads_as_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When removing a deleted key's file fails, the delete still succeeds and reads as done;
    the file goes at the next open, unless the key was written again meanwhile."""
    failing = _FailingOs()
    monkeypatch.setattr(chunk_files, "os", failing)
    kv = RocksStore(tmp_path / "db")
    write(kv, ("put", b"gone", big(1)), ("put", b"back", big(2)))
    failing.unlink_refused = {b"gone".hex(), b"back".hex()}
    write(kv, ("delete", b"gone", None), ("delete_range", b"back", b"bacl"))
    assert (kv.get(b"gone", BLOBS), kv.get(b"back", BLOBS)) == (None, None)
    assert list(kv.scan(b"", b"\xff", space=BLOBS)) == []
    write(kv, ("put", b"back", big(3)))
    assert kv.get(b"back", BLOBS) == big(3)
    failing.unlink_refused = set()
    kv.close()
    again = RocksStore(tmp_path / "db")
    try:
        assert files_under(tmp_path / "db") == [b"back".hex()]
        assert (again.get(b"gone", BLOBS), again.get(b"back", BLOBS)) == (None, big(3))
        assert list(again.scan(b"c", b"d")) == []  # no mark left in the index
    finally:
        again.close()


_KILLED_AT_RENAME = """
import os, signal, sys
from satchel.storage import BLOBS, Batch, RocksStore
from satchel.storage import _chunk_files
kv = RocksStore(sys.argv[1])
first = Batch(); first.put(b"key", b"1" * (1 << 17), BLOBS); kv.write(first)
_chunk_files.os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)
second = Batch(); second.put(b"key", b"2" * (1 << 17), BLOBS); kv.write(second)
"""


def test_a_replacement_a_killed_process_left_goes_at_the_next_open(tmp_path: Path) -> None:
    """A process killed between writing a replacement file and renaming it leaves that file
    marked; the next open removes it and the key keeps its committed value."""
    done = subprocess.run([sys.executable, "-c", _KILLED_AT_RENAME, str(tmp_path / "db")])
    assert done.returncode == -signal.SIGKILL
    assert sorted(files_under(tmp_path / "db")) == [b"key".hex(), b"key".hex() + ".new"]
    kv = RocksStore(tmp_path / "db")
    try:
        assert files_under(tmp_path / "db") == [b"key".hex()]
        assert kv.get(b"key", BLOBS) == b"1" * (1 << 17)
        assert list(kv.scan(b"c", b"d")) == []  # no mark left in the index
    finally:
        kv.close()


def test_files_that_name_no_key_do_not_break_scans(tmp_path: Path) -> None:
    """A file in a chunk folder whose name is no key (an editor's or a copy tool's) is
    ignored by reads and scans."""
    kv = RocksStore(tmp_path / "db")
    try:
        write(kv, ("put", b"k", big(1)))
        (tmp_path / "db" / "chunks" / b"k".hex() / "notes.txt").write_text("x")
        assert [k for k, _ in kv.scan(b"", b"\xff", space=BLOBS)] == [b"k"]
    finally:
        kv.close()


_KEYS = st.sampled_from([b"a", b"ab", b"b", b"\x00", b"\xff", b"c\x00", b"\xff\xff"])
_OPS = st.one_of(
    st.tuples(st.just("put"), _KEYS, st.sampled_from([0, 1, 2, 3, 5])),
    st.tuples(st.just("delete"), _KEYS, st.none()),
    st.tuples(st.just("delete_range"), _KEYS, _KEYS),
)


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(st.tuples(st.lists(_OPS, min_size=1, max_size=6), st.booleans()), max_size=6)
)
def test_files_and_rocksdb_read_as_one_dictionary(
    batches: list[tuple[list[tuple[str, bytes, Any]], bool]],
) -> None:
    """Any batches of puts (of values on both sides of the file threshold), deletes and
    range deletes, with reopens between them, read back as the same writes on a dict."""
    folder = Path(tempfile.mkdtemp(prefix="satchel-model-"))
    kv = RocksStore(folder, file_values_from=3)
    model: dict[bytes, bytes] = {}
    try:
        for number, (ops, reopen) in enumerate(batches):
            batch = Batch()
            for op, key, arg in ops:
                if op == "put":
                    value = bytes([number]) * arg
                    batch.put(key, value, BLOBS)
                    model[key] = value
                elif op == "delete":
                    batch.delete(key, BLOBS)
                    model.pop(key, None)
                else:
                    batch.delete_range(key, arg, BLOBS)
                    for gone in [k for k in model if key <= k < arg]:
                        del model[gone]
            kv.write(batch)
            if reopen:
                kv.close()
                kv = RocksStore(folder, file_values_from=3)
            expected = sorted(model.items())
            assert list(kv.scan(b"", b"\xff\xff\xff", space=BLOBS)) == expected
            assert list(kv.scan(b"", b"\xff\xff\xff", space=BLOBS, reverse=True)) == expected[::-1]
            assert (
                list(kv.scan(b"a", b"c", space=BLOBS, limit=2))
                == [(k, v) for k, v in expected if b"a" <= k < b"c"][:2]
            )
            assert (
                list(kv.scan(b"ab", b"\xff\xff", space=BLOBS, reverse=True, limit=2))
                == [(k, v) for k, v in expected if b"ab" <= k < b"\xff\xff"][::-1][:2]
            )
    finally:
        kv.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_file_put_deletes_the_key_in_rocksdb_only_where_a_small_value_is(
    tmp_path: Path,
) -> None:
    """A value written as a file leaves a tombstone in RocksDB only where a small value
    (stored before, or put earlier in the same batch) would shadow it: every scan of the
    blob space steps over each tombstone until compaction drops it."""
    kv = RocksStore(tmp_path / "db")
    try:

        def tombstones() -> int:  # white-box: RocksDB's count of deletes in the memtable
            blobs: Any = kv._blobs
            return int(blobs.property_int_value("rocksdb.num-deletes-active-mem-table"))

        write(kv, ("put", b"new", big(1)))
        assert tombstones() == 0
        write(kv, ("put", b"was-small", b"s"))
        write(kv, ("put", b"was-small", big(2)))
        assert tombstones() == 1
        write(kv, ("put", b"same-batch", b"s"), ("put", b"same-batch", big(3)))
        assert tombstones() == 2
        kv.close()
        kv = RocksStore(tmp_path / "db")
        assert [kv.get(k, BLOBS) for k in (b"new", b"was-small", b"same-batch")] == [
            big(1),
            big(2),
            big(3),
        ]
    finally:
        kv.close()


@pytest.fixture
def listed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The chunk folders listed from now on, by name, in order."""
    names: list[str] = []
    real_listdir = os.listdir

    def listdir(path: Any) -> list[str]:
        names.append(os.path.basename(path))
        return real_listdir(path)

    monkeypatch.setattr(chunk_files.os, "listdir", listdir)
    return names


@pytest.mark.parametrize("reverse", [False, True])
def test_a_scan_that_stops_early_lists_only_the_folders_it_reached(
    tmp_path: Path, listed: list[str], reverse: bool
) -> None:
    """A scan with a limit reads the chunk folders one at a time and stops listing once it
    has enough keys, so paging through the blob space (as ``check`` does) is not quadratic."""
    kv = RocksStore(tmp_path / "db", file_values_from=3)
    try:
        keys = [bytes([first, 0]) for first in range(0, 256, 8)]  # 32 folders, one key each
        write(kv, *(("put", key, b"value") for key in keys))
        in_order = keys[::-1] if reverse else keys
        folders = [key[:1].hex() for key in in_order]
        page = kv.scan(b"", b"\xff\xff", space=BLOBS, reverse=reverse, limit=2)
        assert [k for k, _ in page] == in_order[:2]
        assert listed == folders[:2]
        listed.clear()
        page = kv.scan(b"", b"\xff\xff", space=BLOBS, reverse=reverse, limit=1)
        assert [k for k, _ in page] == in_order[:1]
        assert listed == folders[:1]
        assert [k for k, _ in kv.scan(b"", b"\xff\xff", space=BLOBS)] == keys
    finally:
        kv.close()


def test_paging_through_one_folder_lists_it_once_until_files_change(
    tmp_path: Path, listed: list[str]
) -> None:
    """Pages of a scan within one chunk folder read its listing once (a page no longer
    lists the whole folder again); a file written or removed between pages is seen by the
    next page."""
    kv = RocksStore(tmp_path / "db", file_values_from=3)
    try:
        keys = [b"\x07" + bytes([n]) for n in range(0, 200, 2)]  # 100 keys, one folder
        write(kv, *(("put", key, b"value") for key in keys))

        def pages(upper: bytes = b"\x08") -> list[bytes]:
            found: list[bytes] = []
            lower = b"\x07"
            while page := [k for k, _ in kv.scan(lower, upper, space=BLOBS, limit=10)]:
                found += page
                lower = page[-1] + b"\x00"
            return found

        assert pages() == keys
        assert listed == [b"\x07".hex()]
        write(kv, ("put", b"\x07\xc9", b"value"), ("delete", keys[50], None))
        listed.clear()
        assert pages() == [*keys[:50], *keys[51:], b"\x07\xc9"]
        assert listed == [b"\x07".hex()]
    finally:
        kv.close()


def test_after_a_failed_fsync_synced_writes_fail_until_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once an fsync of chunk files fails, later synced writes fail too (a second fsync
    could succeed over pages the first one lost) and commit nothing; a reopen starts over."""
    kv = RocksStore(tmp_path / "db")
    write(kv, ("put", b"a", big(1)))
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(chunk_files.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output"):
        write(kv, ("put", b"b", big(2)), sync=True)
    monkeypatch.setattr(chunk_files.os, "fsync", real_fsync)
    with pytest.raises(OSError, match="earlier fsync"):
        write(kv, ("put", b"c", big(3)), sync=True)
    assert (kv.get(b"b", BLOBS), kv.get(b"c", BLOBS)) == (None, None)
    write(kv, ("put", b"d", big(4)))  # unsynced writes go on
    kv.close()
    again = RocksStore(tmp_path / "db")
    try:
        write(again, ("put", b"e", big(5)), sync=True)
        assert [again.get(k, BLOBS) for k in (b"a", b"b", b"d", b"e")] == [
            big(1),
            None,
            big(4),
            big(5),
        ]
    finally:
        again.close()


class _FailingCommits:
    """A RocksDB handle whose second write from now (a batch's commit) fails."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    def write(self, batch: Any, options: Any = None) -> None:
        self.writes += 1
        if self.writes == 2:
            raise OSError("injected: the commit failed")
        self._db.write(batch, options)


def test_the_files_of_a_failed_commit_do_not_read_as_values(tmp_path: Path) -> None:
    """When a batch's index commit fails after its files were written, the new files are
    removed: nothing of the batch reads back, before or after a reopen."""
    kv = RocksStore(tmp_path / "db")
    real = kv._db
    kv._db = _FailingCommits(real)  # type: ignore[assignment]
    with pytest.raises(OSError, match="injected"):
        write(kv, ("put", b"new", big(1)))
    kv._db = real
    assert kv.get(b"new", BLOBS) is None and files_under(tmp_path / "db") == []
    kv.close()
    again = RocksStore(tmp_path / "db")
    try:
        assert again.get(b"new", BLOBS) is None
        assert list(again.scan(b"c", b"d")) == []  # its mark went at the open
    finally:
        again.close()


def test_a_file_written_again_during_a_checkpoint_outlives_its_held_removal(
    tmp_path: Path,
) -> None:
    """A key deleted while a checkpoint holds its file, then written again, keeps its new
    value when the checkpoint ends (the held removal no longer applies to it)."""
    kv = RocksStore(tmp_path / "data")
    try:
        write(kv, ("put", b"k", big(1)))
        kv.checkpoint(tmp_path / "copy")
        write(kv, ("delete", b"k", None))
        write(kv, ("put", b"k", big(2)))
        kv.end_checkpoint()
        assert kv.get(b"k", BLOBS) == big(2)
        assert [k for k, _ in kv.scan(b"", b"\xff", space=BLOBS)] == [b"k"]
        kv.close()
        kv = RocksStore(tmp_path / "data")
        assert kv.get(b"k", BLOBS) == big(2)
    finally:
        kv.close()


def test_a_checkpoint_holds_deleted_files_until_it_ends(tmp_path: Path) -> None:
    """A file deleted during a checkpoint stays for the copy, reads as absent, and goes when
    the checkpoint ends, or at the next open if the process stops before that."""
    kv = RocksStore(tmp_path / "data")
    write(kv, ("put", b"k1", big(1)), ("put", b"k2", big(2)))
    kv.checkpoint(tmp_path / "copy")
    write(kv, ("delete", b"k1", None))
    assert kv.get(b"k1", space=BLOBS) is None
    assert len(files_under(tmp_path / "data")) == 2
    kv.end_checkpoint()
    assert len(files_under(tmp_path / "data")) == 1
    kv.checkpoint(tmp_path / "copy2")
    write(kv, ("delete", b"k2", None))
    kv.close()  # stopped before the checkpoint ended: the file's mark is still in the index
    assert len(files_under(tmp_path / "data")) == 1
    reopened = RocksStore(tmp_path / "data")
    assert files_under(tmp_path / "data") == []
    reopened.close()
