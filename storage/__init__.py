"""Storage: key-value backends, the content-addressed blob store, record codecs, ``check``."""

from ._blobformat import BlobLimits as BlobLimits
from ._blobs import BlobRef as BlobRef
from ._blobs import BlobStore as BlobStore
from ._blobs import BlobWriter as BlobWriter
from ._blobs import StagedBlob as StagedBlob
from ._check import CheckReport as CheckReport
from ._codec import RecordCodec as RecordCodec
from ._group_commit import Durability as Durability
from ._group_commit import GroupCommit as GroupCommit
from ._group_commit import GroupCommitStatistics as GroupCommitStatistics
from ._group_commit import checked_durability as checked_durability
from ._kv import BLOBS as BLOBS
from ._kv import INDEX as INDEX
from ._kv import Batch as Batch
from ._kv import KeyValueStore as KeyValueStore
from ._kv import Space as Space
from ._kv import prefix_upper_bound as prefix_upper_bound
from ._kv import scan_prefix as scan_prefix
from ._memory import MemoryStore as MemoryStore
from ._reminders import StoreReminders as StoreReminders
from ._rocks import RocksStore as RocksStore
from ._store import Backend as Backend
from ._store import Store as Store
from ._store import open_store as open_store
from ._store import resolve_data_dir as resolve_data_dir
