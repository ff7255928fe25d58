"""Raw floors under the issue-9 targets, measured on this machine (no satchel code).

* a synced RocksDB put of 200 bytes (one fdatasync): the floor of any single durable write,
  into a log file that grows and into a recycled one that keeps its size (what machine
  durability primes at open: docs/durability.md);
* a plain RocksDB put of a 512 KiB and a 1 MiB value, and a plain file write of 1 MiB: what
  storing one artifact's bytes costs in RocksDB (write-ahead log plus memtable, both fresh
  pages) and in a file;
* BLAKE3 and LZ4 over 1 MiB of half random, half text content.

Writes ``perf/raw_floors.md``. Run (from the repository root)::

    python perf/raw_floors.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import blake3
import lz4.block
import rocksdict

NOTES = Path(__file__).with_name("raw_floors.md")
MIB = 1 << 20


def per_op(action: Callable[[int], object], count: int, rounds: int = 5) -> float:
    """Median over ``rounds`` of the time per call of ``action(i)``, ``count`` calls a round."""
    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for i in range(count):
            action(i)
        results.append((time.perf_counter() - started) / count)
    return statistics.median(results)


def _recycled_log_db(path: Path) -> rocksdict.Rdict:
    """A RocksDB whose live write-ahead log is a recycled 7 MiB file: fill a log, then make
    RocksDB switch logs twice (the second switch reuses the filled one)."""
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_recycle_log_file_num(4)
    options.set_write_buffer_size(8 << 20)
    db = rocksdict.Rdict(str(path), options=options)
    for _ in range(7):
        db.put(b"filler", bytes(MIB))
    for _ in range(2):
        db.delete(b"filler")
        db.flush()
        db.put(b"filler", b"")
    return db


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="satchel-floors-"))
    try:
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        db = rocksdict.Rdict(str(folder / "db"), options=options)
        recycled = _recycled_log_db(folder / "recycled")
        synced, plain = rocksdict.WriteOptions(), rocksdict.WriteOptions()
        synced.sync = True
        content = (os.urandom(MIB // 2) + b"a line of an agent's output\n" * (MIB // 40))[:MIB]
        half = os.urandom(MIB // 2)
        path = folder / "f"
        work: list[tuple[str, Callable[[int], object], int]] = [
            ("RocksDB put 200 B, sync=True", lambda i: db.put(b"s%d" % i, b"x" * 200, synced), 300),
            (
                "RocksDB put 200 B, sync=True, recycled log",
                lambda i: recycled.put(b"s%d" % i, b"x" * 200, synced),
                300,
            ),
            ("RocksDB put 200 B", lambda i: db.put(b"p%d" % i, b"x" * 200, plain), 3000),
            ("RocksDB put 512 KiB", lambda i: db.put(b"h%d" % i, half, plain), 100),
            ("RocksDB put 1 MiB", lambda i: db.put(b"m%d" % i, content, plain), 100),
            (
                "file write 1 MiB (no fsync)",
                lambda i: path.with_suffix(f".{i}").write_bytes(content),
                100,
            ),
            ("BLAKE3 1 MiB", lambda i: blake3.blake3(content).digest(), 100),
            ("LZ4 compress 1 MiB", lambda i: lz4.block.compress(content), 100),
        ]
        rows = [(label, per_op(action, count)) for label, action, count in work]
        db.close()
        recycled.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    lines = [
        "## Raw floors on this machine (`python perf/raw_floors.py`)",
        "",
        "| operation | median |",
        "|---|---|",
        *(f"| {label} | {seconds * 1e6:,.0f} µs |" for label, seconds in rows),
        "",
    ]
    NOTES.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
