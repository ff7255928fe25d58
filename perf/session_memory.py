"""Whether memory comes back: RSS with the runtime open, after 10,000 sessions were created
and touched, and after they were all passivated (a perf script, not CI).

Run (from the repository root)::

    python perf/session_memory.py            # asyncio and Trio, a RocksDB folder each
    python perf/session_memory.py --sessions 10000 --backend asyncio

Each run is a fresh process (so one run's heap does not flatter the next). "start" is the
process's RSS with the runtime open and one session used; each session is then created with a
name and two tags and given one state write (~230 bytes); the sessions are then passivated
and the supervisor left to settle. The figure the target is set on is after / start (<= 1.2).
``arenas`` is CPython's count of small-object arenas (1 MiB each), which a single surviving
object keeps from going back to the system.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import psutil

from satchel import open_runtime


def rss_mib() -> float:
    gc.collect()
    return float(psutil.Process().memory_info().rss) / 2**20


def arenas() -> int | None:
    """CPython's small-object arenas in use now (``sys._debugmallocstats``, which writes
    to the C stderr)."""
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+") as out:
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        for line in out.read().splitlines():
            if "arenas allocated current" in line:
                return int(line.split("=")[1])
    return None


async def one_run(sessions: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        async with open_runtime(Path(folder) / "data") as rt:
            first = await rt.sessions.create()
            await rt.sessions.set_state(first, "k", 1)
            start, start_arenas = rss_mib(), arenas()
            ids = []
            began = time.perf_counter()
            for i in range(sessions):
                sid = await rt.sessions.create(name=f"s{i}", tags=["a", "b"])
                await rt.sessions.set_state(sid, "k", {"n": i, "text": "x" * 200})
                ids.append(sid)
            made_s = time.perf_counter() - began
            peak = rss_mib()
            for sid in ids:
                rt.control.passivate(sid)
            del ids
            supervisor = rt.control.statistics().supervisor
            for _ in range(200):  # until every session went and the heap was given back
                await anyio.sleep(0.01)
                supervisor = rt.control.statistics().supervisor
                # (``heap_trims`` is absent from code older than the trim: an A/B runs both)
                if supervisor.live_actors <= 1 and getattr(supervisor, "heap_trims", 1) > 0:
                    break
            await anyio.sleep(0.1)
            after, after_arenas = rss_mib(), arenas()
            return {
                "start": start,
                "peak": peak,
                "after": after,
                "ratio": after / start,
                "arenas": [start_arenas, after_arenas],
                "live": supervisor.live_actors,
                "heap_trims": getattr(supervisor, "heap_trims", None),
                "create_and_touch_s": made_s,
            }


def _child(backend: str, sessions: int) -> None:
    result = anyio.run(one_run, sessions, backend=backend)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--backend", choices=["asyncio", "trio"], action="append")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    backends = args.backend or ["asyncio", "trio"]
    if args.child:
        _child(backends[0], args.sessions)
        return
    print(f"load average {os.getloadavg()[0]:.2f}; {args.sessions:,} sessions\n")
    print(
        "| host loop | start MiB | peak MiB | after passivation MiB | after / start | "
        "arenas start / after | heap trims | <= 1.2 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")  # fmt: skip
    for backend in backends:
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--backend", backend,
             "--sessions", str(args.sessions)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"| {backend} | {r['start']:.1f} | {r['peak']:.1f} | {r['after']:.1f} | "
            f"{r['ratio']:.2f} | {r['arenas'][0]} / {r['arenas'][1]} | {r['heap_trims']} | "
            f"{'PASS' if r['ratio'] <= 1.2 else '**FAIL**'} |"
        )


if __name__ == "__main__":
    main()
