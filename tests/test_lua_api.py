"""Every function of the Lua API contract (docs/lua-api.md), from Lua, in both naming styles."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from satchel import AccessDeniedError, Runtime, open_runtime
from satchel.scripting import api_names

SPEC = Path(__file__).parent.parent / "docs" / "lua-api.md"
STYLES = ["camel", "snake"]
MISSING = "00000000-0000-4000-8000-000000000000"

# Every scenario starts with this helper: the kind an API error carries.
PRELUDE = 'local function kind(e) return (tostring(e):match("^(%w+):")) end\n'


def styled(source: str, style: str) -> str:
    """The source with every API call in the given naming style (sources are camelCase)."""
    if style == "camel":
        return source

    def snake(match: re.Match[str]) -> str:
        name = re.sub(r"[A-Z]", lambda c: "_" + c.group().lower(), match.group(2))
        return f"{match.group(1)}.{name}"

    return re.sub(r"\b(Session|Artifact|State)\.(\w+)", snake, source)


async def run(rt: Runtime, source: str, style: str, **options: Any) -> list[Any]:
    """Run a scenario in one naming style, printing nothing."""
    return await rt.run_lua(PRELUDE + styled(source, style), output=lambda _: None, **options)


SCENARIOS: dict[str, tuple[str, list[Any]]] = {
    "Session.create": (
        """
        local parent = Session.create({name = "p"})
        local id = Session.create({name = "n", description = "d", tags = {"a", "b"},
          metadata = {k = {1, 2}, nested = {x = true}}, parent_session_id = parent,
          config = {max_artifacts = 1}})
        local s = Session.get(id)
        Artifact.store(id, "tool_result", "one", "1")
        local quota_ok, quota = pcall(Artifact.store, id, "tool_result", "two", "2")
        local ok, e = pcall(Session.create, {parent_session_id = ARGS[2]})
        local bad_ok, bad = pcall(Session.create, {name = 5})
        return s.id:match("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$") ~= nil, s.name,
          s.description, s.tags, s.metadata, s.parent_session_id == parent, kind(quota),
          kind(e), kind(bad), Session.create() ~= Session.create()
        """,
        [
            True,
            "n",
            "d",
            ["a", "b"],
            {"k": [1, 2], "nested": {"x": True}},
            True,
            "QuotaExceeded",
            "SessionNotFound",
            "InvalidArgument",
            True,
        ],
    ),
    "Session.get": (
        """
        local id = Session.create({name = "g"})
        local s = Session.get(id)
        local rfc = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.?%d*Z$"
        Session.complete(id)
        local done = Session.get(id)
        local ok1, e1 = pcall(Session.get, "not-an-id")
        local ok2, e2 = pcall(Session.get, "00000000-0000-4000-8000-000000000000")
        return s.status, s.artifact_count, s.total_bytes, s.operation_count,
          s.created_at:match(rfc) ~= nil, s.ended_at, done.status, done.ended_at:match(rfc) ~= nil,
          kind(e1), kind(e2)
        """,
        ["active", 0, 0, 0, True, None, "completed", True, "InvalidArgument", "SessionNotFound"],
    ),
    "Session.list": (
        """
        local root = Session.create({name = "root"})
        local a = Session.create({name = "alpha", tags = {"x", "y"}, parent_session_id = root})
        local b = Session.create({name = "beta", description = "has ALPHA inside", tags = {"x"}})
        local c = Session.create({name = "gamma"})
        Session.suspend(c)
        local function names(list)
          local out = {}
          for i, s in ipairs(list) do out[i] = s.name end
          return out
        end
        local ok, e = pcall(Session.list, {status = "sleeping"})
        return names(Session.list()), names(Session.list({status = "suspended"})),
          names(Session.list({tags = {"x", "y"}})), names(Session.list({search = "alpha"})),
          names(Session.list({parent_session_id = root})),
          names(Session.list({order_by = "name", descending = true, offset = 1, limit = 2})),
          #Session.list({created_after = os.time() + 3600}),
          #Session.list({created_before = "2999-01-01T00:00:00Z"}), kind(e)
        """,
        [
            ["root", "alpha", "beta", "gamma"],
            ["gamma"],
            ["alpha"],
            ["alpha", "beta"],
            ["alpha"],
            ["gamma", "beta"],
            0,
            4,
            "ValidationError",
        ],
    ),
    "Session.suspend": (
        """
        local id = Session.create()
        Session.suspend(id)
        local ok, e = pcall(Session.setState, id, "k", 1)
        local again_ok, again = pcall(Session.suspend, id)
        return Session.get(id).status, kind(e), kind(again)
        """,
        ["suspended", "SessionNotActive", "InvalidStateTransition"],
    ),
    "Session.resume": (
        """
        local id = Session.create()
        local ok, e = pcall(Session.resume, id)
        Session.suspend(id)
        Session.resume(id)
        Session.setState(id, "k", 1)
        return kind(e), Session.get(id).status, Session.getState(id, "k")
        """,
        ["InvalidStateTransition", "active", 1],
    ),
    "Session.complete": (
        """
        local a, b = Session.create(), Session.create()
        Session.complete(a)
        Session.suspend(b)
        Session.complete(b)
        local ok, e = pcall(Session.complete, a)
        return Session.get(a).status, Session.get(b).status, kind(e)
        """,
        ["completed", "completed", "InvalidStateTransition"],
    ),
    "Session.fail": (
        """
        local a, b = Session.create(), Session.create()
        Session.fail(a, "tool crashed")
        Session.fail(b)
        local ok, e = pcall(Session.fail, a, "again")
        return Session.get(a).status, Session.get(a).failure_reason, Session.get(b).status,
          kind(e)
        """,
        ["failed", "tool crashed", "failed", "InvalidStateTransition"],
    ),
    "Session.archive": (
        """
        local a, b = Session.create(), Session.create()
        local ok, e = pcall(Session.archive, a)
        Session.complete(a)
        Session.archive(a)
        Session.fail(b)
        Session.archive(b)
        return kind(e), Session.get(a).status, Session.get(b).status
        """,
        ["InvalidStateTransition", "archived", "archived"],
    ),
    "Session.delete": (
        """
        local parent = Session.create()
        local child = Session.create({parent_session_id = parent})
        Artifact.store(child, "tool_result", "note", "x")
        local ok, e = pcall(Session.delete, parent)
        local still = Session.get(child).id == child
        Session.delete(parent, {cascade = true})
        local ok1, e1 = pcall(Session.get, parent)
        local ok2, e2 = pcall(Session.get, child)
        local lone = Session.create()
        Session.delete(lone)
        return kind(e), still, kind(e1), kind(e2), (pcall(Session.get, lone))
        """,
        ["SessionHasChildren", True, "SessionNotFound", "SessionNotFound", False],
    ),
    "Session.save": (
        """
        local id = Session.create()
        Session.setState(id, "k", 1)
        local ok, e = pcall(Session.save, "00000000-0000-4000-8000-000000000000")
        return select("#", Session.save(id)), kind(e)
        """,
        [0, "SessionNotFound"],
    ),
    "Session.load": (
        """
        local id = Session.create()
        local ok, e = pcall(Session.load, "00000000-0000-4000-8000-000000000000")
        return Session.load(id) == id, kind(e)
        """,
        [True, "SessionNotFound"],
    ),
    "Session.getCurrent": (
        """
        local before = Session.getCurrent()
        local id = Session.create()
        Session.setCurrent(id)
        Artifact.store("", "user_input", "q", "hello")
        local now = Session.getCurrent()
        Session.setCurrent(nil)
        return before, now == id, Session.getCurrent(), #Artifact.list(id)
        """,
        [None, True, None, 1],
    ),
    "Session.setCurrent": (
        """
        local id = Session.create()
        local ok, e = pcall(Session.setCurrent, "00000000-0000-4000-8000-000000000000")
        Session.setCurrent(id)
        local listed = #Artifact.list()
        return kind(e), Session.getCurrent() == id, listed
        """,
        ["SessionNotFound", True, 0],
    ),
    "Session.setState": (
        """
        local id = Session.create()
        Session.setState(id, "plan", {steps = {"a", "b"}, done = 1, ratio = 0.5, empty = {}})
        Session.setState(id, "gone", true)
        Session.setState(id, "gone", nil)
        local ok, e = pcall(Session.setState, id, "f", function() end)
        return Session.getState(id, "plan"), Session.getState(id, "gone"), kind(e)
        """,
        [{"steps": ["a", "b"], "done": 1, "ratio": 0.5, "empty": []}, None, "InvalidArgument"],
    ),
    "Session.getState": (
        """
        local id = Session.create()
        Session.setState(id, "n", 42)
        return Session.getState(id, "n"), math.type(Session.getState(id, "n")),
          Session.getState(id, "missing")
        """,
        [42, "integer", None],
    ),
    "Session.deleteState": (
        """
        local id = Session.create()
        Session.setState(id, "a", 1)
        Session.setState(id, "b", 2)
        Session.deleteState(id, "a")
        return Session.getState(id, "a"), Session.listState(id)
        """,
        [None, ["b"]],
    ),
    "Session.listState": (
        """
        local id = Session.create()
        local empty = Session.listState(id)
        for _, k in ipairs({"c", "a", "b"}) do Session.setState(id, k, k) end
        local keys = Session.listState(id)
        table.sort(keys)
        return empty, keys
        """,
        [[], ["a", "b", "c"]],
    ),
    "Session.fork": (
        """
        local id = Session.create({name = "origin"})
        Session.setState(id, "step", 1)
        local at = #Session.timeline(id)
        Session.setState(id, "step", 2)
        Artifact.store(id, "tool_result", "late", "late content")
        local early = Session.fork(id, {at = Session.timeline(id)[at].seq, name = "early"})
        local latest = Session.fork(id)
        return Session.getState(early, "step"), #Artifact.list(early), Session.get(early).name,
          Session.getState(latest, "step"), Artifact.get(latest, "late").content,
          Session.getState(id, "step")
        """,
        [1, 0, "early", 2, "late content", 2],
    ),
    "Session.timeline": (
        """
        local id = Session.create()
        Session.setState(id, "k", 1)
        Artifact.store(id, "tool_result", "a", "x")
        local events = Session.timeline(id)
        local increasing = true
        for i = 2, #events do increasing = increasing and events[i].seq > events[i - 1].seq end
        local last = events[#events]
        return #events >= 3, increasing, type(last.at), type(last.kind), type(last.data)
        """,
        [True, True, "string", "string", "table"],
    ),
    "Session.canReplay": (
        """
        local id = Session.create()
        Session.setState(id, "k", 1)
        local ok, e = pcall(Session.canReplay, "not-an-id")
        return Session.canReplay(id), Session.canReplay("00000000-0000-4000-8000-000000000000"),
          kind(e)
        """,
        [True, False, "InvalidArgument"],
    ),
    "Session.replay": (
        """
        local id = Session.create()
        Session.setState(id, "a", 1)
        Session.setState(id, "b", 2)
        Artifact.store(id, "tool_result", "r", "result")
        local sim = Session.replay(id)
        local dbg = Session.replay(id, {mode = "debug"})
        local mod = Session.replay(id, {mode = "modified", modifications = {a = 10}})
        local exact = Session.replay(id, {mode = "exact"})
        local ok, e = pcall(Session.replay, id, {mode = "backwards"})
        return sim.mode, sim.state, sim.artifacts[1].name, sim.artifacts[1].version,
          #dbg.steps == dbg.events_replayed, mod.state.a, exact.mismatched,
          Session.getState(id, "a"), kind(e)
        """,
        ["simulate", {"a": 1, "b": 2}, "r", 1, True, 10, 0, 1, "ValidationError"],
    ),
    "Session.getReplayMetadata": (
        """
        local id = Session.create()
        Session.setState(id, "k", 1)
        local m = Session.getReplayMetadata(id)
        return m.session_id == id, m.total_events == #Session.timeline(id), type(m.first_event_at),
          type(m.last_event_at), m.can_replay
        """,
        [True, True, "string", "string", True],
    ),
    "Session.listReplayable": (
        """
        local id = Session.create()
        Session.setState(id, "k", 1)
        local found = false
        for _, r in ipairs(Session.listReplayable()) do found = found or r == id end
        return found
        """,
        [True],
    ),
    "Artifact.store": (
        """
        local id = Session.create()
        local one = Artifact.store(id, "tool_result", "out.txt", "v1",
          {mime_type = "text/plain", description = "d", tags = {"t"}, tool = {name = "grep"}})
        local two = Artifact.store(id, "my_custom_type", "out.txt", "v2")
        local meta = Artifact.get(id, one).metadata
        local ok1, e1 = pcall(Artifact.store, id, "", "x", "y")
        local ok2, e2 = pcall(Artifact.store, id, "tool_result", "../etc", "y")
        local ok3, e3 = pcall(Artifact.store, id, "tool_result", "x", "y",
          {tags = {string.rep("t", 65)}})
        return one.session_id == id, one.name, one.version, one.sequence, two.version,
          #one.content_hash, meta.type, meta.artifact_type, meta.mime_type, meta.description,
          meta.tags, meta.custom, Artifact.get(id, two).metadata.type, kind(e1), kind(e2), kind(e3)
        """,
        [
            True,
            "out.txt",
            1,
            1,
            2,
            64,
            "tool_result",
            "tool_result",
            "text/plain",
            "d",
            ["t"],
            {"tool": {"name": "grep"}},
            "my_custom_type",
            "InvalidArgument",
            "ValidationError",
            "ValidationError",
        ],
    ),
    "Artifact.get": (
        """
        local id = Session.create()
        local one = Artifact.store(id, "tool_result", "n", "first\\0bytes")
        Artifact.store(id, "tool_result", "n", "second")
        local ok1, e1 = pcall(Artifact.get, id, "n", 3)
        local ok2, e2 = pcall(Artifact.get, id, "nothing")
        return Artifact.get(id, one.id).content, Artifact.get(id, one).content,
          Artifact.get(id, "n").content, Artifact.get(id, "n", 1).metadata.version,
          Artifact.get(id, "n").metadata.size, kind(e1), kind(e2)
        """,
        ["first\0bytes", "first\0bytes", "second", 1, 6, "ArtifactNotFound", "ArtifactNotFound"],
    ),
    "Artifact.list": (
        """
        local id = Session.create()
        Artifact.store(id, "tool_result", "b", "1")
        Artifact.store(id, "tool_result", "a", "2")
        Artifact.store(id, "tool_result", "b", "3")
        local out = {}
        for i, m in ipairs(Artifact.list(id)) do out[i] = m.name .. m.version end
        return out, Artifact.list(Session.create())
        """,
        [["b2", "a1"], []],
    ),
    "Artifact.versions": (
        """
        local id = Session.create()
        for i = 1, 3 do Artifact.store(id, "tool_result", "v", "content " .. i) end
        local out = {}
        for i, m in ipairs(Artifact.versions(id, "v")) do out[i] = m.version end
        local ok, e = pcall(Artifact.versions, id, "none")
        return out, kind(e)
        """,
        [[1, 2, 3], "ArtifactNotFound"],
    ),
    "Artifact.delete": (
        """
        local id = Session.create()
        local one = Artifact.store(id, "tool_result", "v", "1")
        Artifact.store(id, "tool_result", "v", "2")
        Artifact.store(id, "tool_result", "w", "3")
        Artifact.delete(id, one)
        local left = #Artifact.versions(id, "v")
        Artifact.delete(id, "v")
        local ok, e = pcall(Artifact.get, id, "v")
        local ok2, e2 = pcall(Artifact.delete, id, "v")
        return left, kind(e), kind(e2), #Artifact.list(id)
        """,
        [1, "ArtifactNotFound", "ArtifactNotFound", 1],
    ),
    "Artifact.storeFile": (
        """
        local id = Session.create()
        local ref = Artifact.storeFile(id, ARGS[1], "user_input", {tags = {"upload"}})
        local got = Artifact.get(id, ref)
        local ok, e = pcall(Artifact.storeFile, id, ARGS[1] .. ".missing", "user_input")
        return ref.name, got.content, got.metadata.mime_type, got.metadata.tags, kind(e)
        """,
        ["report.json", '{"ok": true}', "application/json", ["upload"], "ValidationError"],
    ),
    "Artifact.query": (
        """
        local a, b = Session.create(), Session.create()
        Artifact.store(a, "tool_result", "Search-Results", "12345",
          {tags = {"web", "raw"}, src = "bing"})
        Artifact.store(a, "tool_result", "search-results", "1234567")
        Artifact.store(a, "agent_output", "summary", "123", {tags = {"web"}, src = "bing"})
        Artifact.store(b, "tool_result", "other", "1")
        local function names(list)
          local out = {}
          for i, m in ipairs(list) do out[i] = m.name .. ":" .. m.version end
          return out
        end
        return names(Artifact.query({session_id = a, type = "tool_result"})),
          names(Artifact.query({session_id = a, name_pattern = "SEARCH"})),
          names(Artifact.query({session_id = a, tags = {"web", "raw"}})),
          names(Artifact.query({session_id = a, metadata = {src = "bing"}, order_by = "name"})),
          names(Artifact.query({session_id = a, min_size = 4, max_size = 6})),
          names(Artifact.query({session_id = a, order_by = "size", descending = true, limit = 1})),
          #Artifact.query({session_id = a, all_versions = true}),
          #Artifact.query({session_id = a, created_after = os.time() + 3600}), #Artifact.query({})
        """,
        [
            ["Search-Results:1", "search-results:1"],
            ["Search-Results:1", "search-results:1"],
            ["Search-Results:1"],
            ["Search-Results:1", "summary:1"],
            ["Search-Results:1"],
            ["search-results:1"],
            3,
            0,
            4,
        ],
    ),
    "Artifact.share": (
        """
        local owner, reader = Session.create(), Session.create()
        Artifact.store(owner, "tool_result", "secret", "s3cret")
        local ok, e = pcall(Artifact.share, owner, "secret", reader, "root")
        Artifact.share(owner, "secret", reader, "read")
        return kind(e), owner, reader
        """,
        ["ValidationError"],
    ),
    "Artifact.revoke": (
        """
        local owner, reader = Session.create(), Session.create()
        Artifact.store(owner, "tool_result", "secret", "s3cret")
        Artifact.share(owner, "secret", reader, "read")
        Artifact.revoke(owner, "secret", reader)
        return owner, reader
        """,
        [],
    ),
    "Artifact.auditLog": (
        """
        local owner, reader = Session.create(), Session.create()
        Artifact.store(owner, "tool_result", "secret", "s3cret")
        Artifact.share(owner, "secret", reader, "read")
        return owner, reader
        """,
        [],
    ),
    "State.set": (
        """
        State.set("config", {retries = 3, hosts = {"a", "b"}})
        State.set("config", {retries = 4, hosts = {}})
        return State.get("config")
        """,
        [{"retries": 4, "hosts": []}],
    ),
    "State.get": ('State.set("n", 1.5) return State.get("n"), State.get("absent")', [1.5, None]),
    "State.delete": (
        'State.set("a", 1) State.set("b", 2) State.delete("a") State.set("b", nil)'
        ' return State.get("a"), State.get("b"), State.list()',
        [None, None, []],
    ),
    "State.list": (
        'State.set("x", 1) State.set("y", 2) local k = State.list() table.sort(k) return k',
        [["x", "y"]],
    ),
    "JSON.encode": (
        'return JSON.encode({a = {1, 2}}), JSON.stringify({}), JSON.encode("x")',
        ['{"a":[1,2]}', "[]", '"x"'],
    ),
    "JSON.decode": (
        'local v = JSON.decode(\'{"a": [1, 2.5, null, {"b": true}]}\')'
        ' local ok, e = pcall(JSON.parse, "{nope")'
        ' local empty = JSON.parse("[]")'
        " return v.a[1], math.type(v.a[1]), v.a[2], v.a[4].b, ok",
        [1, "integer", 2.5, True, False],
    ),
}

# Scenarios whose script returns session ids the test then uses from session scripts.
SHARING = {"Artifact.share", "Artifact.revoke", "Artifact.auditLog"}
PROBE = PRELUDE + "local ok, e = pcall(Artifact.get, ARGS[1], 'secret') return kind(e)"
READ = "return Artifact.get(ARGS[1], 'secret').content"
AUDIT = PRELUDE + (
    "local out = {} for i, e in ipairs(Artifact.auditLog(ARGS[1], 'secret')) do"
    " out[i] = {e.session_id, e.action, e.granted, type(e.at)} end return out"
)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("function", sorted(set(SCENARIOS) - SHARING))
async def test_function(rt: Runtime, function: str, style: str, tmp_path: Path) -> None:
    """The function does what the contract says, called by its name in this style."""
    source, expected = SCENARIOS[function]
    upload = tmp_path / "report.json"
    upload.write_text('{"ok": true}')
    assert await run(rt, source, style, args=[str(upload), MISSING]) == expected


@pytest.mark.parametrize("style", STYLES)
async def test_share_grants_a_session_script_access(rt: Runtime, style: str) -> None:
    """A session script cannot read another session's artifact until it is shared."""
    source, expected = SCENARIOS["Artifact.share"]
    owner = await rt.sessions.create()
    reader = await rt.sessions.create()
    await rt.artifacts.store(owner, "secret", b"s3cret", type="tool_result")
    assert await run(rt, PROBE, style, session_id=reader, args=[owner]) == ["AccessDenied"]
    kind, owner, reader = await run(rt, source, style)
    assert [kind] == expected
    assert await run(rt, READ, style, session_id=reader, args=[owner]) == ["s3cret"]


@pytest.mark.parametrize("style", STYLES)
async def test_revoke_takes_access_back(rt: Runtime, style: str) -> None:
    """After revoke, the grantee's session script is denied again."""
    owner, reader = await run(rt, SCENARIOS["Artifact.revoke"][0], style)
    assert await run(rt, PROBE, style, session_id=reader, args=[owner]) == ["AccessDenied"]


@pytest.mark.parametrize("style", STYLES)
async def test_audit_log_records_grantee_reads(rt: Runtime, style: str) -> None:
    """A grantee's read and a stranger's refusal are both in the owner's audit log."""
    owner, reader = await run(rt, SCENARIOS["Artifact.auditLog"][0], style)
    stranger = await rt.sessions.create()
    await run(rt, READ, style, session_id=reader, args=[owner])
    with pytest.raises(AccessDeniedError):
        await run(rt, READ, style, session_id=stranger, args=[owner])
    entries = (await run(rt, AUDIT, style, args=[owner]))[0]
    assert [reader, "read", True, "string"] in entries
    assert [stranger, "read", False, "string"] in entries


@pytest.mark.parametrize("style", STYLES)
async def test_save_and_load_survive_a_restart(tmp_path: Path, style: str) -> None:
    """A saved session is read back and made live by load after the runtime restarts."""
    async with open_runtime(tmp_path / "data") as first:
        [sid] = await run(
            first, "local id = Session.create({name = 'kept'}) Session.save(id) return id", style
        )
        await run(first, "Session.setState(ARGS[1], 'k', {1, 2})", style, args=[sid])
    async with open_runtime(tmp_path / "data") as second:
        loaded = "local id = Session.load(ARGS[1]) return id, Session.getState(id, 'k')"
        assert await run(second, loaded, style, args=[sid]) == [sid, [1, 2]]
        assert await run(second, "return Session.get(ARGS[1]).name", style, args=[sid]) == ["kept"]


@pytest.mark.parametrize("style", STYLES)
async def test_state_in_a_session_script_is_its_variables(rt: Runtime, style: str) -> None:
    """In a session script State reads and writes that session's variables."""
    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "seed", 7)
    script = "State.set('doubled', State.get('seed') * 2) return State.list()"
    [keys] = await run(rt, script, style, session_id=sid)
    assert sorted(keys) == ["doubled", "seed"]
    assert await rt.sessions.get_state(sid, "doubled") == 14


def spec_functions() -> set[str]:
    """Every function the contract names, as ``Global.camelName``."""
    text = SPEC.read_text()
    found: set[str] = set()
    for global_name in ("Session", "Artifact"):
        section = text.split(f"## {global_name}\n", 1)[1].split("\n## ", 1)[0]
        for row in re.findall(r"^\| (.*?) \|", section, re.M):
            found |= {f"{global_name}.{name}" for name in re.findall(r"`(\w+)\(", row)}
    state = text.split("## State\n", 1)[1].split("\n## ", 1)[0]
    found |= {f"State.{name}" for name in re.findall(r"`State\.(\w+)\(", state)}
    json = text.split("## JSON\n", 1)[1]
    found |= {f"JSON.{name}" for name in re.findall(r"`JSON\.(\w+)\(", json)}
    return found


def test_every_spec_function_is_exposed_and_tested() -> None:
    """Each function of the contract exists in both styles and is called by a scenario."""
    spec = spec_functions()
    assert len(spec) == 23 + 10 + 4 + 4
    exposed = {f"{g}.{name}" for g, name, _ in api_names()}
    for function in spec - {f"JSON.{n}" for n in ("encode", "stringify", "decode", "parse")}:
        global_name, name = function.split(".")
        snake = re.sub(r"[A-Z]", lambda c: "_" + c.group().lower(), name)
        assert {function, f"{global_name}.{snake}"} <= exposed, function
    called = "\n".join([source for source, _ in SCENARIOS.values()] + [PROBE, READ, AUDIT])
    for function in spec:
        assert re.search(rf"\b{re.escape(function)}\(", called), function
