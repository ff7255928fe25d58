"""The core's hot paths, for an A/B of two commits: median µs of ``create``, ``set_state``,
``get_state`` and ``get`` (Trio, process durability, 7 blocks of 300 after 300 to warm up).

Run each side from its own non-editable install, alternating::

    pip install --no-deps --target /tmp/old-site <old checkout>
    pip install --no-deps --target /tmp/new-site .
    PYTHONPATH=/tmp/old-site python perf/ab_core.py
    PYTHONPATH=/tmp/new-site python perf/ab_core.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from satchel import open_runtime

BLOCKS, ROUNDS = 7, 300


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with open_runtime(folder + "/data") as rt:
            sid = await rt.sessions.create()
            ops: dict[str, Callable[[], Awaitable[Any]]] = {
                "create": lambda: rt.sessions.create(name="n"),
                "set_state": lambda: rt.sessions.set_state(sid, "k", 1),
                "get_state": lambda: rt.sessions.get_state(sid, "k"),
                "get": lambda: rt.sessions.get(sid),
            }
            for name, op in ops.items():
                for _ in range(ROUNDS):
                    await op()
                runs = []
                for _ in range(BLOCKS):
                    started = time.perf_counter()
                    for _ in range(ROUNDS):
                        await op()
                    runs.append((time.perf_counter() - started) / ROUNDS * 1e6)
                print(f"{name} {statistics.median(runs):.2f}")


if __name__ == "__main__":
    trio.run(main)
