"""A sandbox fuzz: random programs built from the standard library's C functions, metatables
and patterns, run as session scripts under a one-second limit. Whatever each does, the host's
event loop never stalls for 1.5 s, the run ends within its limit and 1.5 s, and the session
answers afterwards."""

from __future__ import annotations

import time
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from satchel import Runtime, SatchelError, open_runtime
from satchel.scripting import ScriptLimits, ScriptWorkers

LIMITS = ScriptLimits(max_seconds=1, max_output=1 << 16)
SIZES = ["0", "1", "255", "1 << 16", "1 << 20", "(1 << 31) - 2", "1 << 40", "1 << 62", "-1"]
STRINGS = ['"a"', '"ab"', '"\\0"', '"é"', '"%"']
PATTERNS = [
    '"a*"',
    '".-b"',
    '"(a+)+b"',
    '"%w*%d"',
    '"[a-z]*$"',
    '("a?"):rep(30) .. ("a"):rep(30)',
    '("a"):rep(5000) .. "b"',
    '"a*" .. ("a"):rep(100) .. "b"',
    '"%f[%w]%w+"',
    '"(.-)%1"',
]
TABLES = [
    "{1, 2, 3}",
    "setmetatable({}, {__len = function() return {n} end})",
    "setmetatable({}, {__len = function() return {n} end, __index = rawlen})",
    "setmetatable({}, {__index = function(t, k) return k end, __len = function() return {n} end})",
]
ATOMS = [
    "local _ = string.rep({s}, {n})",
    "local _ = ({s}):rep(({n}) % 4096):find({p})",
    "local _ = string.match(({s}):rep(({n}) % 100000), {p})",
    "local _ = string.gsub(({s}):rep(({n}) % 100000), {p}, '%%0%%0')",
    "for _ in string.gmatch(({s}):rep(({n}) % 100000), {p}) do end",
    "table.insert({t}, 1, true)",
    "table.remove({t}, 1)",
    "table.sort({t}, rawequal)",
    "local _ = table.concat({t})",
    "local _ = select('#', table.unpack({t}))",
    "table.move({t}, 1, {n}, 2)",
    "local _ = utf8.len(({s}):rep(({n}) % 1000000))",
    "local _ = string.format('%99d', {n})",
    "local _ = tostring(setmetatable({{}}, {{__tostring = function() return ({s}):rep({n}) end}}))",
    "local _ = JSON.decode(('['):rep(({n}) % 100000))",
    "local _ = JSON.encode({t})",
    "print(({s}):rep(({n}) % 100000))",
    "collectgarbage()",
    "local _ = load(('x = 1 '):rep(({n}) % 100000))",
    "local t = {{}} for i = 1, {n} do t[i] = ({s}):rep(i) end",
    "coroutine.wrap(function() {inner} end)()",
    "pcall(function() {inner} end)",
    "while true do {inner} end",
]


@st.composite
def programs(draw: st.DrawFn) -> str:
    """A few statements, each an atom with random sizes, strings, patterns and tables."""

    def atom(depth: int) -> str:
        choices = ATOMS if depth < 2 else ATOMS[:-3]
        template = draw(st.sampled_from(choices))
        n = draw(st.sampled_from(SIZES))
        table = draw(st.sampled_from(TABLES)).replace("{n}", n)
        return template.format(
            s=draw(st.sampled_from(STRINGS)),
            n=n,
            p=draw(st.sampled_from(PATTERNS)),
            t=table,
            inner=atom(depth + 1) if "{inner}" in template else "",
        )

    return " ".join(atom(0) for _ in range(draw(st.integers(1, 3))))


def test_random_programs_cannot_stall_or_end_the_host() -> None:
    """Twenty random programs (new ones each run; a failure names its program) each end in
    time, never stall the host's loop 1.5 s, and leave the session answering."""
    examples: list[str] = []

    @settings(max_examples=20, deadline=None, database=None)
    @given(programs())
    def collect(program: str) -> None:
        examples.append(program)

    collect()
    anyio.run(_run_all, examples, backend="trio")


async def _run_all(examples: list[str]) -> None:
    workers = ScriptWorkers(prestart=True, spares=1)
    async with open_runtime(store="memory", script_workers=workers) as rt:
        sid = await rt.sessions.create()
        for program in examples:
            await _run_one(rt, sid, program)


async def _run_one(rt: Runtime, sid: str, program: str) -> None:
    longest = 0.0

    async def watch_the_loop() -> None:
        nonlocal longest
        last = time.monotonic()
        while True:
            await anyio.sleep(0.01)
            now = time.monotonic()
            longest, last = max(longest, now - last), now

    outcome: Any = None
    async with anyio.create_task_group() as group:
        group.start_soon(watch_the_loop)
        started = time.monotonic()
        try:
            outcome = await rt.run_lua(program, session_id=sid, limits=LIMITS, output=_quiet)
        except SatchelError as error:
            outcome = error
        elapsed = time.monotonic() - started
        group.cancel_scope.cancel()
    assert elapsed < LIMITS.max_seconds + 1.5, (program, elapsed, outcome)
    assert longest < 1.5, (program, longest, outcome)
    assert await rt.run_lua("return 1", session_id=sid) == [1], program


def _quiet(_: str) -> None:
    pass
