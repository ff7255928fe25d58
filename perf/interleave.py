"""Interleaved rounds: every contender of a workload open at once, taking turns.

Measuring one system after another lets a drift of the machine (another process waking, the
page cache filling, the CPU's clock) fall on one of them only. Here all contenders are open
together, and each round runs every contender's ``ops`` operations, in an order that rotates
from round to round; a contender's figure is the median over rounds of its time per
operation. The first round warms up and is not counted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

Op = Callable[[int], Awaitable[Any]]


async def interleaved(openers: Sequence[Callable[[], Any]], ops: int, repeats: int) -> list[float]:
    """Seconds per operation of each opener's ``op``, in the openers' order.

    Each opener is an async context manager factory yielding ``op(i)``; ``i`` counts every
    call of that contender, so content made from it is never repeated. An ``op`` with a
    ``prepare(indexes)`` attribute gets it called before each round's clock starts, to make
    the content of that round's operations.
    """
    async with AsyncExitStack() as stack:
        calls: list[Op] = [await stack.enter_async_context(open_()) for open_ in openers]
        counters = [0] * len(calls)
        per_op: list[list[float]] = [[] for _ in calls]
        for r in range(repeats + 1):
            shift = r % len(calls)
            for n in list(range(shift, len(calls))) + list(range(shift)):
                call, base = calls[n], counters[n]
                prepare = getattr(call, "prepare", None)
                if prepare is not None:  # content made before the clock runs
                    prepare(range(base, base + ops))
                started = time.perf_counter()
                for i in range(base, base + ops):
                    await call(i)
                elapsed = time.perf_counter() - started
                counters[n] = base + ops
                if r:
                    per_op[n].append(elapsed / ops)
        return [statistics.median(times) for times in per_op]


async def concurrent_rounds(
    open_: Callable[[], Any], writers: int, ops: int, repeats: int
) -> float:
    """Seconds per operation, amortised, of ``writers`` tasks each calling its own ``op``
    ``ops`` times at once (``open_`` yields ``make(w)`` -> ``op``); median of rounds."""
    import anyio

    async with open_() as make:
        ops_of = [await make(w) for w in range(writers)]
        rounds = []
        for r in range(repeats + 1):

            async def run(op: Op, base: int) -> None:
                for i in range(base, base + ops):
                    await op(i)

            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for op in ops_of:
                    group.start_soon(run, op, r * ops)
            if r:
                rounds.append((time.perf_counter() - started) / (ops * writers))
        return statistics.median(rounds)
