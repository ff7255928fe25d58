"""Writes of the framework adapters to a session that an idle policy suspended.

A runtime whose ``session_defaults`` set ``idle_timeout_s`` suspends a conversation left
idle. The frameworks have no suspended conversations: the next write to one resumes it, as
the next message of a user would, whoever suspended it (the session record does not say).
A completed, failed or archived session still refuses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, TypeVar

from satchel import InvalidStateTransitionError, SessionNotActiveError

if TYPE_CHECKING:
    from satchel import Runtime

_T = TypeVar("_T")

#: Resumes a write makes before the session's refusal is raised: a policy that suspends it
#: again at once, every time, would otherwise keep the write going for ever.
RESUMES: Final = 64


async def resuming(rt: Runtime, session_id: str, write: Callable[[], Awaitable[_T]]) -> _T:
    """``await write()``, on a session resumed first if it was found suspended; its
    ``SessionNotActiveError`` if the session ended. Costs nothing unless the write is refused."""
    for _ in range(RESUMES):
        try:
            return await write()
        except SessionNotActiveError:
            if not await resumed(rt, session_id):
                raise
    return await write()


async def resumed(rt: Runtime, session_id: str) -> bool:
    """Whether the session takes writes now: resumed here if it was suspended, or by another
    writer meanwhile (whose resume is enough; this one's is then refused, and ignored)."""
    status = (await rt.sessions.get(session_id)).status
    if status == "suspended":
        with contextlib.suppress(InvalidStateTransitionError):
            await rt.sessions.resume(session_id)
        return True
    return status == "active"


async def writable(rt: Runtime, session_id: str) -> None:
    """Have the session take writes before a write that must change nothing if it is
    refused: resumed if suspended; ``SessionNotActiveError`` if it ended."""
    if not await resumed(rt, session_id):
        status = (await rt.sessions.get(session_id)).status
        raise SessionNotActiveError(
            f"session {session_id} is {status}; only active sessions accept writes"
        )
