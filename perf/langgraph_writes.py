"""A LangGraph step fanning out to many tasks: ``put_writes`` of one small write each, for
7,000 tasks of one checkpoint on ``SatchelSaver``; the time, the data folder's size, and that
every write reads back (needs ``pip install -e '.[langgraph]'``).

Run (from the repository root)::

    python perf/langgraph_writes.py
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time

from langgraph.checkpoint.base import empty_checkpoint

from satchel import open_runtime
from satchel.integrations.langgraph import SatchelSaver

TASKS = 7000


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with open_runtime(folder + "/data") as rt:
            saver = SatchelSaver(rt)
            config: object = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
            config = await saver.aput(config, empty_checkpoint(), {"step": 1}, {})  # type: ignore[arg-type]
            started = time.perf_counter()
            for n in range(TASKS):
                value = os.urandom(64).hex()
                await saver.aput_writes(config, [("ch", value)], f"task-{n}", f"p{n}")  # type: ignore[arg-type]
            elapsed = time.perf_counter() - started
            found = await saver.aget_tuple(config)  # type: ignore[arg-type]
            writes = 0 if found is None else len(found.pending_writes)
        size = _bytes_under(folder)
        print(f"{writes} writes in {elapsed:.2f} s; data folder {size / 1e6:.1f} MB")


def _bytes_under(folder: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(folder)
        for name in names
    )


if __name__ == "__main__":
    asyncio.run(main())
