"""The sandboxed Lua runtime and the globals it exposes (see ``docs/lua.md``)."""

from ._api import ScriptApi as ScriptApi
from ._api import api_names as api_names
from ._sandbox import LuaState as LuaState
from ._sandbox import ScriptLimits as ScriptLimits
