"""A sandboxed Lua state and the driver that runs scripts in it on Trio.

The script runs as a Lua coroutine; each API call yields one request, which ``run`` awaits
(the event loop keeps running meanwhile) and answers by resuming the script. There is no
thread: pure Lua computation between two API calls holds the event loop, bounded by the
instruction and time limits, as any CPU-bound code in a Trio task would.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import attrs
import lupa

from satchel import _errors as errors
from satchel._errors import (
    SatchelError,
    ScriptError,
    ScriptLimitExceededError,
    ValidationError,
)

from ._convert import from_lua, to_lua
from ._patterns import pattern_weight
from ._prelude import PRELUDE

#: Answers one API request with the values the Lua call returns (none, one or more).
Dispatch = Callable[[str, tuple[Any, ...]], Awaitable[Sequence[Any]]]
log = logging.getLogger("satchel.scripting")
_MEMORY = b"not enough memory"
_LIMIT = "ScriptLimitExceeded: "
_KINDS = {
    cls.kind: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, SatchelError) and cls is not ScriptError
}


@attrs.frozen
class ScriptLimits:
    """What one run may use: Lua memory (bytes, the whole state), VM instructions, wall time
    (seconds, API calls included), and the estimated steps of one pattern match."""

    max_memory: int = 64 << 20
    max_instructions: int = 50_000_000
    max_seconds: float = 30.0
    max_pattern_steps: int = 100_000_000

    def __attrs_post_init__(self) -> None:
        for field in ("max_memory", "max_instructions", "max_pattern_steps"):
            value = getattr(self, field)
            if type(value) is not int or value <= 0:
                raise ValidationError(f"{field} must be a positive integer, not {value!r}")
        if not (isinstance(self.max_seconds, int | float) and 0 < self.max_seconds < math.inf):
            raise ValidationError(
                f"max_seconds must be a positive number, not {self.max_seconds!r}"
            )


def _refuse_attributes(obj: object, name: object, is_setting: bool) -> object:
    raise AttributeError("Python objects are not reachable from the sandbox")


# The host functions a script can reach return their failures as values and never raise: a
# Python exception would reach the script as a Python object.


def _json_encode(value: Any) -> tuple[bool, bytes]:
    try:
        return True, json.dumps(from_lua(value), ensure_ascii=False, separators=(",", ":")).encode()
    except Exception as error:  # see above (RecursionError, for one)
        return False, f"InvalidArgument: JSON.encode: {error}".encode()


def _pattern_weight(pattern: Any) -> tuple[int, int, bool]:
    try:
        return pattern_weight(pattern)
    except Exception:  # see above: a pattern that cannot be weighed weighs too much to run
        return 64, 0, False


class LuaState:
    """One Lua state with the sandbox installed: one per host-script run, or one per
    session actor, kept between its runs (globals persist) until dropped."""

    def __init__(self, limits: ScriptLimits, *, allow_io: bool = False) -> None:
        self.limits = limits
        self._output: Callable[[str], None] = print
        self.lua = lupa.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=_refuse_attributes,
            max_memory=limits.max_memory,
        )
        host = self.lua.table_from(
            {
                b"clock": time.monotonic,
                b"pattern_weight": _pattern_weight,
                b"print": self._print,
                b"json_encode": _json_encode,
                b"json_decode": self._json_decode,
            }
        )
        self._driver = self.lua.execute(PRELUDE, host)
        self.lua.globals().python = None
        self.env = self._driver.new_env(allow_io)
        #: False once a run was stopped by a limit: the state is then replaced, not reused.
        self.usable = True

    def define(self, names: Sequence[tuple[str, str, str]]) -> None:
        """Add API functions: ``(global table, function name, request op)``."""
        for global_name, name, op in names:
            self._driver.define(self.env, global_name.encode(), name.encode(), op.encode())

    def _print(self, line: bytes) -> None:
        try:
            self._output(line.decode(errors="replace"))
        except Exception as error:  # never raise into the script (above)
            log.warning("a script's output was lost: %r", error)

    def _json_decode(self, source: Any) -> tuple[bool, Any]:
        if not isinstance(source, bytes):
            return False, b"InvalidArgument: JSON.decode takes a string"
        try:
            return True, to_lua(self.lua, json.loads(source))
        except Exception as error:  # see above (RecursionError, for one)
            return False, f"InvalidArgument: JSON.decode: {error}".encode()

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
        ``limits``: this run's, if not the state's (a kept state runs with each run's)."""
        if not self.usable:
            raise ScriptError("this Lua state was stopped by a limit; use a new one")
        if limits is not None and limits != self.limits:
            self.limits = limits
            self.lua.set_max_memory(limits.max_memory)
        code = source.encode() if isinstance(source, str) else source
        self._output = output
        deadline = time.monotonic() + self.limits.max_seconds
        limits = self.lua.table_from(
            {
                b"max_memory": self.limits.max_memory,
                b"max_instructions": self.limits.max_instructions,
                b"max_seconds": self.limits.max_seconds,
                b"max_pattern_steps": self.limits.max_pattern_steps,
                b"deadline": deadline,
            }
        )
        packed = self.lua.table_from([to_lua(self.lua, a) for a in args])
        packed[b"n"] = len(args)
        self.env[b"ARGS"] = self.lua.table_from([to_lua(self.lua, a) for a in args])
        try:
            started, problem = self._guarded(
                self._driver.start, self.env, code, name.encode(), limits, packed
            )
            if started is None:
                raise ScriptError(problem.decode(errors="replace"))
            return await self._drive(dispatch, deadline)
        finally:
            if self._guarded(self._driver.finish) is not None:
                self.usable = False
            self._output = print

    async def _drive(self, dispatch: Dispatch, deadline: float) -> list[Any]:
        answer: tuple[Any, ...] = ()
        # One cancel scope for the whole run, not one per call: it is most of a call's cost.
        with anyio.move_on_at(anyio.current_time() + deadline - time.monotonic()):
            while True:
                outcome = self._guarded(self._driver.step, *answer)
                if outcome[0] == b"done":
                    return self._finished(outcome[1], outcome[2:])
                try:
                    results = await dispatch(outcome[1].decode(), outcome[2:])
                    answer = (True, *(to_lua(self.lua, value) for value in results))
                except SatchelError as error:
                    answer = (False, f"{error.kind}: {error}".encode())
        # The wall-time limit passed during an API call: the script resumes into the kill.
        self._driver.kill(f"time limit of {self.limits.max_seconds} s reached".encode())
        outcome = self._guarded(self._driver.step, False, b"")
        return self._finished(outcome[1], outcome[2:])

    def _finished(self, ok: bool, results: tuple[Any, ...]) -> list[Any]:
        if ok:
            return [from_lua(value) for value in results]
        error = results[0] if results else None
        if isinstance(error, bytes):
            if error == _MEMORY:
                self.usable = False
                raise ScriptLimitExceededError(
                    f"memory limit of {self.limits.max_memory} bytes reached"
                )
            message = error.decode(errors="replace")
            if message.startswith(_LIMIT):
                self.usable = False
                raise ScriptLimitExceededError(message.removeprefix(_LIMIT))
            raise _typed(message, None)
        if error is not None and lupa.lua_type(error) == "table":
            message = (error[b"message"] or b"").decode(errors="replace")
            trace = _user_frames((error[b"traceback"] or b"").decode(errors="replace"))
            raise _typed(message, trace)
        raise ScriptError(f"the script failed with a {lupa.lua_type(error)} error value")

    def _guarded(self, function: Any, *args: Any) -> Any:
        """Call into Lua, where an allocation may fail outside any script code."""
        try:
            return function(*args)
        except lupa.LuaMemoryError:
            self.usable = False
            raise ScriptLimitExceededError(
                f"memory limit of {self.limits.max_memory} bytes reached"
            ) from None


def _user_frames(trace: str) -> str:
    """The traceback without the sandbox's own frames (its prelude, the driver's
    ``xpcall``, the wrapped ``pcall`` and friends): what the script's author wrote."""
    kept = [
        line
        for line in trace.splitlines()
        if '[string "<python>"]' not in line and "in upvalue 'raw_" not in line
    ]
    return "\n".join(kept)


def _typed(message: str, trace: str | None) -> SatchelError:
    """A script's uncaught error: the kind it names (an API error passing through), or
    ``ScriptError``."""
    kind, _, rest = message.partition(": ")
    cls = _KINDS.get(kind)
    if cls is not None and cls is not ScriptLimitExceededError:
        error = cls(rest)
        error.lua_traceback = trace  # type: ignore[attr-defined]
        return error
    return ScriptError(message, trace)
