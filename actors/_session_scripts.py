"""Session scripts: the message that runs Lua in a session's actor, and the slot that keeps
the actor's Lua state between runs (made on first use, dropped with the actor instance, so
passivation forgets a script's globals)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs


@attrs.frozen
class RunScript:
    """Run Lua ``source`` in the session's own sandbox; answers what the script returned."""

    source: str | bytes
    name: str
    args: tuple[Any, ...]
    output: Callable[[str], None]
    limits: Any  # satchel.scripting.ScriptLimits (wired in, not imported, by the runtime)


@attrs.define
class ScriptSlot:
    """A session actor's Lua state; opaque to the actor."""

    state: Any = None


#: Runs a script for session ``id`` in ``slot`` (set by ``open_runtime``).
RunScriptFunction = Callable[[str, ScriptSlot, RunScript], Awaitable[list[Any]]]


@attrs.define
class ScriptRunner:
    """Where session actors find the function that runs their scripts (set once the
    runtime's managers exist, after the actors' services)."""

    run: RunScriptFunction | None = None
    #: Lets go of what a slot keeps (its worker process) when its actor stops.
    release: Callable[[ScriptSlot], None] = lambda slot: None
