"""The update-time query over 100,000 sessions, timed in one process (a perf script, not CI).

Builds (once) the folder of ``perf/bench_sessions.py`` in ``$SATCHEL_BENCH_DATA`` (default
``/tmp/satchel-bench-100k``) with the code it runs, then times its query "status by update
time, newest first" (``limit=50``) 40 times after one warm-up. Run with another checkout on
``PYTHONPATH`` and another ``SATCHEL_BENCH_DATA`` to compare codes, each on its own folder::

    python perf/query_by_update.py
"""

from __future__ import annotations

import statistics
import time

import trio
from bench_sessions import QUERIES, ensure_big_folder

from satchel import open_runtime


async def main() -> None:
    started = time.perf_counter()
    folder = ensure_big_folder()
    print(f"folder {folder} ready in {time.perf_counter() - started:.1f} s")
    query = dict(QUERIES["status by update time, newest first"], limit=50)
    async with open_runtime(folder) as rt:
        await rt.sessions.list(**query)
        took = []
        for _ in range(40):
            started = time.perf_counter()
            await rt.sessions.list(**query)
            took.append(time.perf_counter() - started)
    print(
        f"median {statistics.median(took) * 1e3:.2f} ms, fastest {min(took) * 1e3:.2f} ms "
        "(40 queries)"
    )


if __name__ == "__main__":
    trio.run(main)
