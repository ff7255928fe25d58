"""The embedded default backend: RocksDB through rocksdict, in raw-bytes mode.

Index records live in the default column family (LZ4-compressed SST blocks). Blob-space
values of 64 KiB or more are files in ``chunks/`` of the folder (``_chunk_files``: RocksDB's
log would copy and checksum each one on its way in); smaller ones live in the ``blobs`` column
family without SST compression (satchel already compressed what pays), with integrated blob
files for any larger value written there by an earlier version.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast, final

import rocksdict

from satchel.runtime._errors import StoreClosedError, StoreLockedError

from . import _keys
from ._chunk_files import LARGE_VALUE, ChunkFiles, is_file_value, merged
from ._kv import BLOBS, INDEX, Batch, Op, Space, prefix_upper_bound
from ._overlay import check_conditions

_BLOBS_CF = "blobs"
# The index's memtable size, and so how much log a synced write can count on being recycled
# (see RocksStore._prime_log): RocksDB starts a new log file when a memtable is flushed.
_INDEX_BUFFER = 8 << 20
_BLOOM_BITS_PER_KEY = 10


def _index_options() -> rocksdict.Options:
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    options.set_compression_type(rocksdict.DBCompressionType.lz4())
    options.set_keep_log_file_num(4)
    # Reuse write-ahead log files instead of creating new ones: a synced write into a log
    # file that keeps its size skips the file-size journal commit (RocksStore._prime_log).
    options.set_recycle_log_file_num(4)
    options.set_write_buffer_size(_INDEX_BUFFER)
    options.increase_parallelism(2)
    # Bloom filters (10 bits a key, ~1% false positives): a read of a key that is not there
    # (a session that does not exist, a create's check that its key is free, a new blob) skips
    # the files that cannot hold it instead of searching each one. A lookup that misses in a
    # 100,000-session folder: 20 -> 10 us.
    table = rocksdict.BlockBasedOptions()
    table.set_bloom_filter(_BLOOM_BITS_PER_KEY, False)
    options.set_block_based_table_factory(table)
    return options


def _blob_options() -> rocksdict.Options:
    options = rocksdict.Options(raw_mode=True)
    options.set_compression_type(rocksdict.DBCompressionType.none())
    options.set_enable_blob_files(True)
    options.set_min_blob_size(LARGE_VALUE)
    options.set_enable_blob_gc(True)
    return options


def _is_lock_error(error: Exception) -> bool:
    text = str(error)
    return "LOCK" in text and ("lock" in text.lower())


_OWNER_FILE = "owner.pid"


def _holder(folder: Path) -> str:
    """Who holds ``folder``'s lock, as the owner file tells it."""
    try:
        pid = int((folder / _OWNER_FILE).read_text().strip())
    except (OSError, ValueError):
        return "another satchel holds its lock"
    if pid == os.getpid():
        return f"this process (pid {pid}) has it open already"
    return (
        f"process {pid} holds it (a satchel serve there is reached by the CLI; "
        "otherwise stop that process)"
    )


@final
class RocksStore:
    """A ``KeyValueStore`` in a RocksDB folder; one open store per folder at a time."""

    def __init__(
        self, path: str | os.PathLike[str], *, file_values_from: int = LARGE_VALUE
    ) -> None:
        self.path = Path(path)
        #: Blob-space values of this size or more are files (lowered in tests).
        self.file_values_from = file_values_from
        # Only its owner reads a new data folder: it holds every session's data.
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            db = rocksdict.Rdict(
                str(self.path),
                options=_index_options(),
                column_families={_BLOBS_CF: _blob_options()},
            )
        except Exception as error:
            if _is_lock_error(error):
                raise StoreLockedError(
                    f"the data folder {str(self.path)!r} is in use: {_holder(self.path)}"
                ) from None
            raise
        # Who holds the lock, for the error a second opener gets (RocksDB's LOCK names none).
        (self.path / _OWNER_FILE).write_text(f"{os.getpid()}\n")
        self._db: rocksdict.Rdict | None = db
        self._blobs = db.get_column_family(_BLOBS_CF)
        # Every chunk is verified against its BLAKE3 digest on read; RocksDB's own crc32c over
        # a 1 MiB blob-file value doubled the cost of a read and adds nothing to that.
        unchecked = rocksdict.ReadOptions()
        unchecked.set_verify_checksums(False)
        self._blobs.set_read_options(unchecked)
        self._handles = (
            db.get_column_family_handle("default"),
            db.get_column_family_handle(_BLOBS_CF),
        )
        self._files = ChunkFiles(self.path / "chunks")
        self._plain = rocksdict.WriteOptions()
        self._synced = rocksdict.WriteOptions()
        self._synced.sync = True
        self.last_write_options: rocksdict.WriteOptions | None = None
        self.sync_writes = 0
        self._default_sync = False
        self._remove_uncommitted_files()

    @property
    def default_sync(self) -> bool:
        """Whether ``write`` syncs when not told (``machine`` durability). Turning it on
        primes the write-ahead log for synced writes (``_prime_log``)."""
        return self._default_sync

    @default_sync.setter
    def default_sync(self, value: bool) -> None:
        if value and not self._default_sync:
            self._prime_log()
        self._default_sync = value

    def _prime_log(self) -> None:
        """Make the live write-ahead log a recycled file of ``_INDEX_BUFFER`` bytes.

        A synced write that grows the log file also commits the new file size to the file
        system's journal; in a recycled log, which RocksDB overwrites in place, it does not
        (a synced small put: 141-167 µs instead of 216-231 µs). RocksDB recycles only logs it
        retired in this process, so this fills one log with a key written and deleted, and
        flushes twice: the next log is that one, reused. It costs ~40 ms once per open.
        """
        db = self._target(INDEX)
        filler = bytes(1 << 20)
        # Less than a memtable: filling one would switch logs on its own.
        for _ in range((_INDEX_BUFFER >> 20) - 1):
            db.put(_keys.WAL_PRIMER, filler, self._plain)
        # Two switches, no more (a log is cut to its length when it is closed): the first
        # retires the filled log, the second starts the next one in it.
        for _ in range(2):
            db.delete(_keys.WAL_PRIMER, self._plain)
            db.flush()
            self._blobs.flush()
            db.put(_keys.WAL_PRIMER, b"", self._plain)
        db.delete(_keys.WAL_PRIMER, self._synced)

    def _target(self, space: Space) -> rocksdict.Rdict:
        if self._db is None:
            raise StoreClosedError(f"the store at {str(self.path)!r} is closed")
        return self._db if space is Space.INDEX else self._blobs

    def get(self, key: bytes, space: Space = INDEX) -> bytes | None:
        """The value of ``key``, or ``None``."""
        value: bytes | None = self._target(space).get(key)
        if value is None and space is BLOBS:
            return self._files.get(key)
        return value

    def get_many(self, keys: Sequence[bytes], space: Space = INDEX) -> list[bytes | None]:
        """The values of ``keys`` in order, ``None`` for each missing key."""
        if not keys:
            return []
        values = cast("list[bytes | None]", self._target(space).get(list(keys)))
        if space is BLOBS:
            files = self._files
            return [files.get(k) if v is None else v for k, v in zip(keys, values, strict=True)]
        return values

    def scan(
        self,
        lower: bytes,
        upper: bytes,
        *,
        space: Space = INDEX,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Pairs with ``lower <= key < upper`` in key order (descending if ``reverse``)."""
        target = self._target(space)
        pairs = self._scan(target, lower, upper, reverse, limit)
        if space is BLOBS:
            large = self._files.scan(lower, upper, reverse=reverse)
            return merged(pairs, large, reverse=reverse, limit=limit)
        return pairs

    @staticmethod
    def _scan(
        target: rocksdict.Rdict, lower: bytes, upper: bytes, reverse: bool, limit: int | None
    ) -> Iterator[tuple[bytes, bytes]]:
        if lower >= upper or limit == 0:
            return
        # rocksdict 0.3 mis-encodes the lower bound in raw mode, so only the upper one is set.
        read = rocksdict.ReadOptions()
        read.set_iterate_upper_bound(upper)
        # rocksdict's own iterator of pairs: one call a pair, not four (valid, key, value,
        # next). Backwards it starts at the last key before ``upper`` (the bound keeps
        # ``upper`` itself out) and is stopped at ``lower`` here; forwards, at ``lower``.
        # Raw mode: keys and values are bytes.
        pairs = cast(
            "Iterator[tuple[bytes, bytes]]",
            target.items(backwards=reverse, from_key=upper if reverse else lower, read_opt=read),
        )
        if limit is not None:
            pairs = itertools.islice(pairs, limit)
        if not reverse:
            yield from pairs
            return
        for key, value in pairs:
            if key < lower:
                return
            yield key, value

    def write(self, batch: Batch, *, sync: bool | None = None) -> None:
        """Apply ``batch``: its index operations, and blob-space values under 64 KiB, in one
        RocksDB WriteBatch; larger blob-space values are files written before it, and files
        it deletes go after it (``_chunk_files``)."""
        db = self._target(INDEX)
        if batch.conditions:
            # WriteConflictError before anything is written (index reads straight from db).
            check_conditions(self, batch, db.get)
        if sync is None:
            sync = self.default_sync
        options = self._synced if sync else self._plain
        #: The options of the last write: the test that ``machine`` durability really syncs.
        self.last_write_options = options
        if sync:
            self.sync_writes += 1
        ops = batch.ops
        if len(ops) == 1 and ops[0][0] == "put" and ops[0][1] is INDEX:
            # One put is atomic by itself; skipping the WriteBatch saves a third of its cost.
            _, _, key, value = ops[0]
            if sync:
                self._files.sync()
            db.put(key, value, options)
            return
        native = rocksdict.WriteBatch(raw_mode=True)
        index = self._handles[0]
        for op, space, key, value in ops:
            if space is not INDEX:
                break
            if op == "put":
                native.put(key, value, index)
            elif op == "delete":
                native.delete(key, index)
            else:
                native.delete_range(key, cast("bytes", value), index)
        else:
            # Index records only (every session write): no chunk file to write or remove,
            # only those written before to make durable first (as _commit_with_files does).
            if sync:
                self._files.sync()
            db.write(native, options)
            return
        self._write_with_blobs(ops, options, sync=sync)

    def _write_with_blobs(
        self, ops: Sequence[Op], options: rocksdict.WriteOptions, *, sync: bool
    ) -> None:
        """``write`` of a batch that has blob-space operations (see ``write``)."""
        native = rocksdict.WriteBatch(raw_mode=True)
        files: dict[bytes, tuple[int, bytes]] = {}  # key -> position and value of its file put
        last: dict[bytes, int] = {}  # blob-space key -> position of its last put or delete
        removals: list[tuple[int, bytes, bytes | None]] = []  # position, key or range
        # Enum hashing is a Python-level call; an identity test is not.
        index, blobs = self._handles
        small: set[bytes] = set()  # blob-space keys this batch puts in RocksDB
        for position, (op, space, key, value) in enumerate(ops):
            handle = index if space is INDEX else blobs
            if op == "put":
                if space is BLOBS:
                    last[key] = position
                    if is_file_value(key, large := cast("bytes", value), self.file_values_from):
                        files[key] = (position, large)
                        # An older small value must not shadow the file. Only one that is
                        # there gets a tombstone: a scan of the blob space steps over every
                        # tombstone until compaction drops it, and chunks are new keys.
                        if key in small or self._blobs.get(key) is not None:
                            native.delete(key, handle)
                        continue
                    small.add(key)
                native.put(key, value, handle)
            elif op == "delete":
                native.delete(key, handle)
                if space is BLOBS:
                    last[key] = position
                    removals.append((position, key, None))
            else:
                native.delete_range(key, cast("bytes", value), handle)
                if space is BLOBS:
                    removals.append((position, key, value))
        kept = _surviving(files, last, removals) if files else {}
        doomed = self._doomed_files(kept, removals) if removals else []
        self._commit_with_files(native, options, kept, doomed, sync=sync)

    def _commit_with_files(
        self,
        native: rocksdict.WriteBatch,
        options: rocksdict.WriteOptions,
        kept: dict[bytes, bytes],
        doomed: list[bytes],
        *,
        sync: bool,
    ) -> None:
        """Write the files ``kept``, commit ``native``, then remove the files ``doomed``.

        A new file is marked before it is written and a replacement before its ``.new`` is,
        so the next open removes what a stopped process never committed; the commit clears
        those marks (also stale ones, left by an earlier write that failed) and marks the
        files it deletes, whose marks go once they are gone. A failed write of files removes
        the new ones again and raises; nothing is committed.
        """
        db = self._target(INDEX)
        index = self._handles[0]
        created: list[bytes] = []
        if kept:
            marked = rocksdict.WriteBatch(raw_mode=True)
            for key in kept:
                if self._files.exists(key):
                    marked.put(_keys.chunk_file_replacing_key(key), b"", index)
                else:
                    marked.put(_keys.chunk_file_pending_key(key), b"", index)
                    created.append(key)
                native.delete(_keys.chunk_file_pending_key(key), index)
                native.delete(_keys.chunk_file_replacing_key(key), index)
            db.write(marked, self._plain)
        for key in doomed:
            native.put(_keys.chunk_file_pending_key(key), b"", index)
        if kept or sync:
            self._files.write(kept.items(), sync=sync)
        try:
            db.write(native, options)
        except BaseException:
            # Not committed: the new files must not read as values (their marks stay).
            self._files.remove(created)
            raise
        if doomed:
            self._remove_files(doomed)

    def _remove_files(self, doomed: list[bytes]) -> None:
        """Remove the files of keys a committed batch deleted, clearing their marks; a file
        that cannot be removed now (or that a backup holds) keeps its mark for later."""
        failed = set(self._files.remove(doomed))
        self._files.hide(failed)
        cleared = rocksdict.WriteBatch(raw_mode=True)
        for key in doomed:
            if key not in failed:
                cleared.delete(_keys.chunk_file_pending_key(key), self._handles[0])
        if cleared.len():
            self._target(INDEX).write(cleared, self._plain)

    def checkpoint(self, dest: Path) -> list[str]:
        """Write a consistent copy of the database to the new folder ``dest`` (RocksDB's
        checkpoint: hard links where it can) and hold every chunk file until
        ``end_checkpoint``; the chunk files to copy beside it, relative to the data folder."""
        db = self._target(INDEX)
        self._files.hold()
        try:
            rocksdict.Checkpoint(db).create_checkpoint(str(dest))
            return self._files.paths()
        except BaseException:
            self.end_checkpoint()
            raise

    def end_checkpoint(self) -> None:
        """Let go of the chunk files a checkpoint held, removing those deleted meanwhile."""
        held = self._files.release()
        if held and self._db is not None:
            self._remove_files(held)

    def _remove_uncommitted_files(self) -> None:
        """Remove the files the index marks as named by nothing: written by a batch a stopped
        process never committed, or deleted by one it committed but did not finish; and the
        unfinished replacements it marked."""
        db = self._target(INDEX)
        batch = rocksdict.WriteBatch(raw_mode=True)
        for prefix, replacements in (
            (_keys.CHUNK_FILE_PENDING, False),
            (_keys.CHUNK_FILE_REPLACING, True),
        ):
            marks = [k for k, _ in self._scan(db, prefix, prefix_upper_bound(prefix), False, None)]
            keys = [mark[len(prefix) :] for mark in marks]
            failed = set(self._files.remove(keys, replacements=replacements))
            if not replacements:
                self._files.hide(failed)
            for key, mark in zip(keys, marks, strict=True):
                if key not in failed:
                    batch.delete(mark, self._handles[0])
        if batch.len():
            db.write(batch, self._plain)

    def _doomed_files(
        self, kept: dict[bytes, bytes], removals: list[tuple[int, bytes, bytes | None]]
    ) -> list[bytes]:
        """The keys whose existing files a batch deletes and does not write again."""
        doomed: dict[bytes, None] = {}
        for _, lower, upper in removals:
            if upper is None:
                keys = [lower] if self._files.exists(lower) else []
            else:
                keys = self._files.keys(lower, upper)
            doomed.update((k, None) for k in keys if k not in kept)
        return list(doomed)

    def compact(self) -> None:
        """Compact both column families over their whole key range."""
        self._target(Space.INDEX).compact_range(None, None)
        self._target(Space.BLOBS).compact_range(None, None)

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._db is None

    def close(self) -> None:
        """Flush the memtables and release the folder's lock."""
        if self._db is None:
            return
        db, self._db = self._db, None
        del self._blobs, self._handles
        db.close()


def _surviving(
    files: dict[bytes, tuple[int, bytes]],
    last: dict[bytes, int],
    removals: list[tuple[int, bytes, bytes | None]],
) -> dict[bytes, bytes]:
    """The file puts of a batch that no later operation of the same batch overrides (a put
    of another value, a delete, a range delete): only those become files."""
    ranges = [(position, lower, upper) for position, lower, upper in removals if upper is not None]
    kept: dict[bytes, bytes] = {}
    for key, (position, value) in files.items():
        if last[key] != position:
            continue
        if any(at > position and lower <= key < upper for at, lower, upper in ranges):
            continue
        kept[key] = value
    return kept
