"""satchel for synchronous code: ``with satchel.sync.open_runtime() as rt: ...``."""

from ._sync import open_runtime as open_runtime
from ._sync_api import SyncActorRef as SyncActorRef
from ._sync_api import SyncCollectors as SyncCollectors
from ._sync_api import SyncControl as SyncControl
from ._sync_api import SyncHooks as SyncHooks
from ._sync_api import SyncMetrics as SyncMetrics
from ._sync_api import SyncReplays as SyncReplays
from ._sync_api import SyncRuntime as SyncRuntime
from ._sync_artifacts import SyncArtifactManager as SyncArtifactManager
from ._sync_sessions import SyncSessionHandle as SyncSessionHandle
from ._sync_sessions import SyncSessionManager as SyncSessionManager
