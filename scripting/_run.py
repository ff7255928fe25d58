"""A run of a script, driven from the host: its limits, the loop that answers its API calls,
and how its end becomes a result or a typed error.

The loop is the same wherever the Lua state lives: a ``Stepper`` starts the run and resumes it
with each answer, in this process (``LuaState``, the operator's own scripts) or in a worker
process (``_pool``, every script of a session or from the HTTP API). The wall-time limit is one
deadline for the whole run, API calls included; when it passes, ``expired`` ends the run (in a
worker: by killing the worker, whatever the script is doing).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import anyio
import attrs

from satchel.runtime import _errors as errors
from satchel.runtime._errors import (
    SatchelError,
    ScriptError,
    ScriptLimitExceededError,
    ValidationError,
)

from ._convert import from_lua

#: Answers one API request with the values the Lua call returns (none, one or more).
Dispatch = Callable[[str, tuple[Any, ...]], Awaitable[Sequence[Any]]]
Step = tuple[Any, ...]
_KINDS = {
    cls.kind: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, SatchelError) and cls is not ScriptError
}


@attrs.frozen
class ScriptLimits:
    """What one run may use: Lua memory (bytes, the whole state), VM instructions, wall time
    (seconds, API calls included), the estimated steps of one pattern match, and the bytes it
    may print (past them the run stops with ``ScriptLimitExceeded``)."""

    max_memory: int = 64 << 20
    max_instructions: int = 50_000_000
    max_seconds: float = 30.0
    max_pattern_steps: int = 100_000_000
    max_output: int = 1 << 20

    def __attrs_post_init__(self) -> None:
        for field in ("max_memory", "max_instructions", "max_pattern_steps", "max_output"):
            value = getattr(self, field)
            if type(value) is not int or value <= 0:
                raise ValidationError(f"{field} must be a positive integer, not {value!r}")
        if not (isinstance(self.max_seconds, int | float) and 0 < self.max_seconds < math.inf):
            raise ValidationError(
                f"max_seconds must be a positive number, not {self.max_seconds!r}"
            )

    def as_plain(self) -> dict[str, Any]:
        """The limits as the engine reads them."""
        return attrs.asdict(self)


class Stepper(Protocol):
    """Where a run's Lua state lives, as the driver sees it."""

    async def start(self) -> Step:
        """Start the run; its first step."""
        ...

    async def resume(self, ok: bool, values: Sequence[Any]) -> Step:
        """Answer the script's call; its next step."""
        ...

    async def expired(self, why: str) -> Step:
        """End the run now (its wall time is up); its last step."""
        ...


async def drive(stepper: Stepper, dispatch: Dispatch, limits: ScriptLimits) -> list[Any]:
    """Run to the end, answering each API call with ``dispatch``; what the script returned."""
    # One cancel scope for the whole run, not one per call: it is most of a call's cost.
    with anyio.move_on_after(limits.max_seconds):
        step = await stepper.start()
        while step[0] == "call":
            try:
                ok, values = True, await dispatch(step[1], tuple(step[2]))
            except SatchelError as error:
                ok, values = False, (f"{error.kind}: {error}",)
            step = await stepper.resume(ok, values)
        return outcome(step)
    return outcome(await stepper.expired(f"time limit of {limits.max_seconds} s reached"))


def outcome(step: Step) -> list[Any]:
    """What an ended run returned, or its error raised as its kind."""
    if step[1] == "ok":
        return [from_lua(value) for value in step[2]]
    _, _, message, trace, limit = step
    if limit:
        raise ScriptLimitExceededError(message)
    raise typed(message, trace)


def typed(message: str, trace: str | None) -> SatchelError:
    """A script's uncaught error: the kind it names (an API error passing through), or
    ``ScriptError``."""
    kind, _, rest = message.partition(": ")
    cls = _KINDS.get(kind)
    if cls is not None and cls is not ScriptLimitExceededError:
        error = cls(rest)
        error.lua_traceback = trace  # type: ignore[attr-defined]
        return error
    return ScriptError(message, trace)
