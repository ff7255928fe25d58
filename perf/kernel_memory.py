"""Memory per idle resident actor: RSS of 100,000 live, idle actors (a perf script, not CI).

Run (from the repository root)::

    python perf/kernel_memory.py > perf/kernel_memory.md

Each actor holds a small state record (a name and two counters, as a session actor's hot
state would); the figure is the RSS growth divided by the number of actors, after a warm-up
set of actors has been created and passivated so that allocator arenas are already grown.
"""

from __future__ import annotations

import gc
import sys
import time
from typing import Any

import psutil
import trio
import trio.lowlevel

from satchel.runtime import Actor, ActorSpec, open_supervisor

ACTORS = 100_000


class Idle(Actor[Any]):
    """Keeps a tiny state and answers pings."""

    __slots__ = ("actor_id", "count")

    def __init__(self, actor_id: str) -> None:
        self.actor_id = actor_id
        self.count = 0

    async def receive(self, message: Any) -> Any:
        self.count += 1
        return self.count


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


async def main() -> None:
    async with open_supervisor(resident_cap=ACTORS + 1) as supervisor:
        supervisor.register(ActorSpec(kind="idle", factory=Idle, idle_timeout=None))
        await trio.lowlevel.checkpoint()
        before = rss()
        start = time.perf_counter()
        for i in range(ACTORS):
            await supervisor.ref("idle", f"a{i:06d}").ask(None)
        elapsed = time.perf_counter() - start
        after = rss()
        live = supervisor.statistics().live_actors
    per_actor = (after - before) / ACTORS
    print("## Memory per idle resident actor (`perf/kernel_memory.py`)")
    print()
    print(f"- {live:,} live idle actors; RSS {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB")
    print(f"- **{per_actor / 1024:.2f} KiB per actor** (target <= 8 KB, i.e. 7.81 KiB)")
    each = elapsed / ACTORS * 1e6
    print(f"- activating them one after another took {elapsed:.2f} s ({each:.1f} µs each)")
    print(f"- python {sys.version.split()[0]}, trio {trio.__version__}")


if __name__ == "__main__":
    trio.run(main)
