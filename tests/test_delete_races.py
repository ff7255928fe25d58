"""Deletes racing each other and racing writes: typed errors, nothing left behind."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import anyio
import pytest

from satchel import Runtime, SessionNotFoundError


async def _outcome(call: Callable[[], Awaitable[object]], into: list[str]) -> None:
    """Append ``ok`` or the name of the error ``call`` raised to ``into``."""
    try:
        await call()
    except Exception as error:
        into.append(type(error).__name__)
    else:
        into.append("ok")


async def _tree(rt: Runtime, children: int, live: bool) -> tuple[str, list[str]]:
    """A parent with children, whose actors are resident if ``live`` (each has written)."""
    parent = await rt.sessions.create(name="parent")
    kids = [await rt.sessions.create(parent_session_id=parent) for _ in range(children)]
    if live:
        for kid in kids:
            await rt.session(kid).set_state("step", 1)
    else:
        for kid in kids:
            if kid in {a.id for a in rt.control.actors("session")}:
                await rt.control.stop(kid)
    resident = {a.id for a in rt.control.actors("session")}
    assert (set(kids) <= resident) if live else not (set(kids) & resident)
    return parent, kids


async def _delete_race(rt: Runtime, cascade_first: bool, live: bool) -> tuple[list[str], list[str]]:
    """The outcomes of a cascade delete and of the deletes of each child, all at once."""
    parent, kids = await _tree(rt, 5, live)
    cascade: list[str] = []
    singles: list[str] = []
    delete_tree = functools.partial(rt.sessions.delete, parent, cascade=True)
    async with anyio.create_task_group() as tasks:
        if cascade_first:
            tasks.start_soon(_outcome, delete_tree, cascade)
        for kid in kids:
            tasks.start_soon(_outcome, functools.partial(rt.sessions.delete, kid), singles)
        if not cascade_first:
            tasks.start_soon(_outcome, delete_tree, cascade)
    return cascade, singles


@pytest.mark.parametrize("live", [True, False], ids=["live", "passive"])
@pytest.mark.parametrize("cascade_first", [True, False])
async def test_cascade_delete_racing_child_deletes_succeeds(
    rt: Runtime, cascade_first: bool, live: bool
) -> None:
    """A cascade delete racing the deletes of its children removes the whole tree."""
    for _ in range(10):
        cascade, singles = await _delete_race(rt, cascade_first, live)
        assert cascade == ["ok"]
        assert set(singles) <= {"ok", "SessionNotFoundError"}
        assert await rt.sessions.list() == []
    assert (await rt.check()).clean


async def _write_steps(rt: Runtime, kid: str, outcomes: list[str]) -> None:
    """Write until a write fails, recording each outcome."""
    for step in range(10):
        await _outcome(functools.partial(rt.session(kid).set_state, "step", step), outcomes)
        if outcomes[-1] != "ok":
            return


@pytest.mark.parametrize("live", [True, False], ids=["live", "passive"])
async def test_writes_racing_a_cascade_get_a_typed_error(rt: Runtime, live: bool) -> None:
    """Writes to children racing their cascade delete succeed or raise SessionNotFound."""
    for _ in range(10):
        parent, kids = await _tree(rt, 5, live)
        outcomes: list[str] = []
        async with anyio.create_task_group() as tasks:
            for kid in kids:
                tasks.start_soon(_write_steps, rt, kid, outcomes)
            tasks.start_soon(functools.partial(rt.sessions.delete, parent, cascade=True))
        assert set(outcomes) <= {"ok", "SessionNotFoundError"}, outcomes
        assert await rt.sessions.list() == []
        with pytest.raises(SessionNotFoundError):
            await rt.session(kids[0]).set_state("late", 1)
    assert (await rt.check()).clean


async def test_callers_hammering_a_deleted_session_get_session_not_found(rt: Runtime) -> None:
    """Concurrent callers of a deleted session, whose actor starts and stops under them,
    get SessionNotFound every time, never a closed-runtime error."""
    sid = await rt.sessions.create()
    await rt.sessions.delete(sid)
    outcomes: list[str] = []

    async def hammer() -> None:
        for _ in range(300):
            await _outcome(functools.partial(rt.session(sid).get_state, "k"), outcomes)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(hammer)
        tasks.start_soon(hammer)
    assert set(outcomes) == {"SessionNotFoundError"}
