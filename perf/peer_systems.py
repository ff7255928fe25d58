"""The peers' side of ``perf/peer_work.py``: LangGraph's savers, the OpenAI Agents SDK's
SQLite session and Google ADK's session and artifact services doing the same work, each with
its own defaults (durability read from its SQLite connection by the driver)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from peer_work import (
    APP,
    EVENTS_KEPT,
    EVENTS_READ,
    SESSION,
    THREAD,
    USER,
    Content,
    Op,
    Opener,
    folder,
    json_like,
    message,
    prepared_op,
    small_value,
)

from satchel import open_runtime

#: The pragmas each SQLite peer ran with, filled as they close: system -> (journal, sync).
PRAGMAS: dict[str, tuple[str, int]] = {}


def pragmas_of(conn: sqlite3.Connection) -> tuple[str, int]:
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
    return str(journal), int(synchronous)


# -- LangGraph --------------------------------------------------------------------------------


def _checkpoint(step: int) -> tuple[Any, Any, Any]:
    from langgraph.checkpoint.base import empty_checkpoint

    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"step": small_value(step)}
    checkpoint["channel_versions"] = {"step": step}
    return checkpoint, {"source": "loop", "step": step}, {"step": step}


@asynccontextmanager
async def _langgraph(durable: bool) -> AsyncIterator[Any]:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.checkpoint.sqlite import SqliteSaver

    if not durable:
        yield InMemorySaver()
        return
    async with folder() as where:
        conn = sqlite3.connect(where / "checkpoints.sqlite", check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()
        try:
            yield saver
        finally:
            PRAGMAS["LangGraph SqliteSaver"] = pragmas_of(conn)
            conn.close()


def langgraph_state(durable: bool) -> Opener:
    """``put`` of a checkpoint with one changed channel on one thread (SqliteSaver has only
    sync methods: called as such)."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        async with _langgraph(durable) as saver:
            config: Any = {"configurable": {"thread_id": THREAD, "checkpoint_ns": ""}}

            async def op(i: int) -> None:
                nonlocal config
                config = saver.put(config, *_checkpoint(i))

            yield op

    return opened


def langgraph_create(durable: bool) -> Opener:
    """The first ``put`` of a new thread: what starts a LangGraph conversation."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        async with _langgraph(durable) as saver:

            async def op(i: int) -> None:
                config: Any = {"configurable": {"thread_id": f"{THREAD}-{i}", "checkpoint_ns": ""}}
                saver.put(config, *_checkpoint(i))

            yield op

    return opened


# -- OpenAI Agents SDK ------------------------------------------------------------------------


def agents_recent(on_file: bool) -> Opener:
    """``get_items(100)`` of a session of 1,000 items."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        from agents import SQLiteSession

        async with folder() as where:
            session = SQLiteSession(SESSION, where / "agents.sqlite" if on_file else ":memory:")
            for start in range(0, EVENTS_KEPT, 100):
                await session.add_items([message(i) for i in range(start, start + 100)])  # type: ignore[misc]

            async def op(i: int) -> None:
                await session.get_items(EVENTS_READ)

            try:
                yield op
            finally:
                if on_file:
                    PRAGMAS["OpenAI SQLiteSession"] = pragmas_of(session._get_connection())
                session.close()

    return opened


# -- Google ADK sessions ----------------------------------------------------------------------


@asynccontextmanager
async def _adk_sessions(durable: bool) -> AsyncIterator[Any]:
    from google.adk.sessions import InMemorySessionService
    from google.adk.sessions.sqlite_session_service import SqliteSessionService

    if not durable:
        yield InMemorySessionService()
        return
    async with folder() as where:
        path = where / "adk.sqlite"
        yield SqliteSessionService(str(path))
        probe = sqlite3.connect(path)  # the service sets no pragma but foreign_keys
        PRAGMAS["ADK SqliteSessionService"] = pragmas_of(probe)
        probe.close()


def adk_state(durable: bool) -> Opener:
    """``append_event`` of an event whose only action is a one-key state delta."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        from google.adk.events import Event, EventActions

        async with _adk_sessions(durable) as service:
            session = await service.create_session(app_name=APP, user_id=USER, session_id=SESSION)

            async def op(i: int) -> None:
                delta = {"step": small_value(i)}
                event = Event(
                    invocation_id=f"inv-{i}",
                    author="agent",
                    actions=EventActions(state_delta=delta),
                )
                await service.append_event(session, event)

            yield op

    return opened


def adk_create(durable: bool) -> Opener:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        async with _adk_sessions(durable) as service:

            async def op(i: int) -> None:
                await service.create_session(
                    app_name=APP, user_id=USER, session_id=f"{SESSION}-{i}"
                )

            yield op

    return opened


def adk_recent(durable: bool) -> Opener:
    """``get_session`` with ``num_recent_events=100`` of a session of 1,000 events."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        from google.adk.events import Event
        from google.adk.sessions.base_session_service import GetSessionConfig
        from google.genai import types

        async with _adk_sessions(durable) as service:
            session = await service.create_session(app_name=APP, user_id=USER, session_id=SESSION)
            for i in range(EVENTS_KEPT):
                text = types.Content(role="user", parts=[types.Part(text=message(i)["content"])])
                await service.append_event(
                    session, Event(invocation_id=f"inv-{i}", author="user", content=text)
                )
            config = GetSessionConfig(num_recent_events=EVENTS_READ)

            async def op(i: int) -> None:
                await service.get_session(
                    app_name=APP, user_id=USER, session_id=SESSION, config=config
                )

            yield op

    return opened


# -- Google ADK artifacts ---------------------------------------------------------------------


@asynccontextmanager
async def adk_artifacts(kind: str) -> AsyncIterator[Any]:
    """An ADK artifact service: ``"files"`` (FileArtifactService), ``"memory"``
    (InMemoryArtifactService) or ``"satchel"`` (SatchelArtifactService at ``process``)."""
    from google.adk.artifacts import FileArtifactService, InMemoryArtifactService

    if kind == "memory":
        yield InMemoryArtifactService()
        return
    async with folder() as where:
        if kind == "files":
            yield FileArtifactService(where / "artifacts")
            return
        from satchel.integrations.adk import SatchelArtifactService

        async with open_runtime(where / "data", durability="process") as rt:
            yield SatchelArtifactService(rt)


_WHERE = {"app_name": APP, "user_id": USER, "session_id": SESSION}


def _part(data: bytes) -> Any:
    from google.genai import types

    return types.Part.from_bytes(data=data, mime_type="application/json")


def adk_save(kind: str, content: Content, size: int) -> Opener:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        async with adk_artifacts(kind) as service:

            async def save(i: int, data: bytes) -> None:
                await service.save_artifact(
                    filename=f"report-{i}.json", artifact=_part(data), **_WHERE
                )

            yield prepared_op(content, size, save)

    return opened


def adk_load(kind: str, size: int, names: int = 10) -> Opener:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        async with adk_artifacts(kind) as service:
            for n in range(names):
                await service.save_artifact(
                    filename=f"report-{n}.json", artifact=_part(json_like(n, size)), **_WHERE
                )

            async def op(i: int) -> None:
                assert await service.load_artifact(filename=f"report-{i % names}.json", **_WHERE)

            yield op

    return opened


def adk_versions(kind: str, versions: int = 10) -> Opener:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        async with adk_artifacts(kind) as service:
            for v in range(versions):
                await service.save_artifact(
                    filename="report.json", artifact=_part(json_like(v, 1024)), **_WHERE
                )

            async def op(i: int) -> None:
                await service.list_versions(filename="report.json", **_WHERE)

            yield op

    return opened
