"""The sandboxed Lua runtime, its worker processes and the globals it exposes (see
``docs/lua.md``)."""

from ._api import ScriptApi as ScriptApi
from ._api import api_names as api_names
from ._pool import ScriptWorkers as ScriptWorkers
from ._pool import WorkerPool as WorkerPool
from ._run import ScriptLimits as ScriptLimits
from ._sandbox import LuaState as LuaState
