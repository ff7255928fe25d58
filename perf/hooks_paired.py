"""Hook overhead measured in pairs: the built-in hooks on and off, in one process, in
alternating blocks.

The pyperf rows of ``bench_hooks.py`` time the two runtimes in separate worker processes run
one after the other, so drift of a shared machine between the two runs lands in the ratio
(1.11x-1.22x across runs for a 4-6 us difference). Here both runtimes are open at once and
every block of operations on one is followed (or preceded, alternately) by the same block on
the other; the figure is the median of the per-pair ratios.

Run (from the repository root)::

    python perf/hooks_paired.py [--pairs 40] [--ops 2000]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import trio

from satchel import Runtime, open_runtime

Operation = Callable[[int], Awaitable[object]]


async def _create_op(rt: Runtime) -> Operation:
    async def create(i: int) -> object:
        return await rt.sessions.create(name=f"session {i}", tags=["agent", "bench"])

    return create


async def _set_state_op(rt: Runtime) -> Operation:
    session = rt.session(await rt.sessions.create())

    async def set_state(i: int) -> object:
        return await session.set_state("step", {"n": i, "note": "thinking"})

    return set_state


async def _pairs(make: Callable[[Runtime], Awaitable[Operation]], pairs: int, ops: int) -> str:
    folders = [tempfile.mkdtemp(prefix="satchel-bench-") for _ in range(2)]
    timed: dict[bool, list[float]] = {False: [], True: []}
    ratios = []
    try:
        async with AsyncExitStack() as stack:
            operations = {}
            for builtin, folder in zip((False, True), folders, strict=True):
                rt = await stack.enter_async_context(open_runtime(folder, builtin_hooks=builtin))
                operations[builtin] = await make(rt)
                for i in range(500):  # warm both before timing
                    await operations[builtin](i)
            for pair in range(pairs):
                took = {}
                for builtin in (False, True) if pair % 2 else (True, False):
                    operation = operations[builtin]
                    start = time.perf_counter()
                    for i in range(ops):
                        await operation(i)
                    took[builtin] = (time.perf_counter() - start) / ops * 1e6
                    timed[builtin].append(took[builtin])
                ratios.append(took[True] / took[False])
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    off, on = statistics.median(timed[False]), statistics.median(timed[True])
    return (
        f"{on:.1f} us | {off:.1f} us | {on - off:+.1f} us | {statistics.median(ratios):.3f}x "
        f"({min(ratios):.3f}-{max(ratios):.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--ops", type=int, default=2000)
    args = parser.parse_args()
    print("| operation | hooks on | hooks off | difference | median paired ratio (range) |")
    print("|---|---|---|---|---|")
    for name, make in (("session create", _create_op), ("set_state", _set_state_op)):
        print(f"| {name} | {trio.run(_pairs, make, args.pairs, args.ops)} |")


if __name__ == "__main__":
    main()
