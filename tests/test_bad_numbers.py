"""Numbers out of range are typed errors everywhere, never crashes: a version past what is
stored, pages past Python's slices, config counts past 64 bits, and a malformed replay."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from satchel import InvalidArgumentError, Runtime, ValidationError

HUGE = 2**64
CALLS: dict[str, tuple[Callable[[Runtime, str], Awaitable[Any]], type[Exception]]] = {
    "get a version past 2^32": (lambda rt, s: rt.artifacts.get(s, "a", 2**32), ValidationError),
    "get a version past 2^64": (lambda rt, s: rt.artifacts.get(s, "a", HUGE), ValidationError),
    "info of a huge version": (lambda rt, s: rt.artifacts.info(s, "a", HUGE), ValidationError),
    "delete a huge version": (lambda rt, s: rt.artifacts.delete(s, "a", HUGE), ValidationError),
    "list with a huge limit": (lambda rt, s: rt.sessions.list(limit=HUGE), ValidationError),
    "list with a huge offset": (lambda rt, s: rt.sessions.list(offset=HUGE), ValidationError),
    "query with a huge limit": (lambda rt, s: rt.artifacts.query(limit=HUGE), ValidationError),
    "timeline with a huge limit": (
        lambda rt, s: rt.sessions.timeline(s, limit=HUGE),
        ValidationError,
    ),
    "a config count past 64 bits": (
        lambda rt, s: rt.sessions.create(config={"max_value_bytes": 10**30}),
        ValidationError,
    ),
    "modifications that are no map": (
        lambda rt, s: rt.sessions.replay(s, mode="modified", modifications=[1]),
        InvalidArgumentError,
    ),
}


@pytest.mark.parametrize("case", CALLS)
async def test_out_of_range_numbers_are_typed_errors(rt: Runtime, case: str) -> None:
    """Each out-of-range call raises its documented kind, and the session keeps working
    (four such calls once failed its actor for good)."""
    sid = await rt.sessions.create()
    await rt.artifacts.store(sid, "a", b"x", type="tool_result")
    call, kind = CALLS[case]
    for _ in range(4):
        with pytest.raises(kind):
            await call(rt, sid)
    assert rt.control.statistics().supervisor.failed_actors == 0
    await rt.sessions.set_state(sid, "still", True)
    assert (await rt.artifacts.get(sid, "a")).content == b"x"
