"""The framework adapters on sessions an idle policy suspended: the next write resumes the
session, as a user's next message resumes a conversation; a session that ended still refuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from google.adk.errors.session_not_found_error import (
    SessionNotFoundError as AdkSessionNotFoundError,
)
from google.genai import types

import satchel
from satchel import Runtime, SessionConfig
from satchel.integrations.adk import SatchelArtifactService, SatchelSessionService
from satchel.integrations.langgraph import SatchelSaver
from satchel.integrations.openai_agents import SatchelSession

from .adk_support import delta_event
from .test_langgraph_saver import put

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """The frameworks run on asyncio only."""
    return "asyncio"


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with satchel.open_runtime(tmp_path / "data") as runtime:
        yield runtime


async def suspend_all(rt: Runtime) -> None:
    for info in await rt.sessions.list():
        if info.status == "active":
            await rt.sessions.suspend(info.id)


def _part(data: bytes) -> types.Part:
    return types.Part.from_bytes(data=data, mime_type="text/plain")


async def test_an_openai_session_left_idle_takes_the_next_message(tmp_path: Path) -> None:
    """A conversation that the runtime's idle timeout suspended takes the next add_items."""
    defaults = SessionConfig(idle_timeout_s=0.05)
    async with satchel.open_runtime(tmp_path / "data", session_defaults=defaults) as rt:
        session = SatchelSession("conv", rt)
        async with rt.events.subscribe(session_id=session.satchel_id) as feed:
            await session.add_items([{"role": "user", "content": "one"}])
            with anyio.fail_after(10):
                async for event in feed:
                    if event.data.get("reason") == "idle":
                        break
        assert (await rt.sessions.get(session.satchel_id)).status == "suspended"
        await session.add_items([{"role": "user", "content": "two"}])
        assert [item["content"] for item in await session.get_items()] == ["one", "two"]  # type: ignore[typeddict-item]


async def test_openai_writes_resume_a_suspended_session(rt: Runtime) -> None:
    """add_items, pop_item and clear_session each resume a suspended session and write."""
    session = SatchelSession("conv", rt)
    await session.add_items([{"role": "user", "content": "one"}])
    for write in (
        lambda: session.add_items([{"role": "user", "content": "two"}]),
        session.pop_item,
        session.clear_session,
    ):
        await suspend_all(rt)
        await write()
        assert (await rt.sessions.get(session.satchel_id)).status == "active"
    assert await session.get_items() == []


async def test_adk_writes_resume_suspended_sessions(rt: Runtime) -> None:
    """append_event (with app:, user: and session state) and an artifact's save and delete
    resume the suspended sessions they write to."""
    service, artifacts = SatchelSessionService(rt), SatchelArtifactService(rt)
    session = await service.create_session(app_name="a", user_id="u", session_id="s")
    await service.append_event(session, delta_event(1, **{"k": 1, "app:m": 1, "user:l": 1}))
    await artifacts.save_artifact(
        app_name="a", user_id="u", session_id="s", filename="f", artifact=_part(b"x")
    )
    await suspend_all(rt)
    await service.append_event(session, delta_event(2, **{"k": 2, "app:m": 2, "user:l": 2}))
    await artifacts.save_artifact(
        app_name="a", user_id="u", session_id="s", filename="f", artifact=_part(b"y")
    )
    again = await service.get_session(app_name="a", user_id="u", session_id="s")
    assert again is not None and again.state == {"k": 2, "app:m": 2, "user:l": 2}
    assert len(again.events) == 2
    await suspend_all(rt)
    await artifacts.delete_artifact(app_name="a", user_id="u", session_id="s", filename="f")
    keys = await artifacts.list_artifact_keys(app_name="a", user_id="u", session_id="s")
    assert keys == []
    held = await rt.sessions.list(tags=["adk:artifacts"])
    assert [info.status for info in held] == ["active"]


async def test_ended_sessions_still_refuse_writes(rt: Runtime) -> None:
    """A completed session is not resumed: the adapters' writes raise SessionNotActiveError
    and leave it as it was, an ADK event's app: and user: state included (the shared scopes
    were written, and resumed, before the event was refused)."""
    session = SatchelSession("conv", rt)
    await session.add_items([{"role": "user", "content": "one"}])
    service = SatchelSessionService(rt)
    adk = await service.create_session(app_name="a", user_id="u", session_id="s")
    await service.append_event(adk, delta_event(1, **{"k": 1, "app:m": 1, "user:l": 1}))
    scopes = await rt.sessions.list(tags=["adk:app-state"]) + await rt.sessions.list(
        tags=["adk:user-state"]
    )
    for info in await rt.sessions.list():
        if info in scopes:
            await rt.sessions.suspend(info.id)
        else:
            await rt.sessions.complete(info.id)
    with pytest.raises(satchel.SessionNotActiveError):
        await session.add_items([{"role": "user", "content": "two"}])
    with pytest.raises(satchel.SessionNotActiveError):
        await service.append_event(adk, delta_event(2, **{"k": 2, "app:m": 2, "user:l": 2}))
    assert len(await session.get_items()) == 1
    again = await service.get_session(app_name="a", user_id="u", session_id="s")
    assert again is not None and again.state == {"k": 1, "app:m": 1, "user:l": 1}
    statuses = {info.id: info.status for info in await rt.sessions.list()}
    assert {statuses.pop(info.id) for info in scopes} == {"suspended"}
    assert set(statuses.values()) == {"completed"}


async def test_an_adk_event_on_a_session_deleted_meanwhile_writes_no_shared_state(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event with app: and user: state whose session is deleted after the stale check
    raises ADK's SessionNotFoundError and writes neither scope."""
    service = SatchelSessionService(rt)
    session = await service.create_session(app_name="a", user_id="u", session_id="s")
    await service.append_event(session, delta_event(1, **{"app:m": 1, "user:l": 1}))
    position = rt.sessions.last_event_position

    async def deleted_after(session_id: str) -> int:
        found = await position(session_id)
        await rt.sessions.delete(session_id)
        return found

    monkeypatch.setattr(rt.sessions, "last_event_position", deleted_after)
    with pytest.raises(AdkSessionNotFoundError):
        await service.append_event(session, delta_event(2, **{"app:m": 2, "user:l": 2}))
    monkeypatch.undo()
    other = await service.create_session(app_name="a", user_id="u", session_id="t")
    assert other.state == {"app:m": 1, "user:l": 1}


async def test_writers_at_once_resume_a_session_once_between_them(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty add_items at once on a suspended session, its reads slowed as over a network,
    all land: the first resume is enough, the others' own resume is refused and ignored."""
    session = SatchelSession("conv", rt)
    await session.add_items([{"role": "user", "content": "start"}])
    get = rt.sessions.get

    async def slow_get(session_id: str) -> Any:
        await asyncio.sleep(0.01)
        return await get(session_id)

    monkeypatch.setattr(rt.sessions, "get", slow_get)
    await suspend_all(rt)
    await asyncio.gather(
        *(session.add_items([{"role": "user", "content": str(n)}]) for n in range(20))
    )
    items = await session.get_items()
    assert sorted(item["content"] for item in items[1:]) == sorted(str(n) for n in range(20))  # type: ignore[typeddict-item]


#: A write through an adapter: the session it writes to, the write, and whether it landed.
Write = tuple[str, Callable[[], Awaitable[object]], Callable[[], Awaitable[bool]]]


async def openai_write(rt: Runtime) -> Write:
    session = SatchelSession("conv", rt)
    await session.add_items([{"role": "user", "content": "one"}])

    async def landed() -> bool:
        return len(await session.get_items()) == 2

    return (
        session.satchel_id,
        lambda: session.add_items([{"role": "user", "content": "two"}]),
        landed,
    )


async def adk_write(rt: Runtime) -> Write:
    service = SatchelSessionService(rt)
    session = await service.create_session(app_name="a", user_id="u", session_id="s")
    await service.append_event(session, delta_event(1, k=1))

    async def landed() -> bool:
        again = await service.get_session(app_name="a", user_id="u", session_id="s")
        return again is not None and again.state == {"k": 2}

    write = lambda: service.append_event(session, delta_event(2, k=2))  # noqa: E731
    return satchel.session_id_for("adk/s/a/u/s"), write, landed


async def adk_artifact_write(rt: Runtime) -> Write:
    artifacts = SatchelArtifactService(rt)
    names = {"app_name": "a", "user_id": "u", "session_id": "s", "filename": "f"}
    await artifacts.save_artifact(**names, artifact=_part(b"x"))  # type: ignore[arg-type]

    async def landed() -> bool:
        return await artifacts.list_versions(**names) == [0, 1]  # type: ignore[arg-type]

    held = (await rt.sessions.list(tags=["adk:artifacts"]))[0].id
    return held, lambda: artifacts.save_artifact(**names, artifact=_part(b"y")), landed  # type: ignore[arg-type]


async def langgraph_write(rt: Runtime) -> Write:
    saver = SatchelSaver(rt)
    config = await put(saver, "t", {"x": 1})

    async def landed() -> bool:
        found = await saver.aget_tuple(config)
        return found is not None and found.pending_writes == [("task", "x", "c" * 10_000)]

    return "langgraph:t", lambda: saver.aput_writes(config, [("x", "c" * 10_000)], "task"), landed


async def langgraph_put(rt: Runtime) -> Write:
    saver = SatchelSaver(rt)
    await put(saver, "t", {"x": 1})
    landed_at: list[Any] = []

    async def write() -> None:
        landed_at.append(await put(saver, "t", {"x": 2}))

    async def landed() -> bool:
        found = await saver.aget_tuple(landed_at[0])
        return found is not None and found.checkpoint["channel_values"] == {"x": 2}

    return "langgraph:t", write, landed


WRITES = [openai_write, adk_write, adk_artifact_write, langgraph_write, langgraph_put]


@pytest.mark.parametrize("make", WRITES)
async def test_a_write_lands_when_another_writer_resumed_the_session_first(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch, make: Callable[[Runtime], Awaitable[Write]]
) -> None:
    """A write refused on a suspended session that another writer resumes before this one
    looks at it again finds it active, and writes."""
    session_id, write, landed = await make(rt)
    get = rt.sessions.get

    async def resumed_first(target: str) -> Any:
        if (await get(target)).status == "suspended":
            await rt.sessions.resume(target)
        return await get(target)

    monkeypatch.setattr(rt.sessions, "get", resumed_first)
    await rt.sessions.suspend(session_id)
    await write()
    assert await landed()


@pytest.mark.parametrize("make", WRITES)
async def test_a_write_lands_on_a_session_suspended_again_after_each_resume(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch, make: Callable[[Runtime], Awaitable[Write]]
) -> None:
    """A session that a policy suspends again right after each of three resumes still
    takes the write: each refusal resumes it and tries again."""
    session_id, write, landed = await make(rt)
    resume, again = rt.sessions.resume, [3]

    async def resume_then_suspend(target: str) -> None:
        await resume(target)
        if again[0]:
            again[0] -= 1
            await rt.sessions.suspend(target)

    monkeypatch.setattr(rt.sessions, "resume", resume_then_suspend)
    await rt.sessions.suspend(session_id)
    await write()
    assert again == [0]
    assert await landed()
