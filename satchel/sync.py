"""satchel for synchronous code: ``with satchel.sync.open_runtime() as rt: ...``."""

from ._sync import SyncProxy as SyncProxy
from ._sync import open_runtime as open_runtime
