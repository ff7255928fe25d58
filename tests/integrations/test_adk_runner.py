"""An ADK Runner with an LlmAgent on a stub model, on satchel's services and ADK's own.

The stub is modelled on MockModel of google/adk-python tests/unittests/testing_utils.py at
commit 11cc093158fed8ad72b40fce0d0bf3d8b2f8aa18 (a BaseLlm that yields canned LlmResponses in
order and records every LlmRequest). The agent calls one tool, which writes session, user:,
app: and temp: state and saves a session and a user: artifact, then answers; a second turn in
the same session sees the first turn's history, and a second session of the same user sees
the user: state and the user: artifact.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from google.adk.agents.llm_agent import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.tools.tool_context import ToolContext
from google.genai import types
from pydantic import Field

from .adk_support import (
    ADK_WARNINGS,
    ARTIFACT_BACKENDS,
    SESSION_BACKENDS,
    open_artifact_service,
    open_session_service,
)

pytestmark = [pytest.mark.anyio, *ADK_WARNINGS]


@pytest.fixture
def anyio_backend() -> str:
    """ADK runs on asyncio only, so these tests do too."""
    return "asyncio"


@pytest.fixture(params=sorted(SESSION_BACKENDS))
async def session_service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """Each session service: ADK's references and satchel's."""
    (tmp_path / "s").mkdir()
    async with open_session_service(request, request.param, tmp_path / "s") as service:
        yield service


@pytest.fixture(params=sorted(ARTIFACT_BACKENDS))
async def artifact_service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """Each artifact service: ADK's references and satchel's."""
    (tmp_path / "a").mkdir()
    async with open_artifact_service(request, request.param, tmp_path / "a") as service:
        yield service


APP = "runner_app"
USER = "u1"


class StubModel(BaseLlm):
    model: str = "mock"
    requests: list[LlmRequest] = Field(default_factory=list)
    responses: list[LlmResponse] = Field(default_factory=list)
    response_index: int = -1

    @classmethod
    def create(cls, responses: list[types.Part | str]) -> StubModel:
        llm_responses = []
        for item in responses:
            part = types.Part.from_text(text=item) if isinstance(item, str) else item
            llm_responses.append(LlmResponse(content=types.Content(role="model", parts=[part])))
        return cls(responses=llm_responses, requests=[])

    @classmethod
    def supported_models(cls) -> list[str]:
        return ["mock"]

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        self.response_index += 1
        self.requests.append(llm_request)
        yield self.responses[self.response_index]


async def save_note(text: str, tool_context: ToolContext) -> dict[str, Any]:
    """Saves a note as an artifact and counts notes in state."""
    tool_context.state["notes"] = tool_context.state.get("notes", 0) + 1
    tool_context.state["user:notes_total"] = tool_context.state.get("user:notes_total", 0) + 1
    tool_context.state["app:last_note"] = text
    tool_context.state["temp:scratch"] = "not kept"
    version = await tool_context.save_artifact("note.txt", types.Part.from_text(text=text))
    await tool_context.save_artifact(
        "user:profile.bin",
        types.Part.from_bytes(data=b"\x00\x01" * 1000, mime_type="application/octet-stream"),
    )
    return {"version": version}


def _texts(events: list[Any]) -> list[tuple[str, str]]:
    out = []
    for event in events:
        for part in (event.content.parts if event.content else None) or []:
            if part.text:
                out.append((event.author, part.text))
            elif part.function_call:
                out.append((event.author, f"call:{part.function_call.name}"))
            elif part.function_response:
                out.append((event.author, f"response:{part.function_response.name}"))
    return out


async def _run(runner: Runner, session_id: str, text: str) -> list[Any]:
    return [
        event
        async for event in runner.run_async(
            user_id=USER,
            session_id=session_id,
            new_message=types.Content(role="user", parts=[types.Part.from_text(text=text)]),
        )
    ]


async def test_runner_llm_agent_on_services(session_service, artifact_service):
    """A two-turn run with a tool stores events, scoped state and artifacts any session reads."""
    model = StubModel.create(
        [
            types.Part.from_function_call(name="save_note", args={"text": "first"}),
            "Saved it.",
            "Second turn.",
            "Other session.",
        ]
    )
    agent = LlmAgent(name="notes_agent", model=model, tools=[save_note], instruction="Keep notes.")
    runner = Runner(
        app_name=APP,
        agent=agent,
        session_service=session_service,
        artifact_service=artifact_service,
    )

    session = await session_service.create_session(app_name=APP, user_id=USER, session_id="s1")
    events = await _run(runner, session.id, "note: first")
    assert _texts(events) == [
        ("notes_agent", "call:save_note"),
        ("notes_agent", "response:save_note"),
        ("notes_agent", "Saved it."),
    ]

    stored = await session_service.get_session(app_name=APP, user_id=USER, session_id="s1")
    assert [e.author for e in stored.events] == [
        "user",
        "notes_agent",
        "notes_agent",
        "notes_agent",
    ]
    assert stored.state["notes"] == 1
    assert stored.state["user:notes_total"] == 1
    assert stored.state["app:last_note"] == "first"
    assert "temp:scratch" not in stored.state
    # The tool's event carries the artifact delta (version 0) and the non-temp state delta.
    tool_event = stored.events[2]
    assert tool_event.actions.artifact_delta == {"note.txt": 0, "user:profile.bin": 0}
    assert "temp:scratch" not in tool_event.actions.state_delta

    note = await artifact_service.load_artifact(
        app_name=APP, user_id=USER, session_id="s1", filename="note.txt"
    )
    assert note == types.Part.from_text(text="first")
    assert sorted(
        await artifact_service.list_artifact_keys(app_name=APP, user_id=USER, session_id="s1")
    ) == ["note.txt", "user:profile.bin"]

    # Second turn in the same session: the model sees the whole history.
    events = await _run(runner, "s1", "again")
    assert _texts(events) == [("notes_agent", "Second turn.")]
    last_request_texts = [
        part.text for content in model.requests[-1].contents for part in content.parts if part.text
    ]
    assert last_request_texts[:2] == ["note: first", "Saved it."]

    # Another session of the same user sees user: state, app: state and the user: artifact.
    await session_service.create_session(app_name=APP, user_id=USER, session_id="s2")
    events = await _run(runner, "s2", "hello")
    assert _texts(events) == [("notes_agent", "Other session.")]
    s2 = await session_service.get_session(app_name=APP, user_id=USER, session_id="s2")
    assert s2.state == {"user:notes_total": 1, "app:last_note": "first"}
    assert await artifact_service.list_artifact_keys(
        app_name=APP, user_id=USER, session_id="s2"
    ) == ["user:profile.bin"]
    listed = await session_service.list_sessions(app_name=APP, user_id=USER)
    assert [s.id for s in listed.sessions] == ["s1", "s2"]
    assert all(not s.events for s in listed.sessions)
