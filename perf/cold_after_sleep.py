"""How much slower satchel's code runs right after its thread slept (a perf script, not CI).

Times an OpenAI Agents ``add_items`` of one message at ``process`` durability (600 calls,
the median of the last 500) right after nothing, a 120 µs sleep, a 120 µs busy loop, and a
200-byte ``pwrite`` + ``fdatasync``; then, at ``process`` and ``machine`` durability, how the
call's time splits around its store write. On these machines a thread that slept runs its
next few tens of microseconds of Python about twice as slowly, which is most of what a
``machine`` write adds beyond its fsync (needs ``pip install -e '.[openai-agents]'``)::

    python perf/cold_after_sleep.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from satchel import open_runtime
from satchel.integrations.openai_agents import SatchelSession
from satchel.storage._rocks import RocksStore

CALLS, COUNTED, PAUSE_S = 600, 500, 0.00012


def _median_us(values: list[float]) -> float:
    return statistics.median(values[-COUNTED:]) * 1e6


async def after_each(folder: str) -> None:
    fd = os.open(folder + "/floor", os.O_RDWR | os.O_CREAT)
    os.pwrite(fd, bytes(65536), 0)
    os.fsync(fd)

    def spin(_: int) -> None:
        until = time.perf_counter() + PAUSE_S
        while time.perf_counter() < until:
            pass

    def sync(i: int) -> None:
        os.pwrite(fd, b"x" * 200, (i % 64) * 512)
        os.fdatasync(fd)

    before: dict[str, Callable[[int], Any]] = {
        "nothing": lambda _: None,
        "a sleep": lambda _: time.sleep(PAUSE_S),
        "a busy loop": spin,
        "a pwrite + fdatasync": sync,
    }
    async with open_runtime(folder + "/data") as rt:
        session = SatchelSession("cold", rt)
        for name, pause in before.items():
            took = []
            for i in range(CALLS):
                pause(i)
                started = time.perf_counter()
                await session.add_items([{"role": "user", "content": f"message {i}"}])
                took.append(time.perf_counter() - started)
            print(f"add_items after {name}: {_median_us(took):.1f} µs")
    os.close(fd)


async def around_the_write(folder: str, durability: str) -> None:
    marks: dict[str, float] = {}
    write = RocksStore.write

    def timed(self: RocksStore, batch: Any, *, sync: bool | None = None) -> None:
        marks["start"] = time.perf_counter()
        write(self, batch, sync=sync)
        marks["end"] = time.perf_counter()

    RocksStore.write = timed  # type: ignore[method-assign]
    try:
        async with open_runtime(f"{folder}/{durability}", durability=durability) as rt:  # type: ignore[arg-type]
            session = SatchelSession("split", rt)
            parts: dict[str, list[float]] = {"before": [], "write": [], "after": []}
            for i in range(CALLS):
                started = time.perf_counter()
                await session.add_items([{"role": "user", "content": f"message {i}"}])
                ended = time.perf_counter()
                parts["before"].append(marks["start"] - started)
                parts["write"].append(marks["end"] - marks["start"])
                parts["after"].append(ended - marks["end"])
            print(
                f"{durability}: "
                + ", ".join(f"{k} {_median_us(v):.1f} µs" for k, v in parts.items())
            )
    finally:
        RocksStore.write = write  # type: ignore[method-assign]


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        await after_each(folder)
        for durability in ("process", "machine"):
            await around_the_write(folder, durability)


if __name__ == "__main__":
    asyncio.run(main())
