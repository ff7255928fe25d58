"""pyperf benchmarks of hooks, replay and fork (issue 6), each beside its floor in the same run.

* ``session create, built-in hooks`` / ``set_state, built-in hooks``: the operation with the
  built-in logging and metrics hooks on (``open_runtime(builtin_hooks=True)``). Floor: the same
  operation with no hook registered. Target: at most 1.15x.
* ``simulate replay, 10,000 entries``: ``rt.sessions.replay`` of a session whose journal holds
  10,000 entries (variable writes). Floor: scanning and decoding the same journal entries.
  Target: at most 0.2 s (50,000 entries/s).
* ``fork, 1,000 artifacts``: ``rt.sessions.fork`` of a session holding 1,000 artifacts (each
  with tags and a custom key), the mean of ten forks a loop (the garbage collector's full
  collections fall in some of them). Target: at most 50 ms; no blob is copied.

Run (from the repository root)::

    python perf/bench_hooks.py -o perf/hooks.json
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pyperf
import trio

from satchel import open_runtime
from satchel.actors.sessions import _session_layout as layout

ENTRIES = 10_000
ARTIFACTS = 1_000
#: Forks timed in each loop: a fork makes tens of thousands of objects, so a full collection
#: of Python's garbage collector falls in about one fork in three (30-60 ms on a 60 ms fork);
#: a value of one or two forks measured where it fell more than the fork.
FORKS_PER_LOOP = 10


def _fresh() -> Path:
    return Path(tempfile.mkdtemp(prefix="satchel-bench-"))


def _create(builtin: bool) -> object:
    def run(loops: int) -> float:
        folder = _fresh()

        async def main() -> float:
            async with open_runtime(folder, builtin_hooks=builtin) as rt:
                start = time.perf_counter()
                for i in range(loops):
                    await rt.sessions.create(name=f"session {i}", tags=["agent", "bench"])
                return time.perf_counter() - start

        try:
            return trio.run(main)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return run


def _set_state(builtin: bool) -> object:
    def run(loops: int) -> float:
        folder = _fresh()

        async def main() -> float:
            async with open_runtime(folder, builtin_hooks=builtin) as rt:
                session = rt.session(await rt.sessions.create())
                await session.set_state("step", {"n": 0, "note": "warm"})
                start = time.perf_counter()
                for i in range(loops):
                    await session.set_state("step", {"n": i, "note": "thinking"})
                return time.perf_counter() - start

        try:
            return trio.run(main)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return run


async def _journal(rt: object) -> str:
    sessions = rt.sessions  # type: ignore[attr-defined]
    sid: str = await sessions.create()
    handle = rt.session(sid)  # type: ignore[attr-defined]
    for i in range(ENTRIES - 1):
        await handle.set_state(f"k{i % 50}", {"i": i, "note": "step"})
    return sid


def bench_replay(loops: int) -> float:
    folder = _fresh()

    async def main() -> float:
        async with open_runtime(folder) as rt:
            sid = await _journal(rt)
            start = time.perf_counter()
            for _ in range(loops):
                result = await rt.sessions.replay(sid)
                assert result.events_replayed == ENTRIES
            return time.perf_counter() - start

    try:
        return trio.run(main)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_replay_floor(loops: int) -> float:
    folder = _fresh()

    async def main() -> float:
        async with open_runtime(folder) as rt:
            sid = layout.bytes_of(await _journal(rt))
            prefix = layout.journal_prefix(sid)
            kv = rt.store.kv
            start = time.perf_counter()
            for _ in range(loops):
                count = 0
                for _key, value in kv.scan(prefix, prefix + b"\xff" * 9):
                    layout.decode_entry(value)
                    count += 1
                assert count == ENTRIES
            return time.perf_counter() - start

    try:
        return trio.run(main)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_fork(loops: int) -> float:
    folder = _fresh()

    async def main() -> float:
        async with open_runtime(folder) as rt:
            sid = await rt.sessions.create()
            for i in range(ARTIFACTS):
                await rt.artifacts.store(
                    sid,
                    f"r{i}.json",
                    b"%d" % i,
                    type="tool_result",
                    metadata={"tags": ["t"], "team": "a"},
                )
            total = 0.0
            for _ in range(loops * FORKS_PER_LOOP):
                start = time.perf_counter()
                await rt.sessions.fork(sid)
                total += time.perf_counter() - start
            return total

    try:
        return trio.run(main)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    runner = pyperf.Runner()
    runner.metadata["description"] = "satchel hooks, replay and fork"
    runner.bench_time_func("session create, built-in hooks", _create(True))
    runner.bench_time_func("session create, built-in hooks [floor]", _create(False))
    runner.bench_time_func("set_state, built-in hooks", _set_state(True))
    runner.bench_time_func("set_state, built-in hooks [floor]", _set_state(False))
    runner.bench_time_func("simulate replay, 10,000 entries", bench_replay)
    runner.bench_time_func("simulate replay, 10,000 entries [floor]", bench_replay_floor)
    runner.bench_time_func("fork, 1,000 artifacts", bench_fork, inner_loops=FORKS_PER_LOOP)


if __name__ == "__main__":
    main()
