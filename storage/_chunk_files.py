"""Large values of the blob space as files beside the RocksDB index (``RocksStore``).

RocksDB writes every value through its write-ahead log, which copies it and checksums it
(crc32c, in software in rocksdict's portable build): putting a 530 KB chunk cost ~890 µs
here, writing it to a file ~195 µs. Blob chunks are verified against their BLAKE3 digests on
every read, so the log's checksum adds nothing for them. So a blob-space value of at least
``LARGE_VALUE`` bytes is a file named by its key (hex), in ``chunks/<first byte>/`` of the data
folder; smaller values stay in RocksDB, which does them better.

Order, as diskcache does it: a batch's files are written before its index commit and removed
after it, so an index record never names a file not written yet. Only a batch's last word on
a key becomes a file (a large put that the same batch deletes or overwrites writes none).
``RocksStore`` marks new files in the index before writing them and clears the marks in the
commit, and marks the files a batch deletes in its commit, clearing those marks once they
are gone; the next open removes every marked file, so a killed process leaves none behind. A
key whose file exists already is replaced whole: written aside as ``<name>.new`` (marked too,
so the next open removes one a killed process left), then renamed over it — atomic by itself,
not with the rest of its batch (satchel never replaces a chunk: every upload has a new id).

Failures: a batch whose files cannot all be written removes the new ones and raises, and
nothing of it is committed. A file a committed delete cannot remove (the error is logged)
reads as absent and keeps its mark, so the next open tries again.

Durability follows the write-ahead log's rule: a file written without sync is in the page
cache (a killed process loses nothing); a synced write first makes every file written since
the last synced write durable (its data and its directory entry), as a synced log write does
for every earlier write.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import final

log = logging.getLogger("satchel.storage")

#: Blob-space values from this size on are files.
LARGE_VALUE = 64 * 1024
#: The suffix of a replacement being written (renamed over the key's file when complete).
_REPLACEMENT = ".new"
#: Longer keys stay in RocksDB whatever their value's size (a file name has 255 bytes), and
#: so does the empty key (it would name no file).
MAX_FILE_KEY = 120
#: Files written but not yet synced that are tracked one by one; past this, a synced write
#: syncs the whole file system instead (only explicit syncs in ``process`` durability get there).
_TRACKED = 4096


def is_file_value(key: bytes, value: bytes, large: int = LARGE_VALUE) -> bool:
    """Whether the blob-space pair ``key``/``value`` is kept as a file (values of ``large``
    bytes or more)."""
    return len(value) >= large and _nameable(key)


def _nameable(key: bytes) -> bool:
    return 0 < len(key) <= MAX_FILE_KEY


def _key_of(name: str) -> bytes | None:
    """The key a file name in a chunk folder stands for; ``None`` for any other file (an
    unfinished replacement, or something not ours)."""
    try:
        return bytes.fromhex(name)
    except ValueError:
        return None


def _unlink_quietly(path: str) -> None:
    # Cleaning up after an error that is being raised; the index's marks cover the rest.
    with contextlib.suppress(OSError):
        os.unlink(path)


@final
class ChunkFiles:
    """The files of one data folder's large blob-space values (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._unsynced: dict[str, None] = {}  # paths, in write order
        self._unsynced_dirs: set[str] = set()
        self._overflowed = False
        if not root.is_dir():
            root.mkdir()
            self._note_unsynced_dir(str(root.parent))  # the folder's own entry
        self._made: set[str] = {entry.name for entry in os.scandir(root) if entry.is_dir()}
        # Keys whose files a committed batch deleted but that could not be removed yet: they
        # read as absent until removed (their marks stay in the index for the next open).
        self._hidden: set[bytes] = set()
        # A failed fsync may have dropped the dirty pages it was to write, and a second one
        # would then succeed over lost data (Linux): once one fails, synced writes fail until
        # the store is reopened.
        # (Its text only: the error's frames would keep the store's database alive.)
        self._sync_failure: str | None = None
        # The sorted keys of the folder listed last, with the count of writes and removals
        # when it was listed: a paged scan reads the same folder page after page.
        self._changes = 0
        self._listing: tuple[str, int, list[bytes]] | None = None
        # While a backup copies the files, removals wait (their index marks stay meanwhile,
        # so a process killed before ``release`` removes them at its next open).
        self._holds = 0
        self._held: dict[bytes, None] = {}  # keys, in the order their removal waited

    def hold(self) -> None:
        """Keep every file until ``release``: a backup is copying them."""
        self._holds += 1

    def release(self) -> list[bytes]:
        """End one ``hold``; once none is left, the keys whose removal waited (the caller
        removes them)."""
        self._holds -= 1
        if self._holds:
            return []
        held, self._held = self._held, {}
        return list(held)

    def paths(self) -> list[str]:
        """Every key's file, as paths relative to the folder's parent (``chunks/ab/ab..``);
        unfinished replacements are left out."""
        found = []
        for folder in sorted(self._made):
            for entry in os.scandir(os.path.join(self.root, folder)):
                if not entry.name.endswith(_REPLACEMENT):
                    found.append(os.path.join(self.root.name, folder, entry.name))
        return found

    def _path(self, key: bytes) -> str:
        name = key.hex()
        return os.path.join(self.root, name[:2], name)

    def exists(self, key: bytes) -> bool:
        """Whether ``key`` has a file (also a hidden one, see ``hide``)."""
        return _nameable(key) and os.path.exists(self._path(key))

    def hide(self, keys: Iterable[bytes]) -> None:
        """Read the files of ``keys`` as absent until they are written again (their removal
        failed after the batch that deleted them was committed)."""
        self._hidden.update(keys)

    def get(self, key: bytes) -> bytes | None:
        """The value stored as the file of ``key``, or ``None``."""
        if not _nameable(key) or (self._hidden and key in self._hidden):
            return None
        try:
            fd = os.open(self._path(key), os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            size = os.fstat(fd).st_size
            data = os.read(fd, size)
            while len(data) < size:  # a regular file reads whole unless interrupted
                more = os.read(fd, size - len(data))
                if not more:
                    break
                data += more
            return data
        finally:
            os.close(fd)

    def write(self, pairs: Iterable[tuple[bytes, bytes]], *, sync: bool) -> None:
        """Write each value as its key's file; with ``sync``, make it and every file written
        since the last synced write durable before returning.

        If a write fails, the files this call created are removed again (a replacement
        already renamed into place stays: see the module docstring) and the error raised.
        """
        created: list[str] = []
        try:
            for key, value in pairs:
                if self._write_one(key, value):
                    created.append(self._path(key))
            if sync:
                self.sync()
        except BaseException:
            for path in created:
                _unlink_quietly(path)
            raise
        finally:
            self._changes += 1  # after the files changed: a listing taken before is stale

    def _write_one(self, key: bytes, value: bytes) -> bool:
        """Write the file of ``key``; whether it is new (not a replacement)."""
        path = self._path(key)
        folder = os.path.dirname(path)
        if key[:1].hex() not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(key[:1].hex())
            self._note_unsynced_dir(str(self.root))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            target = path
        except FileExistsError:
            target, path = path, path + _REPLACEMENT
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            try:
                view = memoryview(value)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            if path != target:
                os.replace(path, target)
        except BaseException:
            _unlink_quietly(path)  # a part-written file must not read as the key's value
            raise
        self._note_unsynced(target)
        self._note_unsynced_dir(folder)
        self._hidden.discard(key)
        # Written again while a backup held its deleted file: the removal that waited for
        # the backup would now remove this value.
        self._held.pop(key, None)
        return path == target

    def _note_unsynced(self, path: str) -> None:
        if self._overflowed:
            return
        self._unsynced[path] = None
        if len(self._unsynced) > _TRACKED:
            self._overflowed = True
            self._unsynced.clear()
            self._unsynced_dirs.clear()

    def _note_unsynced_dir(self, folder: str) -> None:
        if not self._overflowed:
            self._unsynced_dirs.add(folder)

    def sync(self) -> None:
        """Make every file written since the last sync durable, with its directory entry;
        ``OSError`` if that failed (and from then on, see ``_sync_failure``)."""
        if self._sync_failure is not None:
            raise OSError(f"an earlier fsync of chunk files failed: {self._sync_failure}")
        if not (self._unsynced or self._unsynced_dirs or self._overflowed):
            return  # every synced write of the store asks; nearly always none was written
        try:
            self._sync_all()
        except OSError as error:
            self._sync_failure = str(error)
            raise

    def _sync_all(self) -> None:
        if self._overflowed:
            os.sync()
            self._overflowed = False
            return
        for path in self._unsynced:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # removed since: nothing to keep
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for folder in sorted(self._unsynced_dirs, key=len, reverse=True):
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._unsynced.clear()
        self._unsynced_dirs.clear()

    def remove(self, keys: Iterable[bytes], *, replacements: bool = False) -> list[bytes]:
        """Delete the files of ``keys`` (a key without one is skipped), or with
        ``replacements`` their unfinished replacements; the keys whose file could not be
        deleted (the error is logged: the caller keeps their marks for a later try)."""
        try:
            return self._remove(keys, replacements)
        finally:
            self._changes += 1

    def _remove(self, keys: Iterable[bytes], replacements: bool) -> list[bytes]:
        failed: list[bytes] = []
        if self._holds and not replacements:
            # Kept for a backup: removed at ``release``; till then they read as absent.
            keys = [key for key in keys if _nameable(key)]
            self._held.update(dict.fromkeys(keys))
            self._hidden.update(keys)
            return keys
        for key in keys:
            if not _nameable(key):
                continue
            path = self._path(key) + (_REPLACEMENT if replacements else "")
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as error:
                # The text only: a record holding the error would keep its frames (and the
                # store they name) alive for as long as a handler keeps the record.
                log.warning("chunk file %s not removed: %s", path, str(error))
                failed.append(key)
                continue
            self._unsynced.pop(path, None)
            if not replacements:
                self._hidden.discard(key)
        return failed

    def keys(self, lower: bytes, upper: bytes) -> list[bytes]:
        """The keys with files, ``lower <= key < upper``, in order."""
        return list(self.iter_keys(lower, upper))

    def iter_keys(self, lower: bytes, upper: bytes, *, reverse: bool = False) -> Iterator[bytes]:
        """``keys`` (reversed with ``reverse``), one chunk folder listed at a time: a scan
        that stops early lists only the folders it reached (a paged scan of the whole space
        listed every folder for every page)."""
        if lower >= upper:
            return
        low, high = lower[:1].hex(), upper[:1].hex()
        folders = sorted((f for f in self._made if low <= f <= high), reverse=reverse)
        hidden = self._hidden
        for folder in folders:
            keys = self._folder_keys(folder)
            found = keys[bisect.bisect_left(keys, lower) : bisect.bisect_left(keys, upper)]
            if hidden:
                found = [key for key in found if key not in hidden]
            if reverse:
                found.reverse()
            yield from found

    def _folder_keys(self, folder: str) -> list[bytes]:
        """The keys with files in chunk folder ``folder``, sorted (the last folder listed
        is kept until a write or removal)."""
        listing = self._listing
        changes = self._changes  # read before listing: a change during it makes it stale
        if listing is not None and listing[0] == folder and listing[1] == changes:
            return listing[2]
        try:
            names = os.listdir(os.path.join(self.root, folder))
        except FileNotFoundError:
            return []
        keys = sorted(key for name in names if (key := _key_of(name)) is not None)
        self._listing = (folder, changes, keys)
        return keys

    def scan(self, lower: bytes, upper: bytes, *, reverse: bool) -> Iterator[tuple[bytes, bytes]]:
        """Pairs with files, ``lower <= key < upper``, in key order (or reversed)."""
        for key in self.iter_keys(lower, upper, reverse=reverse):
            value = self.get(key)
            if value is not None:
                yield key, value


def merged(
    small: Iterator[tuple[bytes, bytes]],
    large: Iterator[tuple[bytes, bytes]],
    *,
    reverse: bool,
    limit: int | None,
) -> Iterator[tuple[bytes, bytes]]:
    """Two ordered scans as one; a key in both reads as the first (RocksDB holds the value
    written last: putting a small value does not remove an older file)."""
    left = -1 if limit is None else limit
    last: bytes | None = None
    streams = (((key, 0, value) for key, value in small), ((key, 1, value) for key, value in large))
    # For equal keys the RocksDB value (source 0) comes first, in either direction.
    order = (lambda item: (item[0], -item[1])) if reverse else (lambda item: (item[0], item[1]))
    if left == 0:
        return
    for key, _, value in heapq.merge(*streams, key=order, reverse=reverse):
        if key == last:
            continue
        last = key
        yield key, value
        left -= 1
        if left == 0:
            return  # before the merge asks either scan for more (a chunk folder, say)
