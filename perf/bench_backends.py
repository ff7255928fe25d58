"""pyperf benchmarks: the same operations with the runtime opened in a Trio loop and in an
asyncio loop, side by side in one run (RocksDB, process durability).

Each operation runs ``loops`` times inside one open runtime; the runtime is opened with
``anyio.run(..., backend=...)``, so the code is the same on both loops:

* ``session create``: ``rt.sessions.create`` with a name, two tags and small metadata;
* ``set_state``: one variable of a live session;
* ``get_state``: the same variable read back;
* ``artifact store 1 KiB``: a new version of one name, unique JSON-like content each time;
* ``artifact get 1 KiB``: the latest version of that name, content verified.

Also ``set_state [sync]`` and ``get_state [sync]``: the same calls through ``satchel.sync``
(its loop run in the calling thread for each call), against the Trio rows.

Run (from the repository root)::

    python perf/bench_backends.py -o perf/backends.json
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pyperf

import satchel.sync
from satchel import Runtime, SessionHandle, open_runtime

BACKENDS = ("trio", "asyncio")
METADATA = {"owner": "bench", "model": "m-1", "budget": {"tokens": 4000}}


def _kib(i: int) -> bytes:
    """About 1 KiB of JSON-like text, unique per ``i``."""
    rows = [
        {"step": i, "tool": "search", "score": i * 0.37 + n, "text": "result " * 6}
        for n in range(9)
    ]
    return json.dumps(rows).encode()[:1024]


Op = Callable[[Runtime, SessionHandle, int], Awaitable[Any]]


async def _create(rt: Runtime, _: SessionHandle, i: int) -> Any:
    return await rt.sessions.create(name=f"s{i}", tags=["agent", "bench"], metadata=METADATA)


async def _set(_: Runtime, session: SessionHandle, i: int) -> Any:
    return await session.set_state("k", {"step": i, "note": "x" * 40})


async def _get(_: Runtime, session: SessionHandle, i: int) -> Any:
    return await session.get_state("k")


async def _store(_: Runtime, session: SessionHandle, i: int) -> Any:
    return await session.store_artifact("a.json", _kib(i), type="tool_result")


async def _read(_: Runtime, session: SessionHandle, i: int) -> Any:
    return await session.get_artifact("a.json")


OPERATIONS: dict[str, Op] = {
    "session create": _create,
    "set_state": _set,
    "get_state": _get,
    "artifact store 1 KiB": _store,
    "artifact get 1 KiB": _read,
}


def timed(backend: str, op: Op) -> Callable[[int], float]:
    """A pyperf time function running ``op`` ``loops`` times on ``backend``."""

    def bench(loops: int) -> float:
        folder = Path(tempfile.mkdtemp(prefix="satchel-backends-"))

        async def main() -> float:
            async with open_runtime(folder) as rt:
                session = rt.session(await rt.sessions.create())
                await session.set_state("k", 0)
                await session.store_artifact("a.json", _kib(-1), type="tool_result")
                start = time.perf_counter()
                for i in range(loops):
                    await op(rt, session, i)
                return time.perf_counter() - start

        try:
            return float(anyio.run(main, backend=backend))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return bench


def timed_sync(read: bool) -> Callable[[int], float]:
    """A pyperf time function of ``set_state`` (or ``get_state``) through ``satchel.sync``."""

    def bench(loops: int) -> float:
        folder = Path(tempfile.mkdtemp(prefix="satchel-backends-"))
        try:
            with satchel.sync.open_runtime(folder) as rt:
                session = rt.session(rt.sessions.create())
                session.set_state("k", 0)
                start = time.perf_counter()
                if read:
                    for _ in range(loops):
                        session.get_state("k")
                else:
                    for i in range(loops):
                        session.set_state("k", {"step": i, "note": "x" * 40})
                return time.perf_counter() - start
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return bench


def main() -> None:
    runner = pyperf.Runner()
    runner.metadata["description"] = "the runtime on Trio and on asyncio, same operations"
    for name, op in OPERATIONS.items():
        for backend in BACKENDS:
            runner.bench_time_func(f"{name} [{backend}]", timed(backend, op))
    runner.bench_time_func("set_state [sync]", timed_sync(read=False))
    runner.bench_time_func("get_state [sync]", timed_sync(read=True))


if __name__ == "__main__":
    main()
