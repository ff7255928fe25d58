"""What a call for a session that does not exist costs, beside one that does.

Every new conversation starts with one: LangGraph reads a new thread's checkpoint before its
first put, an agent host looks a session up before it creates it. On a local store satchel
answers such an ask after one read of the session's record and counters, with no actor
started for it; before, an actor was started, found nothing and stopped again.

One asyncio process on a RocksDB folder holding ``--sessions`` keyed sessions (built first);
medians of ``--rounds`` rounds of ``--ops`` calls, as time per call:

* ``missing``: ``rt.sessions.get_state`` of a key no session has (SessionNotFoundError);
* ``existing, live``: the same call on sessions whose actors are live;
* ``LangGraph new thread``: ``SatchelSaver.aget_tuple`` of a thread never written (``None``).

Run (from the repository root)::

    python perf/missing_sessions.py [--sessions 100000] [--ops 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable

import satchel
from satchel import open_runtime

Call = Callable[[int], Awaitable[object]]


async def _timed(call: Call, ops: int, start: int) -> float:
    began = time.perf_counter()
    for i in range(start, start + ops):
        await call(i)
    return (time.perf_counter() - began) / ops * 1e6


async def _run(sessions: int, ops: int, rounds: int) -> dict[str, float]:
    from satchel.integrations.langgraph import SatchelSaver

    with tempfile.TemporaryDirectory(prefix="satchel-missing-") as folder:
        async with open_runtime(folder) as rt:
            for i in range(sessions):
                await rt.sessions.create(key=f"s-{i}", app="bench", user="u")
            live = min(ops, sessions)
            saver = SatchelSaver(rt)

            async def missing(i: int) -> object:
                try:
                    return await rt.sessions.get_state(f"missing-{i}", "x")
                except satchel.SessionNotFoundError:
                    return None

            async def existing(i: int) -> object:
                return await rt.sessions.get_state(f"s-{i % live}", "x")

            async def new_thread(i: int) -> object:
                return await saver.aget_tuple({"configurable": {"thread_id": f"new-{i}"}})

            await _timed(existing, live, 0)  # every one of them live before timing
            calls = {
                "missing": missing,
                "existing, live": existing,
                "LangGraph new thread": new_thread,
            }
            timed: dict[str, list[float]] = {name: [] for name in calls}
            for round_ in range(rounds):
                for name, call in calls.items():
                    timed[name].append(await _timed(call, ops, (round_ + 1) * ops))
    return {name: statistics.median(values) for name, values in timed.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    figures = asyncio.run(_run(args.sessions, args.ops, args.rounds))
    print(f"| call ({args.sessions:,} sessions) | median |")
    print("|---|---:|")
    for name, took in figures.items():
        print(f"| {name} | {took:.1f} µs |")


if __name__ == "__main__":
    main()
