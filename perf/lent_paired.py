"""Lent turns measured in pairs: a session's set_state and get_state with lent turns and with
every turn queued, in one process, in 20 alternating blocks of 500 operations (docs/runtime.md).

Run (from the repository root)::

    python perf/lent_paired.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from satchel import open_runtime
from satchel.actors.sessions import _session
from satchel.runtime import Lending

REAL = _session.SessionActor.lending


def never(self: Any, message: Any) -> Lending:
    return Lending.NO


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        await pairs(Path(folder) / "data")


async def pairs(folder: Path) -> None:
    async with open_runtime(folder) as rt:
        sid = await rt.sessions.create()
        res: dict[tuple[str, bool], list[float]] = {
            (op, lent): [] for op in ("set", "get") for lent in (True, False)
        }
        for i in range(300):
            await rt.sessions.set_state(sid, "step", {"n": i})
        for _ in range(20):
            for lent in (True, False):
                _session.SessionActor.lending = REAL if lent else never
                t = time.perf_counter()
                for i in range(500):
                    await rt.sessions.set_state(sid, "step", {"n": i})
                res[("set", lent)].append((time.perf_counter() - t) / 500 * 1e6)
                t = time.perf_counter()
                for _ in range(500):
                    await rt.sessions.get_state(sid, "step")
                res[("get", lent)].append((time.perf_counter() - t) / 500 * 1e6)
        for (op, lent), times in res.items():
            print(f"{op}_state {'lent' if lent else 'queued'}: {statistics.median(times):.1f} µs")


if __name__ == "__main__":
    trio.run(main)
