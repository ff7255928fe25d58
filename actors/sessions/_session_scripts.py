"""Session scripts: the message that runs Lua for a session's actor, and the slot that keeps
the worker process holding the session's Lua state between runs (taken on first use, let go
when the actor stops, so passivation forgets a script's globals)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs


@attrs.frozen
class RunScript:
    """Run Lua ``source`` in the session's own sandbox (in its worker process); answers what
    the script returned."""

    source: str | bytes
    name: str
    args: tuple[Any, ...]
    output: Callable[[str], None]
    limits: Any  # satchel.scripting.ScriptLimits (wired in, not imported, by the runtime)


@attrs.define
class ScriptSlot:
    """What keeps a session's Lua state (its worker process); opaque to the actor."""

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
