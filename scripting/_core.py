"""One sandboxed Lua state and the synchronous steps of a run in it.

A script runs as a Lua coroutine (see ``_prelude``): each API call yields one request. The
engine turns a run into steps: ``start`` and ``resume`` run Lua until the script asks for
something or ends, and say which, in plain data (``_values``), so the same engine serves a
worker process (steps cross a pipe) and the host process (the operator's own scripts).

Steps:

* ``("call", op, args)``: the script called API function ``op``; answer with ``resume``.
* ``("end", "ok", results)``: the script returned ``results``.
* ``("end", "error", message, traceback, limit)``: it failed; ``limit`` when a limit
  stopped it (the state is then no longer usable and is replaced, not reused).

Worker processes import this module with only ``_values``, ``_patterns``, ``_prelude``,
``_convert`` and the errors module: keep its imports to those.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lupa

from ._convert import from_lua
from ._patterns import pattern_weight
from ._prelude import PRELUDE
from ._values import TooLarge, all_to_plain, to_lua, to_plain

Step = tuple[Any, ...]
log = logging.getLogger("satchel.scripting")
_MEMORY = b"not enough memory"
_LIMIT = "ScriptLimitExceeded: "


def _refuse_attributes(obj: object, name: object, is_setting: bool) -> object:
    raise AttributeError("Python objects are not reachable from the sandbox")


# The host functions a script can reach return their failures as values and never raise: a
# Python exception would reach the script as a Python object.


def _json_encode(value: Any) -> tuple[bool, bytes]:
    try:
        plain = from_lua(to_plain(value))
        return True, json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode()
    except Exception as error:  # see above (RecursionError, for one)
        return False, f"InvalidArgument: JSON.encode: {error}".encode()


def _pattern_weight(pattern: Any) -> tuple[int, int, bool]:
    try:
        return pattern_weight(pattern)
    except Exception:  # see above: a pattern that cannot be weighed weighs too much to run
        return 64, 0, False


def _memory_error(max_memory: int) -> Step:
    return ("end", "error", f"memory limit of {max_memory} bytes reached", None, True)


class LuaEngine:
    """A Lua state with the sandbox and the API functions ``names`` (``(global table,
    function name, op)``) installed. ``output`` receives each line a script prints, until
    ``max_output`` bytes of a run; past that the run is stopped."""

    def __init__(
        self,
        max_memory: int,
        names: Sequence[tuple[str, str, str]],
        *,
        allow_io: bool = False,
        output: Callable[[bytes], None] = lambda line: None,
    ) -> None:
        self.max_memory = max_memory
        self.allow_io = allow_io
        #: Runs started in this state.
        self.runs = 0
        self.output = output
        self._printed = 0
        self._max_output = math.inf
        self.lua = lupa.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=_refuse_attributes,
            max_memory=max_memory,
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
        self.define(names)
        #: False once a run was stopped by a limit: the state is then replaced, not reused.
        self.usable = True

    def define(self, names: Sequence[tuple[str, str, str]]) -> None:
        """Add API functions: ``(global table, function name, request op)``."""
        for global_name, name, op in names:
            self._driver.define(self.env, global_name.encode(), name.encode(), op.encode())

    # -- host functions ---------------------------------------------------------------------

    def _print(self, line: bytes) -> bytes | None:
        """Pass a printed line on; past the run's output limit, the reason to stop it (the
        prelude stops the run: calling into Lua from here is not safe in lupa)."""
        self._printed += len(line) + 1
        if self._printed > self._max_output:
            return f"output limit of {self._max_output} bytes reached".encode()
        try:
            self.output(line)
        except Exception as error:  # never raise into the script (above)
            log.warning("a script's output was lost: %r", error)
        return None

    def _json_decode(self, source: Any) -> tuple[bool, Any]:
        if not isinstance(source, bytes):
            return False, b"InvalidArgument: JSON.decode takes a string"
        try:
            return True, to_lua(self.lua, json.loads(source))
        except Exception as error:  # see above (RecursionError, for one)
            return False, f"InvalidArgument: JSON.decode: {error}".encode()

    # -- a run ------------------------------------------------------------------------------

    def start(
        self, source: bytes, name: str, args: Sequence[Any], limits: Mapping[str, Any]
    ) -> Step:
        """Start a run of ``source`` with ``limits`` (``max_memory``, ``max_instructions``,
        ``max_seconds``, ``max_pattern_steps``, ``max_output``); its first step."""
        if not self.usable:
            return ("end", "error", "this Lua state was stopped by a limit", None, False)
        self.runs += 1
        max_memory = int(limits["max_memory"])
        if max_memory != self.max_memory:
            self.max_memory = max_memory
            self.lua.set_max_memory(max_memory)
        self._printed, self._max_output = 0, int(limits["max_output"])
        table = {key.encode(): value for key, value in limits.items()}
        table[b"deadline"] = time.monotonic() + float(limits["max_seconds"])
        try:
            packed = self.lua.table_from([to_lua(self.lua, a) for a in args])
            packed[b"n"] = len(args)
            self.env[b"ARGS"] = self.lua.table_from([to_lua(self.lua, a) for a in args])
            started, problem = self._driver.start(
                self.env, source, name.encode(), self.lua.table_from(table), packed
            )
        except lupa.LuaMemoryError:
            return self._end(_memory_error(self.max_memory))
        except TypeError as error:
            return self._end(("end", "error", f"InvalidArgument: {error}", None, False))
        if started is None:
            return self._end(("end", "error", problem.decode(errors="replace"), None, False))
        return self.resume(True, ())

    def resume(self, ok: bool, values: Sequence[Any]) -> Step:
        """Answer the script's call: ``ok`` and the values the Lua call returns, or not ok
        and the error message (``Kind: message``) it raises."""
        answer: tuple[Any, ...]
        try:
            if ok:
                answer = (True, *(to_lua(self.lua, value) for value in values))
            else:
                answer = (False, str(values[0]).encode())
        except lupa.LuaMemoryError:
            return self._stopped(_memory_error(self.max_memory))
        except TypeError as error:
            answer = (False, f"InvalidArgument: {error}".encode())
        while True:
            try:
                outcome = self._driver.step(*answer)
            except lupa.LuaMemoryError:
                return self._stopped(_memory_error(self.max_memory))
            if outcome[0] == b"done":
                return self._end(self._finished(outcome[1], outcome[2:]))
            try:
                return ("call", outcome[1].decode(), all_to_plain(outcome[2:]))
            except (TooLarge, TypeError, ValueError) as error:
                answer = (False, f"InvalidArgument: {error}".encode())

    def kill(self, why: str) -> Step:
        """End the run the script is waiting in (its call's answer came too late)."""
        self._driver.kill(why.encode())
        return self.resume(False, ("",))

    def _stopped(self, step: Step) -> Step:
        """A failure outside the script's code: the state may be half-way through anything."""
        self.usable = False
        return self._end(step)

    def _end(self, step: Step) -> Step:
        try:
            killed = self._driver.finish()
        except lupa.LuaMemoryError:
            killed = True
        if killed is not None or step[-1] is True:
            self.usable = False
        return step

    def _finished(self, ok: bool, results: tuple[Any, ...]) -> Step:
        if ok:
            try:
                return ("end", "ok", all_to_plain(results))
            except (TooLarge, TypeError, ValueError) as error:
                return ("end", "error", f"InvalidArgument: {error}", None, False)
        value = results[0] if results else None
        if isinstance(value, bytes):
            if value == _MEMORY:
                return _memory_error(self.max_memory)
            message = value.decode(errors="replace")
            if message.startswith(_LIMIT):
                return ("end", "error", message.removeprefix(_LIMIT), None, True)
            return ("end", "error", message, None, False)
        if value is not None and lupa.lua_type(value) == "table":
            message = (value[b"message"] or b"").decode(errors="replace")
            trace = _user_frames((value[b"traceback"] or b"").decode(errors="replace"))
            return ("end", "error", message, trace, False)
        kind = lupa.lua_type(value) or type(value).__name__
        return ("end", "error", f"the script failed with a {kind} error value", None, False)


def _user_frames(trace: str) -> str:
    """The traceback without the sandbox's own frames (its prelude, the driver's
    ``xpcall``, the wrapped ``pcall`` and friends): what the script's author wrote."""
    kept = [
        line
        for line in trace.splitlines()
        if '[string "<python>"]' not in line and "in upvalue 'raw_" not in line
    ]
    return "\n".join(kept)
