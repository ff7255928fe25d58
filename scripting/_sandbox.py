"""The operator's scripts in the host process: a sandboxed Lua state driven from the event loop.

A run is a Lua coroutine (see ``_core``); each API call yields one request, which ``run``
awaits (the event loop keeps running meanwhile) and answers by resuming the script. Pure Lua
computation between two API calls holds the event loop, bounded by the instruction and time
limits, and C functions the count hook never reaches are not bounded at all: only the
operator's own scripts run here (``satchel run`` without a session, ``Runtime.run_lua`` of a
host script). Session scripts and scripts sent over HTTP run in worker processes (``_pool``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from satchel.runtime._errors import ScriptError

from ._core import LuaEngine
from ._run import Dispatch, ScriptLimits, Step, drive


class LuaState:
    """One Lua state with the sandbox installed, for runs in this process; ``define`` adds
    the API functions."""

    def __init__(self, limits: ScriptLimits, *, allow_io: bool = False) -> None:
        self.limits = limits
        self._output: Callable[[str], None] = print
        self._engine = LuaEngine(limits.max_memory, (), allow_io=allow_io, output=self._print)

    @property
    def usable(self) -> bool:
        """False once a run was stopped by a limit: the state is then replaced, not reused."""
        return self._engine.usable

    @property
    def lua(self) -> Any:
        """The lupa runtime (for tests)."""
        return self._engine.lua

    @property
    def env(self) -> Any:
        """The environment scripts run in (for tests)."""
        return self._engine.env

    def define(self, names: Sequence[tuple[str, str, str]]) -> None:
        """Add API functions: ``(global table, function name, request op)``."""
        self._engine.define(names)

    def _print(self, line: bytes) -> None:
        self._output(line.decode(errors="replace"))

    async def run(
        self,
        source: str | bytes,
        dispatch: Dispatch,
        *,
        name: str = "script",
        args: Sequence[Any] = (),
        output: Callable[[str], None] = print,
        limits: ScriptLimits | None = None,
    ) -> list[Any]:
        """Run ``source``; its return values. API requests go to ``dispatch(op, args)``.
        ``limits``: this run's, if not the state's."""
        if not self.usable:
            raise ScriptError("this Lua state was stopped by a limit; use a new one")
        self.limits = limits or self.limits
        self._output = output
        try:
            return await drive(_InProcess(self, source, name, args), dispatch, self.limits)
        finally:
            self._output = print


class _InProcess:
    """A run in this process's Lua state."""

    def __init__(
        self, state: LuaState, source: str | bytes, name: str, args: Sequence[Any]
    ) -> None:
        self._engine = state._engine
        self._limits = state.limits
        self._source = source.encode() if isinstance(source, str) else source
        self._name = name
        self._args = args

    async def start(self) -> Step:
        return self._engine.start(self._source, self._name, self._args, self._limits.as_plain())

    async def resume(self, ok: bool, values: Sequence[Any]) -> Step:
        return self._engine.resume(ok, values)

    async def expired(self, why: str) -> Step:
        return self._engine.kill(why)
