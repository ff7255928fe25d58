"""An ``Agent`` run by ``Runner`` with a session, on the SDK's stub model, for every session
backend: SatchelSession, and the SDK's SQLiteSession as the reference.

The stub model is the SDK's own ``agents.testing.ScriptedModel`` (0.24.0's tests use it;
earlier ones used tests.fake_model.FakeModel). ``get_text_message`` is copied from the SDK's
tests/test_responses.py.

The first test is ours. The others are the SDK's Runner-with-session tests, ported from
openai-agents 0.24.0 (PyPI sdist openai_agents-0.24.0.tar.gz, sha256
4b4b285f4fed81fdf1b4ac426a9101658d9cd29b4fb1aaeee18f639b77e704e3; tag v0.24.0 of
github.com/openai/openai-agents-python; the stored git snapshot, commit
7f7a44f8dc0650296bd5ab6c745c9bcbaa6ac3b7, is 0.22.0 and has the same tests on FakeModel):

- tests/memory/test_session.py: test_session_memory_basic_functionality_parametrized,
  test_session_memory_with_explicit_instance_parametrized,
  test_session_memory_different_sessions_parametrized,
  test_session_memory_appends_list_input_by_default, test_session_callback_prepared_input,
  test_session_callback_repeating_history_does_not_grow_session,
  test_session_add_items_exception_propagates_in_streamed,
  test_runner_with_session_settings_override
- tests/memory/test_session_limit.py: all five (test_session_limit_parameter,
  test_session_limit_drops_unmatched_history_function_call_output, test_session_limit_zero,
  test_session_limit_none_gets_all_history, test_session_limit_larger_than_history)

Changes in porting: sessions come from the ``session_backend`` fixture; docstrings are one
sentence (one test had none); list concatenations are unpacked and one ``match`` pattern is
escaped, as the linter asks. test_session_memory_disabled_parametrized uses no session and
is not ported.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from agents import Agent, RunConfig, Runner, SessionSettings, TResponseInputItem, function_tool
from agents.testing import ScriptedModel, function_call
from openai.types.responses import ResponseOutputItem, ResponseOutputMessage, ResponseOutputText

from satchel.integrations.openai_agents import SatchelSession

from .test_openai_agents_sessions import BACKENDS, Backend, open_backend


@pytest.fixture
def anyio_backend() -> str:
    """The SDK runs on asyncio only."""
    return "asyncio"


@pytest.fixture(params=BACKENDS)
async def session_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each backend in turn."""
    async with open_backend(request.param, tmp_path) as backend:
        yield backend


RUNNER_METHODS = ["run", "run_sync", "run_streamed"]


def get_text_message(content: str) -> ResponseOutputItem:
    return ResponseOutputMessage(
        id="1",
        type="message",
        role="assistant",
        content=[ResponseOutputText(text=content, type="output_text", annotations=[], logprobs=[])],
        status="completed",
    )


# Helper functions for parametrized testing of different Runner methods
def _run_sync_wrapper(agent: Agent[Any], input_data: Any, **kwargs: Any) -> Any:
    """Wrapper for run_sync that properly sets up an event loop."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return Runner.run_sync(agent, input_data, **kwargs)
    finally:
        loop.close()


async def run_agent_async(
    runner_method: str, agent: Agent[Any], input_data: Any, **kwargs: Any
) -> Any:
    """Helper function to run agent with different methods."""
    if runner_method == "run":
        return await Runner.run(agent, input_data, **kwargs)
    elif runner_method == "run_sync":
        # For run_sync, we need to run it in a thread with its own event loop
        return await asyncio.to_thread(_run_sync_wrapper, agent, input_data, **kwargs)
    elif runner_method == "run_streamed":
        result = Runner.run_streamed(agent, input_data, **kwargs)
        async for _event in result.stream_events():
            pass
        return result
    else:
        raise ValueError(f"Unknown runner method: {runner_method}")


def _needs_cross_loop(backend: Backend, runner_method: str) -> None:
    """Skip run_sync on a backend no other thread's loop can reach (none here, today)."""
    if runner_method == "run_sync" and not backend.cross_loop:
        pytest.skip("Runner.run_sync runs on a loop of its own in another thread")


# --- ours --------------------------------------------------------------------------------


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
async def test_agent_runs_with_session_on_stub_model(
    session_backend: Backend, runner_method: str
) -> None:
    """Two turns, one with a tool call: the session keeps every item in order, and the
    second model call sees the whole history from the session."""
    _needs_cross_loop(session_backend, runner_method)

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    model = ScriptedModel()
    agent = Agent(name="assistant", model=model, tools=[get_weather])
    session = session_backend.make("thread-42")

    model.enqueue([function_call("get_weather", {"city": "Paris"}, call_id="call_1")])
    model.enqueue([get_text_message("It is sunny in Paris.")])
    first = await run_agent_async(runner_method, agent, "Weather in Paris?", session=session)
    assert first.final_output == "It is sunny in Paris."

    stored = await session.get_items()
    kinds = [cast(dict[str, Any], item).get("type", "message") for item in stored]
    assert kinds == ["message", "function_call", "function_call_output", "message"]
    assert stored[0] == {"role": "user", "content": "Weather in Paris?"}
    assert cast(dict[str, Any], stored[1])["call_id"] == "call_1"
    assert json.loads(cast(dict[str, Any], stored[1])["arguments"]) == {"city": "Paris"}
    assert cast(dict[str, Any], stored[2])["output"] == "sunny in Paris"

    model.enqueue([get_text_message("Yes, Paris.")])
    second = await run_agent_async(runner_method, agent, "Which city was it?", session=session)
    assert second.final_output == "Yes, Paris."
    assert model.calls[-1].input == [*stored, {"role": "user", "content": "Which city was it?"}]
    assert len(await session.get_items()) == 6
    assert await session.get_items(limit=2) == (await session.get_items())[-2:]

    # A fresh instance over the same store sees the same history.
    if session_backend.shared_store:
        again = session_backend.make("thread-42")
        assert await again.get_items() == await session.get_items()

    model.assert_complete()


def test_run_sync_from_plain_code_on_the_synchronous_form(tmp_path: Path) -> None:
    """Runner.run_sync in plain synchronous code keeps its history in a session opened with
    ``with SatchelSession.from_path(...)``, and a later runtime on the folder reads it."""
    model = ScriptedModel()
    agent = Agent(name="assistant", model=model)
    model.enqueue([get_text_message("Hello!")])
    model.enqueue([get_text_message("You said hi.")])
    # run_sync leaves the thread's default loop open on purpose; this test closes it.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        with SatchelSession.from_path("sync-thread", tmp_path, durability="machine") as session:
            assert Runner.run_sync(agent, "hi", session=session).final_output == "Hello!"
            result = Runner.run_sync(agent, "What did I say?", session=session)
            assert result.final_output == "You said hi."
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert model.calls[-1].input[0] == {"role": "user", "content": "hi"}
    with SatchelSession.from_path("sync-thread", tmp_path) as session:
        assert len(asyncio.run(session.get_items())) == 4
    model.assert_complete()


# --- tests/memory/test_session.py --------------------------------------------------------


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
async def test_session_memory_basic_functionality_parametrized(
    session_backend: Backend, runner_method: str
) -> None:
    """Test basic session memory functionality with SQLite backend across all runner methods."""
    _needs_cross_loop(session_backend, runner_method)
    session = session_backend.make("test_session_123")

    model = ScriptedModel()
    agent = Agent(name="test", model=model)

    # First turn
    model.enqueue([get_text_message("San Francisco")])
    result1 = await run_agent_async(
        runner_method,
        agent,
        "What city is the Golden Gate Bridge in?",
        session=session,
    )
    assert result1.final_output == "San Francisco"

    # Second turn - should have conversation history
    model.enqueue([get_text_message("California")])
    result2 = await run_agent_async(
        runner_method,
        agent,
        "What state is it in?",
        session=session,
    )
    assert result2.final_output == "California"

    # Verify that the input to the second turn includes the previous conversation
    # The model should have received the full conversation history
    last_input = model.calls[-1].input
    assert len(last_input) > 1  # Should have more than just the current message


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
async def test_session_memory_with_explicit_instance_parametrized(
    session_backend: Backend, runner_method: str
) -> None:
    """Test session memory with an explicit SQLiteSession instance across all runner methods."""
    _needs_cross_loop(session_backend, runner_method)
    session = session_backend.make("test_session_456")

    model = ScriptedModel()
    agent = Agent(name="test", model=model)

    # First turn
    model.enqueue([get_text_message("Hello")])
    result1 = await run_agent_async(runner_method, agent, "Hi there", session=session)
    assert result1.final_output == "Hello"

    # Second turn
    model.enqueue([get_text_message("I remember you said hi")])
    result2 = await run_agent_async(
        runner_method,
        agent,
        "Do you remember what I said?",
        session=session,
    )
    assert result2.final_output == "I remember you said hi"


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
async def test_session_memory_different_sessions_parametrized(
    session_backend: Backend, runner_method: str
) -> None:
    """Test that different session IDs maintain separate conversation histories across all runner
    methods."""
    _needs_cross_loop(session_backend, runner_method)
    model = ScriptedModel()
    agent = Agent(name="test", model=model)

    # Session 1
    session_1 = session_backend.make("session_1")

    model.enqueue([get_text_message("I like cats")])
    result1 = await run_agent_async(runner_method, agent, "I like cats", session=session_1)
    assert result1.final_output == "I like cats"

    # Session 2 - different session
    session_2 = session_backend.make("session_2")

    model.enqueue([get_text_message("I like dogs")])
    result2 = await run_agent_async(runner_method, agent, "I like dogs", session=session_2)
    assert result2.final_output == "I like dogs"

    # Back to Session 1 - should remember cats, not dogs
    model.enqueue([get_text_message("Yes, you mentioned cats")])
    result3 = await run_agent_async(
        runner_method,
        agent,
        "What did I say I like?",
        session=session_1,
    )
    assert result3.final_output == "Yes, you mentioned cats"


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
async def test_session_memory_appends_list_input_by_default(
    session_backend: Backend, runner_method: str
) -> None:
    """Test that list inputs are appended to session history when no callback is provided."""
    _needs_cross_loop(session_backend, runner_method)
    session = session_backend.make("test_validation_parametrized")

    model = ScriptedModel()
    agent = Agent(name="test", model=model)

    initial_history: list[TResponseInputItem] = [
        {"role": "user", "content": "Earlier message"},
        {"role": "assistant", "content": "Saved reply"},
    ]
    await session.add_items(initial_history)

    list_input = [{"role": "user", "content": "Test message"}]

    model.enqueue([get_text_message("This should run")])
    await run_agent_async(runner_method, agent, list_input, session=session)

    assert model.calls[-1].input == initial_history + list_input


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
async def test_session_callback_prepared_input(
    session_backend: Backend, runner_method: str
) -> None:
    """Test if the user passes a list of items and want to append them."""
    _needs_cross_loop(session_backend, runner_method)
    model = ScriptedModel()
    agent = Agent(name="test", model=model)

    # Session
    session = session_backend.make("session_1")

    # Add first messages manually
    initial_history: list[TResponseInputItem] = [
        {"role": "user", "content": "Hello there."},
        {"role": "assistant", "content": "Hi, I'm here to assist you."},
    ]
    await session.add_items(initial_history)

    def filter_assistant_messages(history: Any, new_input: Any) -> Any:
        # Only include user messages from history
        return [item for item in history if item["role"] == "user"] + new_input

    new_turn_input = [{"role": "user", "content": "What your name?"}]
    model.enqueue([get_text_message("I'm gpt-4o")])

    # Run the agent with the callable
    await run_agent_async(
        runner_method,
        agent,
        new_turn_input,
        session=session,
        run_config=RunConfig(session_input_callback=filter_assistant_messages),
    )

    expected_model_input = [
        initial_history[0],  # From history
        new_turn_input[0],  # New input
    ]

    assert len(model.calls[-1].input) == 2
    assert model.calls[-1].input == expected_model_input


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
async def test_session_callback_repeating_history_does_not_grow_session(
    session_backend: Backend, runner_method: str
) -> None:
    """A callback that repeats history does not store the repeat (docstring added)."""
    _needs_cross_loop(session_backend, runner_method)
    model = ScriptedModel()
    agent = Agent(name="test", model=model)
    session = session_backend.make("session_repeat")

    def repeat_first(history: Any, new_input: Any) -> Any:
        if not history:
            return new_input
        return [*history, history[0], *new_input]

    for turn in range(3):
        model.enqueue([get_text_message(f"assistant {turn}")])
        await run_agent_async(
            runner_method,
            agent,
            f"user {turn}",
            session=session,
            run_config=RunConfig(session_input_callback=repeat_first),
        )

    stored = await session.get_items()
    user_messages = [item for item in stored if item.get("role") == "user"]
    assert [item.get("content") for item in user_messages] == [
        "user 0",
        "user 1",
        "user 2",
    ]
    assert len(stored) == 6


async def test_session_add_items_exception_propagates_in_streamed(session_backend: Backend) -> None:
    """An add_items error ends run_streamed's stream instead of hanging it (SDK issue 2130)."""
    session = session_backend.make("test_exception_session")

    async def _failing_add_items(_items: Any) -> None:
        raise RuntimeError("Simulated session.add_items failure")

    session.add_items = _failing_add_items  # type: ignore[method-assign]

    model = ScriptedModel()
    agent = Agent(name="test", model=model)
    model.enqueue([get_text_message("This should not be reached")])

    result = Runner.run_streamed(agent, "Hello", session=session)

    async def consume_stream() -> None:
        async for _event in result.stream_events():
            pass

    with pytest.raises(RuntimeError, match=r"Simulated session\.add_items failure"):
        # Timeout ensures test fails fast instead of hanging forever if bug regresses
        await asyncio.wait_for(consume_stream(), timeout=5.0)


async def test_runner_with_session_settings_override(session_backend: Backend) -> None:
    """Test that RunConfig can override session's default settings."""
    # Session with default limit=100
    session = session_backend.make(
        "runner_override_test", session_settings=SessionSettings(limit=100)
    )

    # Add some history
    items: list[TResponseInputItem] = [{"role": "user", "content": f"Turn {i}"} for i in range(10)]
    await session.add_items(items)

    model = ScriptedModel()
    agent = Agent(name="test", model=model)
    model.enqueue([get_text_message("Got it")])

    await Runner.run(
        agent,
        "New question",
        session=session,
        run_config=RunConfig(
            session_settings=SessionSettings(limit=2)  # Override to 2
        ),
    )

    # Verify the agent received only the last 2 history items + new question
    last_input = model.calls[-1].input
    # Filter out the new "New question" input
    history_items = [item for item in last_input if item.get("content") != "New question"]
    # Should have 2 history items (last two from the 10 we added)
    assert len(history_items) == 2


# --- tests/memory/test_session_limit.py --------------------------------------------------


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
async def test_session_limit_parameter(session_backend: Backend, runner_method: str) -> None:
    """Test that session_limit parameter correctly limits conversation history
    retrieved from session across all Runner methods."""
    _needs_cross_loop(session_backend, runner_method)
    session = session_backend.make("limit_test")

    model = ScriptedModel()
    agent = Agent(name="test", model=model)

    # Build up a longer conversation history
    model.enqueue([get_text_message("Reply 1")])
    await run_agent_async(runner_method, agent, "Message 1", session=session)

    model.enqueue([get_text_message("Reply 2")])
    await run_agent_async(runner_method, agent, "Message 2", session=session)

    model.enqueue([get_text_message("Reply 3")])
    await run_agent_async(runner_method, agent, "Message 3", session=session)

    # Verify we have 6 items in total (3 user + 3 assistant)
    all_items = await session.get_items()
    assert len(all_items) == 6

    # Test session_limit via RunConfig - should only get last 2 history items + new input
    model.enqueue([get_text_message("Reply 4")])
    await run_agent_async(
        runner_method,
        agent,
        "Message 4",
        session=session,
        run_config=RunConfig(session_settings=SessionSettings(limit=2)),
    )

    # Verify model received limited history
    last_input = model.calls[-1].input
    # Should have: 2 history items + 1 new message = 3 total
    assert len(last_input) == 3
    # First item should be "Message 3" (not Message 1 or 2)
    assert last_input[0].get("content") == "Message 3"
    # Assistant message has content as a list
    assert last_input[1].get("content")[0]["text"] == "Reply 3"
    assert last_input[2].get("content") == "Message 4"


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
async def test_session_limit_drops_unmatched_history_function_call_output(
    session_backend: Backend, runner_method: str
) -> None:
    """A limit boundary must not pass an output whose matching call was excluded."""
    _needs_cross_loop(session_backend, runner_method)
    session = session_backend.make("limit_tool_pair")
    history = cast(
        list[TResponseInputItem],
        [
            {"role": "user", "content": "What is the weather?"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": "{}",
            },
            {
                "type": "function_call_output",
                "call_id": "call_1",
                "output": "sunny",
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [
                    {
                        "type": "output_text",
                        "text": "It is sunny.",
                        "annotations": [],
                    }
                ],
            },
        ],
    )
    await session.add_items(history)

    assert await session.get_items(limit=2) == history[-2:]

    model = ScriptedModel()
    model.enqueue([get_text_message("Tomorrow is sunny too.")])
    agent = Agent(name="test", model=model)

    await run_agent_async(
        runner_method,
        agent,
        "What about tomorrow?",
        session=session,
        run_config=RunConfig(session_settings=SessionSettings(limit=2)),
    )

    assert model.calls[-1].input == [
        history[-1],
        {"role": "user", "content": "What about tomorrow?"},
    ]


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
async def test_session_limit_zero(session_backend: Backend, runner_method: str) -> None:
    """Test that session_limit=0 provides no history, only new message."""
    _needs_cross_loop(session_backend, runner_method)
    session = session_backend.make("limit_zero_test")

    model = ScriptedModel()
    agent = Agent(name="test", model=model)

    # Build conversation history
    model.enqueue([get_text_message("Reply 1")])
    await run_agent_async(runner_method, agent, "Message 1", session=session)

    model.enqueue([get_text_message("Reply 2")])
    await run_agent_async(runner_method, agent, "Message 2", session=session)

    # Test with limit=0 - should get NO history, just new message
    model.enqueue([get_text_message("Reply 3")])
    await run_agent_async(
        runner_method,
        agent,
        "Message 3",
        session=session,
        run_config=RunConfig(session_settings=SessionSettings(limit=0)),
    )

    # Verify model received only the new message
    last_input = model.calls[-1].input
    assert len(last_input) == 1
    assert last_input[0].get("content") == "Message 3"


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
async def test_session_limit_none_gets_all_history(
    session_backend: Backend, runner_method: str
) -> None:
    """Test that session_limit=None retrieves entire history (default behavior)."""
    _needs_cross_loop(session_backend, runner_method)
    session = session_backend.make("limit_none_test")

    model = ScriptedModel()
    agent = Agent(name="test", model=model)

    # Build longer conversation
    for i in range(1, 6):
        model.enqueue([get_text_message(f"Reply {i}")])
        await run_agent_async(runner_method, agent, f"Message {i}", session=session)

    # Verify 10 items in session (5 user + 5 assistant)
    all_items = await session.get_items()
    assert len(all_items) == 10

    # Test with session_limit=None (default) - should get all history
    model.enqueue([get_text_message("Reply 6")])
    await run_agent_async(
        runner_method,
        agent,
        "Message 6",
        session=session,
        run_config=RunConfig(session_settings=SessionSettings(limit=None)),
    )

    # Verify model received all history + new message
    last_input = model.calls[-1].input
    assert len(last_input) == 11  # 10 history + 1 new
    assert last_input[0].get("content") == "Message 1"
    assert last_input[-1].get("content") == "Message 6"


@pytest.mark.parametrize("runner_method", RUNNER_METHODS)
async def test_session_limit_larger_than_history(
    session_backend: Backend, runner_method: str
) -> None:
    """Test that session_limit larger than history size returns all items."""
    _needs_cross_loop(session_backend, runner_method)
    session = session_backend.make("limit_large_test")

    model = ScriptedModel()
    agent = Agent(name="test", model=model)

    # Build small conversation
    model.enqueue([get_text_message("Reply 1")])
    await run_agent_async(runner_method, agent, "Message 1", session=session)

    # Test with limit=100 (much larger than actual history)
    model.enqueue([get_text_message("Reply 2")])
    await run_agent_async(
        runner_method,
        agent,
        "Message 2",
        session=session,
        run_config=RunConfig(session_settings=SessionSettings(limit=100)),
    )

    # Verify model received all available history + new message
    last_input = model.calls[-1].input
    assert len(last_input) == 3  # 2 history + 1 new
    assert last_input[0].get("content") == "Message 1"
    # Assistant message has content as a list
    assert last_input[1].get("content")[0]["text"] == "Reply 1"
    assert last_input[2].get("content") == "Message 2"
