"""Whole-store backups of a data folder, and copying one into a new data folder.

A backup is itself a data folder: RocksDB's checkpoint of the index (a consistent view, hard
links where the file system allows) and a copy of every chunk file it may name. The chunk
files are held while they are copied — a file a later commit deletes is removed only once
the copy is done — so the checkpoint never names a file the copy missed; a file that goes
anyway (the store closed, or something outside satchel removed it) fails the backup. A backup
is built in a hidden folder of its own beside the destination and renamed into place when
complete: a folder by the final name is a whole backup, and nothing that was there before is
ever removed.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import anyio
import anyio.to_thread
import attrs

from satchel.runtime._errors import (
    IntegrityError,
    InvalidArgumentError,
    StoreClosedError,
    ValidationError,
)

from ._rocks import RocksStore
from ._store import Store

#: A file every RocksDB folder has: what tells a data folder from any other folder.
_CURRENT = "CURRENT"


@attrs.frozen
class BackupReport:
    """A finished backup: where it is, and the chunk files and their bytes it copied."""

    path: Path
    chunk_files: int
    chunk_bytes: int


async def backup_store(store: Store, destination: str | os.PathLike[str]) -> BackupReport:
    """Copy the open ``store`` whole into the new folder ``destination`` while it keeps
    serving; writes committed after the backup began are not in it."""
    kv = store.kv
    if not isinstance(kv, RocksStore) or store.path is None:
        raise InvalidArgumentError("only a store in a data folder (rocksdb) can be backed up")
    final = _destination(destination, store.path)
    partial = _partial(final)
    files = kv.checkpoint(partial)
    try:
        try:
            copied = await anyio.to_thread.run_sync(_copy_files, store.path, partial, files)
        finally:
            kv.end_checkpoint()
        if kv.closed:
            # Its next open removes files the copy may have missed: this copy is not whole.
            raise StoreClosedError("the store closed while it was being backed up")
        _publish(partial, final)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(shutil.rmtree, partial, True)
        raise
    return BackupReport(final, len(files), copied)


def _destination(destination: str | os.PathLike[str], data: Path) -> Path:
    """The backup's folder, checked: new, outside the data folder, in a folder that exists."""
    final = Path(destination).expanduser().absolute()
    if final.exists():
        raise ValidationError(f"{str(final)!r} exists already: a backup goes to a new folder")
    if final.is_relative_to(data.absolute()):
        raise ValidationError("a backup cannot go inside the data folder it copies")
    if not final.parent.is_dir():
        raise ValidationError(f"no folder {str(final.parent)!r} to hold the backup")
    return final


def _partial(final: Path) -> Path:
    """A new hidden folder name beside ``final``, this copy's own while it is written."""
    return final.with_name(f".{final.name}.partial-{secrets.token_hex(6)}")


def _publish(partial: Path, final: Path) -> None:
    """Give the finished copy its name (which must still be free, or an empty folder)."""
    if final.exists():
        if not final.is_dir() or any(final.iterdir()):
            raise ValidationError(f"{str(final)!r} appeared while the copy was made")
        final.rmdir()
    os.rename(partial, final)
    _sync_dir(final.parent)


def _copy_files(source: Path, target: Path, files: list[str]) -> int:
    """Copy ``files`` (relative paths) from ``source`` to ``target``, synced; their bytes."""
    total = 0
    folders: set[Path] = set()
    for name in files:
        to = target / name
        if to.parent not in folders:
            to.parent.mkdir(parents=True, exist_ok=True)
            folders.add(to.parent)
        try:
            shutil.copyfile(source / name, to)
        except FileNotFoundError:
            if not (source / name).exists():
                gone = f"chunk file {name} went while it was being backed up"
                raise IntegrityError(gone) from None
            raise
        fd = os.open(to, os.O_RDONLY)
        try:
            os.fsync(fd)
            total += os.fstat(fd).st_size
        finally:
            os.close(fd)
    for folder in (*folders, *(f.parent for f in folders), target):
        _sync_dir(folder)
    return total


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_backup(backup: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy the backup folder ``backup`` to a hidden folder of its own beside the new data
    folder ``target``, and return it; the caller checks the copy, then ``finish_restore``
    names it (or removes it)."""
    source = Path(backup).expanduser().absolute()
    final = Path(target).expanduser().absolute()
    if not (source / _CURRENT).is_file() or ".partial-" in source.name:
        raise ValidationError(f"{str(source)!r} is not a finished satchel backup")
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise ValidationError(f"{str(final)!r} is not empty: restore into a new folder")
    if not final.parent.is_dir():
        raise ValidationError(f"no folder {str(final.parent)!r} to restore into")
    partial = _partial(final)
    try:
        shutil.copytree(source, partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return partial


def finish_restore(partial: Path, target: str | os.PathLike[str]) -> Path:
    """Give a checked restore copy the data folder's name; the folder."""
    final = Path(target).expanduser().absolute()
    _publish(partial, final)
    return final
