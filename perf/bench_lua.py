"""pyperf benchmarks of Lua scripting, each beside its floor in the same run.

* ``Session.setState from Lua, host script``: one ``Session.setState(id, key, table)`` call
  from a host script's loop, in the host process (the script is started once per batch of
  calls; its start is spread over the batch). Floor: the same ``rt.sessions.set_state``
  awaited from Python. Target: at most 2x.
* ``Session.setState from Lua, session script``: the same call from a session script, which
  runs in a worker process: each call is a message to the host, answered inline in the
  session actor's turn. Floor: the same call from a host script in the host process (the row
  above). Target: at most 3x.
* ``bridge call (Session.getCurrent)``: a Lua call to the cheapest API function from a host
  script: one coroutine yield, the Python handler, the answer converted back, one resume.
  Floor: the same handler awaited directly from Python. The difference is the bridge's
  per-call overhead.
* ``create a sandboxed Lua state``: ``LuaState`` (lupa runtime with a memory limit, the
  prelude: coroutine driver, limits, sandboxed environment) plus the 74 API functions.
  Floor: a bare ``lupa.LuaRuntime`` with the same memory limit.
* ``first script run in a fresh session``: ``run_lua("return 1", session_id=...)`` on a
  session with no worker yet, with a warm pool (a spare worker is ready: the run takes it and
  its prepared Lua state). Target: at most 5 ms. Floor: the same run again, on the now warm
  worker.

The worker pool's own figures (an idle worker's memory, how long each attack of the security
tests takes to end and how long the host's loop stalls meanwhile) are in
``perf/lua_workers.py``.

Run (from the repository root)::

    python perf/bench_lua.py -o perf/lua.json
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import lupa
import pyperf
import trio

from satchel import Runtime, open_runtime
from satchel.scripting import LuaState, ScriptApi, ScriptLimits, ScriptWorkers, api_names

VALUE = '{n = i, note = "thinking"}'
WORKERS = ScriptWorkers(prestart=True, spares=1)


def _in_runtime(body: Callable[[Runtime, int], Awaitable[float]]) -> Callable[[int], float]:
    """A pyperf time function running ``body(rt, loops)`` in a fresh runtime on RocksDB."""

    def run(loops: int) -> float:
        folder = Path(tempfile.mkdtemp(prefix="satchel-bench-"))

        async def main() -> float:
            async with open_runtime(folder, script_workers=WORKERS) as rt:
                return await body(rt, loops)

        try:
            return trio.run(main)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return run


def _silent(_: str) -> None:
    pass


async def lua_set_state_host(rt: Runtime, loops: int) -> float:
    sid = await rt.sessions.create()
    script = f"for i = 1, ARGS[2] do Session.setState(ARGS[1], 'step', {VALUE}) end"
    await rt.run_lua(script, args=[sid, 1], output=_silent)
    await rt.script_workers.wait_ready()  # no worker starting meanwhile (as in the next row)
    start = time.perf_counter()
    await rt.run_lua(script, args=[sid, loops], output=_silent)
    return time.perf_counter() - start


async def lua_set_state_session(rt: Runtime, loops: int) -> float:
    # The floor of this row is ``lua_set_state_host``: the same calls, in the host process.
    sid = await rt.sessions.create()
    script = f"for i = 1, ARGS[1] do State.set('step', {VALUE}) end"
    await rt.run_lua(script, args=[1], session_id=sid, output=_silent)
    # The spare that replaces the worker this session took is started before the clock
    # starts: a worker starting takes a core for about 50 ms.
    await rt.script_workers.wait_ready()
    start = time.perf_counter()
    await rt.run_lua(script, args=[loops], session_id=sid, output=_silent)
    return time.perf_counter() - start


async def python_set_state(rt: Runtime, loops: int) -> float:
    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "step", {"n": 0, "note": "thinking"})
    start = time.perf_counter()
    for i in range(1, loops + 1):
        await rt.sessions.set_state(sid, "step", {"n": i, "note": "thinking"})
    return time.perf_counter() - start


async def bridge_call(rt: Runtime, loops: int) -> float:
    script = "local f = Session.getCurrent for i = 1, ARGS[1] do f() end"
    start = time.perf_counter()
    await rt.run_lua(script, args=[loops], output=_silent)
    return time.perf_counter() - start


async def direct_call(rt: Runtime, loops: int) -> float:
    from satchel.actors.sessions._host_state import HostState

    api = ScriptApi(rt.sessions, rt.artifacts, HostState(rt.store.kv))
    start = time.perf_counter()
    for _ in range(loops):
        await api.dispatch("Session.getCurrent", ())
    return time.perf_counter() - start


def create_state(loops: int) -> float:
    limits = ScriptLimits()
    names = api_names()
    start = time.perf_counter()
    for _ in range(loops):
        LuaState(limits).define(names)
    return time.perf_counter() - start


def create_bare(loops: int) -> float:
    memory = ScriptLimits().max_memory
    start = time.perf_counter()
    for _ in range(loops):
        lupa.LuaRuntime(encoding=None, max_memory=memory)
    return time.perf_counter() - start


def _session_runs(warm: bool) -> Callable[[Runtime, int], Awaitable[float]]:
    async def first_runs(rt: Runtime, loops: int) -> float:
        total = 0.0
        for _ in range(loops):
            sid = await rt.sessions.create()
            await rt.script_workers.wait_ready()  # a warm pool
            start = time.perf_counter()
            await rt.run_lua("return 1", session_id=sid, output=_silent)
            total += time.perf_counter() - start
            await rt.control.stop(sid)  # its worker goes; the pool starts another
        return total

    async def warm_runs(rt: Runtime, loops: int) -> float:
        sid = await rt.sessions.create()
        await rt.run_lua("return 1", session_id=sid, output=_silent)
        await rt.script_workers.wait_ready()
        start = time.perf_counter()
        for _ in range(loops):
            await rt.run_lua("return 1", session_id=sid, output=_silent)
        return time.perf_counter() - start

    return warm_runs if warm else first_runs


def main() -> None:
    runner = pyperf.Runner()
    runner.metadata["description"] = "satchel Lua scripting"
    runner.bench_time_func(
        "Session.setState from Lua, host script", _in_runtime(lua_set_state_host)
    )
    runner.bench_time_func(
        "Session.setState from Lua, host script [floor]", _in_runtime(python_set_state)
    )
    runner.bench_time_func(
        "Session.setState from Lua, session script", _in_runtime(lua_set_state_session)
    )
    runner.bench_time_func(
        "Session.setState from Lua, session script [floor]", _in_runtime(lua_set_state_host)
    )
    runner.bench_time_func("bridge call (Session.getCurrent)", _in_runtime(bridge_call))
    runner.bench_time_func("bridge call (Session.getCurrent) [floor]", _in_runtime(direct_call))
    runner.bench_time_func("create a sandboxed Lua state", create_state)
    runner.bench_time_func("create a sandboxed Lua state [floor]", create_bare)
    runner.bench_time_func(
        "first script run in a fresh session", _in_runtime(_session_runs(warm=False))
    )
    runner.bench_time_func(
        "first script run in a fresh session [floor]", _in_runtime(_session_runs(warm=True))
    )


if __name__ == "__main__":
    main()
