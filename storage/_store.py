"""``open_store``: a backend, the blob store on it, and where the data folder is."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Literal, final

from satchel.runtime._errors import ValidationError

from ._blobformat import BlobLimits
from ._blobs import BlobStore
from ._check import CheckReport, check_blobs
from ._kv import KeyValueStore
from ._local_ports import LocalObjects, LocalRecords
from ._memory import MemoryStore
from ._rocks import RocksStore

Backend = Literal["rocksdb", "memory"]

DATA_ENV = "SATCHEL_DATA"
DEFAULT_DATA_DIR = ".satchel"


def resolve_data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: ``path`` if given, else ``$SATCHEL_DATA``, else ``./.satchel``."""
    if path is None:
        path = os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR
    return Path(path).expanduser().absolute()


@final
class Store:
    """A key-value backend and the content-addressed blob store kept in it."""

    def __init__(self, kv: KeyValueStore, path: Path | None, limits: BlobLimits) -> None:
        self.kv = kv
        self.path = path
        #: The record port over ``kv`` (what the domain reads and writes through).
        self.records = LocalRecords(kv)
        #: The object port over ``kv``'s blob space.
        self.objects = LocalObjects(kv)
        #: The blobs (chunks and index) in ``records``; ``await blobs.recover()`` once, after
        #: opening, before using them.
        self.blobs = BlobStore(self.records, limits)

    async def check(self, *, fix: bool = False, deep: bool = True) -> CheckReport:
        """Compare the blob index with references and chunks; repair with ``fix=True``."""
        return await check_blobs(self.blobs, fix=fix, deep=deep)

    def close(self) -> None:
        """Close the backend (releasing the data folder's lock)."""
        self.kv.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_store(
    path: str | os.PathLike[str] | None = None,
    *,
    backend: Backend = "rocksdb",
    limits: BlobLimits | None = None,
) -> Store:
    """Open the store in the data folder ``path`` (see ``resolve_data_dir``), or in memory.

    Raises ``StoreLockedError`` if another process (or another open store) holds the folder.
    """
    limits = limits or BlobLimits()
    if backend == "memory":
        return Store(MemoryStore(), None, limits)
    if backend == "rocksdb":
        folder = resolve_data_dir(path)
        return Store(RocksStore(folder), folder, limits)
    raise ValidationError(f"unknown storage backend {backend!r}; use 'rocksdb' or 'memory'")
