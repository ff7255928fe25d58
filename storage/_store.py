"""``open_store``: a backend, the blob store on it, and where the data folder is."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Literal, final

from satchel.runtime._errors import InvalidArgumentError, ValidationError

from ._blobformat import BlobLimits
from ._blobs import BlobStore
from ._check import CheckReport, check_blobs
from ._kv import KeyValueStore
from ._local_ports import LocalRecords
from ._memory import MemoryStore
from ._open_ports import open_networked
from ._ports import RecordStore
from ._rocks import RocksStore

Backend = Literal["rocksdb", "memory"]

DATA_ENV = "SATCHEL_DATA"
DEFAULT_DATA_DIR = ".satchel"


def resolve_data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: ``path`` if given, else ``$SATCHEL_DATA``, else ``./.satchel``."""
    if path is None:
        path = os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR
    return Path(path).expanduser().absolute()


#: How old a pending upload of a store other processes share must be to count as left behind.
SHARED_GRACE_S = 3600.0
#: How many chunk reads whole blob reads of a networked store run at once, all reads of the
#: store together: each is a round trip (an S3 GET of up to a chunk), and they overlap. Half
#: the PostgreSQL connections a store keeps, so other calls are not queued behind them.
NETWORK_READS = 4


@final
class Store:
    """A record store (a local key-value backend, or a networked one) and the
    content-addressed blob store kept in it."""

    def __init__(
        self,
        kv: KeyValueStore | None,
        path: Path | None,
        limits: BlobLimits,
        *,
        records: RecordStore | None = None,
    ) -> None:
        #: The local backend, ``None`` on a networked store (``records`` is given then).
        self.kv = kv
        self.path = path
        if records is None:
            if kv is None:
                raise InvalidArgumentError("a store needs a key-value backend or a record store")
            records = LocalRecords(kv)
        #: The record port (what the domain reads and writes through).
        self.records: RecordStore = records
        #: The blobs (chunks and index) in ``records``; ``await blobs.recover()`` once, after
        #: opening, before using them.
        self.blobs = BlobStore(
            self.records, limits, parallel_reads=NETWORK_READS if self.networked else 1
        )

    @property
    def networked(self) -> bool:
        """Whether the records are on a server (PostgreSQL), not in a local backend."""
        return self.kv is None

    async def check(self, *, fix: bool = False, deep: bool = True) -> CheckReport:
        """Compare the blob index with references and chunks; repair with ``fix=True``."""
        # On a networked store other processes' uploads under way are pending too: the
        # grace of ``recover`` on it.
        grace = SHARED_GRACE_S if self.networked else 0.0
        return await check_blobs(self.blobs, fix=fix, deep=deep, grace_s=grace)

    def close(self) -> None:
        """Close a local backend (releasing the data folder's lock); see ``aclose``."""
        if self.kv is not None:
            self.kv.close()

    async def aclose(self) -> None:
        """Close the backend, local or networked."""
        if self.kv is not None:
            self.kv.close()
        else:
            await self.records.aclose()

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


async def open_networked_store(
    store: str, objects: str | None = None, *, limits: BlobLimits | None = None
) -> Store:
    """A store on PostgreSQL (``store``: a ``postgresql://`` URL), with blob values of 64 KiB
    and more in the S3 bucket ``objects`` names (``s3://bucket?endpoint=…``) when given;
    close it with ``aclose``."""
    return Store(None, None, limits or BlobLimits(), records=await open_networked(store, objects))
