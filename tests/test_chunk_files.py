"""Large blob-space values as files beside the RocksDB index."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from satchel.storage import BLOBS, Batch, KeyValueStore, RocksStore, open_store
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
        store.blobs.commit(owner, add=[(staged, b"owner")])
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
