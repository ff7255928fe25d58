"""The commit log: records back to back, durable when synced, read back up to the first
record that is not whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from satchel.storage._commit_log import CommitLog

from satchel._errors import StoreWriteFailedError

SIZE = 16 * 4096


def reopened(path: Path) -> list[tuple[int, bytes]]:
    log = CommitLog(path, size=SIZE)
    try:
        return list(log.records())
    finally:
        log.close()


def test_synced_records_read_back_after_reopening(tmp_path: Path) -> None:
    """Every synced record is read back, in order, with its sequence number."""
    log = CommitLog(tmp_path / "log", size=SIZE)
    log.restart(1)
    for n in range(5):
        assert log.append(b"record %d" % n, sync=True) == n + 1
    log.close()
    assert reopened(tmp_path / "log") == [(n + 1, b"record %d" % n) for n in range(5)]


def test_unsynced_records_wait_for_the_next_synced_one(tmp_path: Path) -> None:
    """A record appended without sync reaches the file only with the next synced record."""
    log = CommitLog(tmp_path / "log", size=SIZE)
    log.restart(7)
    log.append(b"first", sync=False)
    assert reopened(tmp_path / "log") == []
    log.append(b"second", sync=True)
    assert reopened(tmp_path / "log") == [(7, b"first"), (8, b"second")]
    log.close()


def test_a_damaged_record_ends_the_log_and_keeps_those_before(tmp_path: Path) -> None:
    """A record whose bytes are damaged (a torn write) is not read, nor anything after it."""
    log = CommitLog(tmp_path / "log", size=SIZE)
    log.restart(1)
    log.append(b"a" * 100, sync=True)
    log.append(b"b" * 100, sync=True)
    log.append(b"c" * 100, sync=True)
    log.close()
    data = bytearray((tmp_path / "log").read_bytes())
    second = data.index(b"b" * 100)
    data[second + 50] ^= 0xFF
    (tmp_path / "log").write_bytes(bytes(data))
    assert reopened(tmp_path / "log") == [(1, b"a" * 100)]


def test_a_restart_hides_the_old_run_behind_the_new_records(tmp_path: Path) -> None:
    """After a restart only the new run is read, though the old one's bytes follow it."""
    log = CommitLog(tmp_path / "log", size=SIZE)
    log.restart(1)
    for n in range(20):
        log.append(b"old %d" % n + b"x" * 200, sync=True)
    log.restart(21)
    log.append(b"new", sync=True)
    log.close()
    assert reopened(tmp_path / "log") == [(21, b"new")]


def test_a_full_log_refuses_a_record(tmp_path: Path) -> None:
    """A record that does not fit is refused with a typed error until the log restarts."""
    log = CommitLog(tmp_path / "log", size=SIZE)
    log.restart(1)
    assert not log.fits(SIZE)
    with pytest.raises(StoreWriteFailedError):
        log.append(bytes(SIZE), sync=True)
    log.close()


def test_a_failed_write_refuses_every_later_one(tmp_path: Path) -> None:
    """After a write fails, nothing more is appended (no later record may land without it)."""
    log = CommitLog(tmp_path / "log", size=SIZE)
    log.restart(1)
    os.close(log._fd)  # the descriptor goes: the write fails
    with pytest.raises(StoreWriteFailedError):
        log.append(b"x", sync=True)
    with pytest.raises(StoreWriteFailedError, match="failed earlier"):
        log.append(b"y", sync=True)
    log._fd = -1
    log.close()


@settings(max_examples=40, deadline=None)
@given(
    writes=st.lists(st.tuples(st.integers(min_value=0, max_value=9000), st.booleans()), max_size=25)
)
def test_the_durable_prefix_is_what_reads_back(
    tmp_path_factory: pytest.TempPathFactory, writes: list[tuple[int, bool]]
) -> None:
    """Whatever the sizes and syncs, reading gives exactly the records up to the last synced
    one, and bytes of records already written never change."""
    path = tmp_path_factory.mktemp("log") / "log"
    log = CommitLog(path, size=SIZE)
    log.restart(1)
    appended: list[tuple[int, bytes]] = []
    durable: list[tuple[int, bytes]] = []
    before = b""
    for n, (size, sync) in enumerate(writes):
        payload = bytes([n % 251]) * size
        if not log.fits(size):
            break
        appended.append((log.append(payload, sync=sync), payload))
        if sync:
            durable = list(appended)
            now = path.read_bytes()
            assert now[: len(before)] == before  # earlier records are rewritten unchanged
            written = sum(24 + len(p) for _, p in durable)
            before = now[:written]
        assert reopened(path) == durable
    log.close()
