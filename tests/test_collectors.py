"""Collectors: reported tool results and agent outputs become readable artifacts."""

from __future__ import annotations

import json

import pytest

from satchel import (
    CollectionConfig,
    HookCancelledError,
    HookContext,
    HookResult,
    Runtime,
    SessionNotActiveError,
    SessionNotFoundError,
    ValidationError,
)


async def test_a_tool_result_becomes_a_readable_artifact(rt: Runtime) -> None:
    """The reported call is stored as JSON, typed, tagged and described by where it came
    from; each call of a tool is the next version of its name."""
    sid = await rt.sessions.create()
    ref = await rt.collectors.tool_result(sid, "web_search", {"q": "trio"}, ["a", "b"])
    assert ref is not None and ref.name == "tool-web_search.json" and ref.version == 1
    got = await rt.artifacts.get(sid, ref.id)
    assert json.loads(got.content) == {
        "tool": "web_search",
        "params": {"q": "trio"},
        "result": ["a", "b"],
    }
    info = got.metadata
    assert (info.type, info.mime_type) == ("tool_result", "application/json")
    assert info.tags == ("tool_result", "web_search")
    assert info.custom["source"] == {"collector": "tool_result", "tool": "web_search"}
    again = await rt.collectors.tool_result(sid, "web_search", {"q": "lupa"}, [])
    assert again is not None and again.version == 2
    assert [a.id for a in await rt.artifacts.query(type="tool_result", tags=["web_search"])] == [
        again.id
    ]
    # Names that must change to fit an artifact name keep apart by a hash of the original.
    names = set()
    for tool in ("web search", "web/search", "搜索", "検索", ".", "x" * 250):
        collected = await rt.collectors.tool_result(sid, tool, {}, 1)
        assert collected is not None and collected.version == 1, tool
        names.add(collected.name)
    assert len(names) == 6
    assert rt.collectors.collected == 8
    assert (await rt.sessions.check()).clean


async def test_agent_output_keeps_model_and_usage(rt: Runtime) -> None:
    """Text output is stored as text; the model and token usage are custom metadata."""
    sid = await rt.sessions.create()
    ref = await rt.collectors.agent_output(
        sid, "planner", "step 1: think", model="m-1", usage={"input": 10, "output": 4}
    )
    assert ref is not None
    got = await rt.artifacts.get(sid, ref.id)
    assert got.content == b"step 1: think"
    assert (got.metadata.type, got.metadata.mime_type) == ("agent_output", "text/plain")
    assert got.metadata.custom["model"] == "m-1"
    assert got.metadata.custom["usage"] == {"input": 10, "output": 4}
    structured = await rt.collectors.agent_output(sid, "planner", {"plan": [1, 2]})
    assert structured is not None and structured.name == "agent-planner.json"


async def test_collection_config_decides(rt: Runtime) -> None:
    """Errors, size bounds and sampling skip reports; auto tags are added to what is kept."""
    sid = await rt.sessions.create()
    failed = await rt.collectors.tool_result(sid, "fetch", {"url": "x"}, error="timeout")
    assert failed is not None
    assert "error" in (await rt.artifacts.info(sid, failed.id)).tags
    rt.collectors.config = CollectionConfig(collect_errors=False, auto_tags=("run-7",))
    assert await rt.collectors.tool_result(sid, "fetch", {}, error="timeout") is None
    kept = await rt.collectors.tool_result(sid, "fetch", {}, "ok")
    assert kept is not None
    assert (await rt.artifacts.info(sid, kept.id)).tags[0] == "run-7"
    rt.collectors.config = CollectionConfig(max_size=10)
    assert await rt.collectors.tool_result(sid, "fetch", {}, "x" * 100) is None
    rt.collectors.config = CollectionConfig(sampling_rate=0.0)
    assert await rt.collectors.agent_output(sid, "a", "hello") is None
    assert rt.collectors.skipped == 3
    with pytest.raises(ValidationError):
        CollectionConfig(min_size=5, max_size=1)
    with pytest.raises(ValidationError):
        CollectionConfig(sampling_rate=2)


async def test_only_active_sessions_collect(rt: Runtime) -> None:
    """A suspended or unknown session collects nothing."""
    sid = await rt.sessions.create()
    await rt.sessions.suspend(sid)
    with pytest.raises(SessionNotActiveError):
        await rt.collectors.tool_result(sid, "t", {}, 1)
    with pytest.raises(SessionNotFoundError):
        await rt.collectors.agent_output("00000000-0000-4000-8000-000000000000", "a", "x")
    assert await rt.artifacts.list(sid) == []


async def test_collector_hooks(rt: Runtime) -> None:
    """tool_result hooks can add tags or cancel the collection; their runs are journaled."""
    sid = await rt.sessions.create()

    def screen(ctx: HookContext) -> HookResult:
        if ctx.data["size"] > 100:
            return HookResult.cancel("too big to keep")
        return HookResult.modify({"tags": [*ctx.data["tags"], "screened"]})

    rt.hooks.register("tool_result", screen)
    ref = await rt.collectors.tool_result(sid, "calc", {"x": 1}, 2)
    assert ref is not None and "screened" in (await rt.artifacts.info(sid, ref.id)).tags
    with pytest.raises(HookCancelledError):
        await rt.collectors.tool_result(sid, "calc", {}, "y" * 500)
    assert len(await rt.artifacts.versions(sid, "tool-calc.json")) == 1
    timeline = await rt.sessions.timeline(sid)
    assert "hooks_ran" not in [e.kind for e in timeline]  # the cancelled run wrote nothing
    stored = [e for e in timeline if e.kind == "artifact_stored"]
    assert len(stored) == 1 and stored[0].data["hooks"][0]["point"] == "tool_result"


async def test_bad_reports_are_refused_in_the_callers_task(rt: Runtime) -> None:
    """Output that cannot be stored is a ValidationError for the reporter; the hook actor
    goes on collecting."""
    sid = await rt.sessions.create()
    with pytest.raises(ValidationError):
        await rt.collectors.agent_output(sid, "a", "bad \ud800")
    with pytest.raises(ValidationError):
        await rt.collectors.tool_result(sid, "t", {}, float("nan"))
    with pytest.raises(ValidationError):
        await rt.collectors.tool_result(sid, "t", {}, object())

    def wreck(ctx: HookContext) -> HookResult:
        return HookResult.modify({"metadata": None})

    rt.hooks.register("tool_result", wreck)
    with pytest.raises(ValidationError):
        await rt.collectors.tool_result(sid, "t", {}, 1)
    rt.hooks.unregister("test_bad_reports_are_refused_in_the_callers_task.<locals>.wreck")
    assert await rt.collectors.agent_output(sid, "a", "still collecting") is not None
