"""Changing a session after its creation: name, description, tags, metadata, idle timeout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satchel import (
    InvalidArgumentError,
    Runtime,
    SessionNotFoundError,
    ValidationError,
    open_runtime,
)


async def test_update_replaces_fields_and_moves_the_indexes(rt: Runtime) -> None:
    """A renamed, retagged session is found by its new name and tags, not its old ones."""
    sid = await rt.sessions.create(name="draft", tags=["old"], metadata={"a": 1})
    info = await rt.sessions.update(
        sid, name="final report", description="d", tags=["new", "x"], metadata={"b": [2]}
    )
    assert (info.name, info.description, info.tags, info.metadata) == (
        "final report",
        "d",
        ("new", "x"),
        {"b": [2]},
    )
    assert [s.id for s in await rt.sessions.list(tags=["new"])] == [sid]
    assert await rt.sessions.list(tags=["old"]) == []
    assert [s.id for s in await rt.sessions.list(search="final")] == [sid]
    assert await rt.sessions.list(search="draft") == []
    assert [s.id for s in await rt.sessions.list(order_by="name")] == [sid]
    entry = (await rt.sessions.timeline(sid))[-1]
    assert entry.kind == "session_updated"
    assert entry.data == {
        "name": "final report",
        "description": "d",
        "tags": ["new", "x"],
        "metadata": {"b": [2]},
    }
    assert (await rt.check()).clean


async def test_fields_left_out_stay(rt: Runtime) -> None:
    """Only the fields given change; an empty tag list clears the tags."""
    sid = await rt.sessions.create(name="n", description="d", tags=["t"], metadata={"m": 1})
    info = await rt.sessions.update(sid, tags=[])
    assert (info.name, info.description, info.tags, info.metadata) == ("n", "d", (), {"m": 1})
    assert (await rt.check()).clean


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({}, InvalidArgumentError),
        ({"config": {"max_bytes": 10}}, InvalidArgumentError),
        ({"config": {"idle_timeout_s": -1}}, ValidationError),
        ({"config": {"idle_timeout_s": "soon"}}, InvalidArgumentError),
        ({"config": [1]}, InvalidArgumentError),
        ({"name": "x" * 300}, ValidationError),
        ({"tags": "one"}, InvalidArgumentError),
        ({"metadata": {"big": "x" * 70_000}}, ValidationError),
        ({"metadata": [1]}, InvalidArgumentError),
    ],
)
async def test_bad_updates_change_nothing(
    rt: Runtime, changes: dict[str, Any], error: type[Exception]
) -> None:
    """Each bad update gets its typed error and leaves the session and its journal as they were."""
    sid = await rt.sessions.create(name="n", tags=["t"], config={"idle_timeout_s": 30})
    before = (await rt.sessions.get(sid), await rt.sessions.timeline(sid))
    with pytest.raises(error):
        await rt.sessions.update(sid, **changes)
    assert (await rt.sessions.get(sid), await rt.sessions.timeline(sid)) == before


async def test_unknown_session(rt: Runtime) -> None:
    """Updating a session that does not exist is SessionNotFound."""
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.update("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", name="x")


async def test_idle_timeout_can_be_set_changed_and_removed(
    rt: Runtime, autojump_clock: None
) -> None:
    """A new idle timeout runs from the update; removing it keeps the session active."""
    sid = await rt.sessions.create()
    await rt.sessions.update(sid, config={"idle_timeout_s": 10})
    await anyio.sleep(11)
    assert (await rt.sessions.get(sid)).status == "suspended"
    other = await rt.sessions.create(config={"idle_timeout_s": 10})
    await anyio.sleep(5)
    info = await rt.sessions.update(other, config={"idle_timeout_s": None})
    assert info.config.idle_timeout_s is None
    await anyio.sleep(60)
    assert (await rt.sessions.get(other)).status == "active"
    assert (await rt.check()).clean


async def test_updates_survive_a_restart(tmp_path: Path) -> None:
    """An update is stored: a reopened runtime sees it, indexes included."""
    async with open_runtime(tmp_path / "data") as rt:
        sid = await rt.sessions.create(name="before", tags=["a"])
        await rt.sessions.update(sid, name="after", tags=["b"], metadata={"k": "v"})
    async with open_runtime(tmp_path / "data") as rt:
        info = await rt.sessions.get(sid)
        assert (info.name, info.tags, info.metadata) == ("after", ("b",), {"k": "v"})
        assert [s.id for s in await rt.sessions.list(tags=["b"])] == [sid]
        assert (await rt.check()).clean


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.text(max_size=20),
    tags=st.lists(st.text(min_size=1, max_size=10), max_size=5),
    metadata=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5)),
)
async def test_any_valid_update_reads_back(
    name: str, tags: list[str], metadata: dict[str, Any]
) -> None:
    """Whatever valid values are given read back, and the store checks clean."""
    async with open_runtime(store="memory") as rt:
        sid = await rt.sessions.create(name="n", tags=["t"])
        try:
            info = await rt.sessions.update(sid, name=name, tags=tags, metadata=metadata)
        except ValidationError:
            return  # NUL characters and the like: refused, as at creation
        assert (info.name, list(info.tags), info.metadata) == (
            name,
            list(dict.fromkeys(tags)),
            metadata,
        )
        assert (await rt.check()).clean
