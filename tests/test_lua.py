"""Lua scripting: the bridge, the API from Lua, session scripts, the sandbox's limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from satchel import (
    AccessDeniedError,
    Runtime,
    ScriptError,
    ScriptLimitExceededError,
    SessionNotFoundError,
)
from satchel._cli import main
from satchel.scripting import LuaState, ScriptLimits

EXAMPLES = Path(__file__).parent.parent / "examples" / "lua"
TIGHT = ScriptLimits(max_memory=16 << 20, max_instructions=2_000_000, max_seconds=5)


async def lua(rt: Runtime, source: str, **options: Any) -> list[Any]:
    """Run a host script, collecting nothing it prints."""
    return await rt.run_lua(source, output=lambda line: None, **options)


async def test_values_cross_both_ways(rt: Runtime) -> None:
    """Nested tables, empty tables, integers, floats and binary content keep their shape."""
    results = await lua(
        rt,
        """
        local id = Session.create({name = "v", metadata = {n = {1, 2, {deep = true}}, e = {}}})
        Session.setState(id, "x", {count = 3, ratio = 0.5, list = {}})
        local back = Session.getState(id, "x")
        local blob = "a\\0b\\255"
        local ref = Artifact.store(id, "tool_result", "bin", blob)
        local got = Artifact.get(id, ref)
        return math.type(back.count), #back.list, got.content == blob, Session.get(id).metadata
        """,
    )
    assert results == ["integer", 0, True, {"n": [1, 2, {"deep": True}], "e": []}]


async def test_errors_carry_their_kind(rt: Runtime) -> None:
    """API errors are Lua errors starting with the kind, catchable by pcall; uncaught, they
    raise their Python class with the Lua traceback; a script's own error is ScriptError."""
    caught = await lua(
        rt,
        "local ok, e = pcall(Session.get, '00000000-0000-4000-8000-000000000000')"
        " return ok, string.find(e, '^SessionNotFound') ~= nil",
    )
    assert caught == [False, True]
    with pytest.raises(SessionNotFoundError) as raised:
        await lua(rt, "Session.get('00000000-0000-4000-8000-000000000000')")
    assert "stack traceback" in raised.value.lua_traceback  # type: ignore[attr-defined]
    with pytest.raises(ScriptError, match="boom"):
        await lua(rt, "local function f() error('boom') end f()")
    with pytest.raises(ScriptError, match="syntax error"):
        await lua(rt, "this is not lua")


async def test_both_naming_styles(rt: Runtime) -> None:
    """Every function answers to its camelCase and snake_case name."""
    results = await lua(
        rt,
        """
        local id = Session.create({})
        Session.set_state(id, "k", 1)
        Session.setCurrent(id)
        return Session.getState(id, "k"), Session.get_current() == id,
          type(Session.getReplayMetadata) == "function", type(Artifact.audit_log) == "function"
        """,
    )
    assert results == [1, True, True, True]


async def test_host_state_persists(rt: Runtime) -> None:
    """State in host scripts is runtime-wide: a later script reads what an earlier one set."""
    await lua(rt, "State.set('seen', {count = 2})")
    assert await lua(rt, "return State.get('seen').count, State.list()") == [2, ["seen"]]
    await lua(rt, "State.set('seen', nil)")
    assert await lua(rt, "return State.get('seen')") == [None]


async def test_session_scripts_run_in_their_actor(rt: Runtime) -> None:
    """A session script keeps its globals between runs, sees its own session as current,
    writes its own state inline, and cannot reach another session."""
    sid = await rt.sessions.create(name="owner")
    other = await rt.sessions.create(name="other")
    first = await lua(
        rt, "counter = (counter or 0) + 1 State.set('k', 'v') return counter", session_id=sid
    )
    second = await lua(
        rt, "counter = (counter or 0) + 1 return counter, Session.getCurrent()", session_id=sid
    )
    assert first == [1] and second == [2, sid]
    assert await rt.sessions.get_state(sid, "k") == "v"
    with pytest.raises(AccessDeniedError):
        await lua(rt, f"return Session.getState('{other}', 'k')", session_id=sid)
    child = await lua(
        rt,
        "local c = Session.create({name = 'child'}) Session.setState(c, 'a', 1) return c",
        session_id=sid,
    )
    assert (await rt.sessions.get(child[0])).parent_session_id == sid


SANDBOXED = [
    "return io",
    "return debug",
    "return package",
    "return require",
    "return dofile",
    "return loadfile",
    "return os.execute",
    "return os.getenv",
    "return string.dump",
    "return python",
]


@pytest.mark.parametrize("source", SANDBOXED)
async def test_removed_libraries_are_gone(rt: Runtime, source: str) -> None:
    """What the sandbox removes is nil."""
    assert await lua(rt, source) == [None]


async def test_sandbox_tricks_fail(rt: Runtime) -> None:
    """Bytecode, the string metatable and collectgarbage tuning are out of reach."""
    assert await lua(rt, "return getmetatable('')") == [False]
    assert (await lua(rt, "return load(string.char(27) .. 'LuaT')"))[0] is None
    with pytest.raises(ScriptError, match="not allowed"):
        await lua(rt, "collectgarbage('stop')")
    with pytest.raises(ScriptError, match="__gc"):  # finalizers would run unhooked
        await lua(rt, "setmetatable({}, {__gc = function() while true do end end})")


async def test_no_python_object_reaches_a_script(rt: Runtime) -> None:
    """A host function's failure reaches the script as a message, never as a Python object
    (whose shared metatable would let it replace how host functions are called)."""
    source = "local ok, e = pcall(JSON.decode, string.rep('[', 100000)) return ok, type(e)"
    assert await lua(rt, source) == [False, "string"]
    source = "local t = {} t[1] = t local ok, e = pcall(JSON.encode, t) return ok, type(e)"
    assert await lua(rt, source) == [False, "string"]


def test_python_objects_metatable_is_out_of_reach() -> None:
    """Were a Python object handed to a script, its metatable reads as nothing there, and as
    protected in the whole state."""
    state = LuaState(ScriptLimits())
    state.env.obj = len
    script = b"return getmetatable(obj)"
    run = state.lua.eval("function(env, s) return load(s, 'x', 't', env)() end")
    assert run(state.env, script) is None
    assert state.lua.eval("function(o) return getmetatable(o) end")(len) is False


BOMBS = {
    "memory in a load reader": "load(function() return string.rep('x', 200 * 2^20) end)",
    "table.move": "table.move({}, 1, 1e9, 1, {})",
    "loop": "while true do end",
    "loop in pcall": "while true do pcall(function() while true do end end) end",
    "loop in coroutine": "coroutine.wrap(function() while true do end end)()",
    "loop in error handler": "xpcall(error, function() while true do end end)",
    "string.rep": "local s = string.rep('x', 1e9)",
    "string.rep in pcall": "while true do pcall(string.rep, 'x', 1e9) end",
    "deep recursion": "local function f() return f() + 1 end pcall(f)",
    "table growth": "local t = {} while true do t[#t + 1] = {} end",
    "pattern": "return string.find(string.rep('a', 400), 'a*a*a*a*a*a*a*b')",
    "pattern method": "return (string.rep('a', 400)):match('a*a*a*a*a*a*a*b')",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
async def test_limits_stop_runs_and_cannot_be_caught(rt: Runtime, name: str) -> None:
    """Every limit raises ScriptLimitExceeded through any pcall, and the next run works."""
    with pytest.raises(ScriptLimitExceededError):
        await lua(rt, BOMBS[name], limits=TIGHT)
    assert await lua(rt, "return 1 + 1", limits=TIGHT) == [2]


async def test_api_calls_before_a_limit_stay(rt: Runtime) -> None:
    """What a script committed before its limit is kept."""
    sid = await rt.sessions.create()
    with pytest.raises(ScriptLimitExceededError):
        await lua(rt, f"Session.setState('{sid}', 'k', 1) while true do end", limits=TIGHT)
    assert await rt.sessions.get_state(sid, "k") == 1


async def test_ordinary_patterns_pass(rt: Runtime) -> None:
    """Common patterns on long subjects are not mistaken for pathological ones."""
    results = await lua(
        rt,
        """
        local text = string.rep("word ", 20000)
        local n = 0
        for w in text:gmatch("%a+") do n = n + 1 end
        local key, value = ("name = value"):match("^(%w+)%s*=%s*(%w+)$")
        return n, key, value, (text:gsub("%s+", "_")):sub(1, 10)
        """,
        limits=TIGHT,
    )
    assert results == [20000, "name", "value", "word_word_"]


def test_cli_runs_the_tour(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`satchel run examples/lua/tour.lua` walks through sessions, artifacts, fork and replay."""
    assert main(["--data", str(tmp_path), "run", str(EXAMPLES / "tour.lua")]) == 0
    out = capsys.readouterr().out
    assert "stored search.json version 1, then version 2" in out
    assert "fork sees plan progress 1 and 0 artifacts" in out
    assert "resuming an active session is refused, as expected: InvalidStateTransition" in out
    assert out.rstrip().endswith("status now: completed")


def test_cli_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An uncaught error prints its kind to stderr and exits non-zero; ARGS holds arguments."""
    script = tmp_path / "s.lua"
    script.write_text("print(ARGS[1], select('#', ...)) Session.get('nope')")
    assert main(["run", "--memory", str(script), "--", "hello"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "hello\t1\n"
    assert captured.err.startswith("InvalidArgument: ")


async def test_session_scripts_store_files_only_from_allowed_folders(
    rt: Runtime, tmp_path: Path
) -> None:
    """A host script may store any file it can read; a session script only under file_roots."""
    outside = tmp_path / "outside.txt"
    outside.write_text("private")
    sid = await rt.sessions.create()
    store = "return Artifact.storeFile(ARGS[1], ARGS[2], 'user_input').name"
    assert await lua(rt, store, args=[sid, str(outside)]) == ["outside.txt"]
    with pytest.raises(AccessDeniedError, match="outside the folders"):
        await lua(rt, store, args=[None, str(outside)], session_id=sid)


async def test_wall_time_limit_reaches_into_a_slow_api_call(
    rt: Runtime, autojump_clock: None
) -> None:
    """A run whose API call outlasts the wall-time limit stops with ScriptLimitExceeded."""

    async def slow(_: Any) -> None:
        await anyio.sleep(60)

    rt.hooks.register("state_changed", slow, deadline_s=600)
    sid = await rt.sessions.create()
    limits = ScriptLimits(max_seconds=5)
    with pytest.raises(ScriptLimitExceededError, match="time limit"):
        await lua(
            rt, "Session.setState(ARGS[1], 'k', 1) return 'unreachable'", args=[sid], limits=limits
        )
    assert await lua(rt, "return 2") == [2]


def test_tracebacks_show_only_the_scripts_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An uncaught error's traceback names the script's functions, not the sandbox's."""
    script = tmp_path / "t.lua"
    script.write_text(
        "local function look(id) local s = Session.get(id) return s end\n"
        "pcall(function() end)\n"
        "look('00000000-0000-4000-8000-000000000000')\n"
    )
    assert main(["run", "--memory", str(script)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("SessionNotFound: ") and err.count("Session not found") == 1
    assert "t.lua:1: in local 'look'" in err and "t.lua:3: in main chunk" in err
    assert "<python>" not in err and "raw_" not in err


async def test_a_session_script_runs_with_its_own_limits(rt: Runtime) -> None:
    """A session's Lua state, kept between runs, applies each run's limits: strict ones after
    a generous first run still stop a loop and a large string."""
    sid = await rt.sessions.create()
    strict = ScriptLimits(max_instructions=100_000, max_seconds=5.0, max_memory=1 << 20)
    generous = ScriptLimits(max_instructions=10**9, max_seconds=600.0)
    await rt.run_lua("return 1", session_id=sid, limits=generous)
    with pytest.raises(ScriptLimitExceededError, match="instruction"):
        await rt.run_lua("for i = 1, 3e7 do end", session_id=sid, limits=strict)
    await rt.run_lua("return 1", session_id=sid, limits=generous)
    with pytest.raises(ScriptLimitExceededError, match="memory"):
        await rt.run_lua("return #string.rep('x', 8 * 2^20)", session_id=sid, limits=strict)
