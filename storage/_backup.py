"""Whole-store backups of a data folder, and restoring one into a new data folder.

A backup is itself a data folder: RocksDB's checkpoint of the index (a consistent view, hard
links where the file system allows) and a copy of every chunk file it may name. The chunk
files are held while they are copied — a file a later commit deletes is removed only once
the copy is done — so the checkpoint never names a file the copy missed. A backup is built
under ``<name>.partial`` and renamed into place when complete: a folder by the final name is
a whole backup.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import anyio
import anyio.to_thread
import attrs

from satchel._errors import InvalidArgumentError, ValidationError

from ._rocks import RocksStore
from ._store import Store

_PARTIAL = ".partial"
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
    final, partial = _prepare(destination, store.path)
    files = kv.checkpoint(partial)
    try:
        copied = await anyio.to_thread.run_sync(_copy_files, store.path, partial, files)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(shutil.rmtree, partial, True)
        raise
    finally:
        kv.end_checkpoint()
    os.replace(partial, final)
    _sync_dir(final.parent)
    return BackupReport(final, len(files), copied)


def _prepare(destination: str | os.PathLike[str], data: Path) -> tuple[Path, Path]:
    """The backup's final and partial folders, checked (a stopped backup's partial one is
    removed)."""
    final = Path(destination).expanduser().absolute()
    if final.exists():
        raise ValidationError(f"{str(final)!r} exists already: a backup goes to a new folder")
    if final.is_relative_to(data.absolute()):
        raise ValidationError("a backup cannot go inside the data folder it copies")
    if not final.parent.is_dir():
        raise ValidationError(f"no folder {str(final.parent)!r} to hold the backup")
    partial = final.with_name(final.name + _PARTIAL)
    if partial.exists():
        shutil.rmtree(partial)
    return final, partial


def _copy_files(source: Path, target: Path, files: list[str]) -> int:
    """Copy ``files`` (relative paths) from ``source`` to ``target``, synced; their bytes.
    A file gone since it was listed was a pending upload the index no longer names."""
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
            continue
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


def finish_restore(final: Path, partial: Path) -> None:
    """Move a checked restore copy into place."""
    if final.exists():
        final.rmdir()
    os.replace(partial, final)
    _sync_dir(final.parent)


def copy_backup(
    backup: str | os.PathLike[str], target: str | os.PathLike[str]
) -> tuple[Path, Path]:
    """Copy the backup folder ``backup`` beside the new data folder ``target`` (to its
    partial name); ``(final, partial)``. The caller checks the copy, then ``finish_restore``."""
    source = Path(backup).expanduser().absolute()
    final = Path(target).expanduser().absolute()
    if not (source / _CURRENT).is_file() or source.name.endswith(_PARTIAL):
        raise ValidationError(f"{str(source)!r} is not a finished satchel backup")
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise ValidationError(f"{str(final)!r} is not empty: restore into a new folder")
    partial = final.with_name(final.name + _PARTIAL)
    if partial.exists():
        shutil.rmtree(partial)
    shutil.copytree(source, partial)
    return final, partial
