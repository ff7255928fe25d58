"""The worker pool's figures: what an idle worker costs, and what each attack of the security
tests costs the host (not a pyperf suite: these are sizes and worst cases, not means).

For each attack (the cases of ``tests/test_lua_isolation.py``, run as session scripts under a
one-second wall-time limit) it reports how long the run took to end, the error it ended with,
the host event loop's longest stall during the whole run (a task ticking every 5 ms measures
it), and its longest stall within 100 ms before and 200 ms after the worker was killed.

Run (from the repository root, on a quiet machine)::

    python perf/lua_workers.py                 # prints the table
    python perf/lua_workers.py -o perf/lua_workers.md
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import psutil

from satchel import open_runtime
from satchel.scripting import ScriptLimits, ScriptWorkers, _process

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.test_lua_isolation import ATTACKS

LIMITS = ScriptLimits(max_seconds=1)


async def idle_workers() -> list[tuple[int, int]]:
    """RSS and USS (KiB) of each of two idle, prepared workers."""
    async with open_runtime(store="memory", script_workers=ScriptWorkers(spares=2)) as rt:
        await rt.script_workers.wait_ready()
        await anyio.sleep(0.5)
        found = []
        for worker in rt.script_workers._spares:
            info = psutil.Process(worker.pid).memory_full_info()
            found.append((info.rss >> 10, info.uss >> 10))
        return found


async def attack(folder: Path, source: str) -> dict[str, Any]:
    """One attack's figures."""
    ticks: list[float] = []
    kills: list[float] = []
    killing = _process.WorkerProcess.kill

    def kill(self: _process.WorkerProcess) -> None:
        kills.append(time.monotonic())
        killing(self)

    _process.WorkerProcess.kill = kill  # type: ignore[method-assign]
    try:
        workers = ScriptWorkers(spares=1, prestart=True)
        async with open_runtime(folder, script_workers=workers) as rt:
            await rt.script_workers.wait_ready()
            sid = await rt.sessions.create()

            async def tick() -> None:
                while True:
                    ticks.append(time.monotonic())
                    await anyio.sleep(0.005)

            async with anyio.create_task_group() as group:
                group.start_soon(tick)
                await anyio.sleep(0.05)
                started = time.monotonic()
                try:
                    await rt.run_lua(source, session_id=sid, limits=LIMITS, output=lambda _: None)
                    ended = "returned"
                except Exception as error:
                    ended = f"{type(error).__name__}: {str(error)[:60]}"
                elapsed = time.monotonic() - started
                await anyio.sleep(0.3)
                group.cancel_scope.cancel()
    finally:
        _process.WorkerProcess.kill = killing  # type: ignore[method-assign]
    gaps = [(b - a, a) for a, b in itertools.pairwise(ticks) if a >= started - 0.01]
    near = [g for g, at in gaps if kills and kills[0] - 0.1 <= at <= kills[0] + 0.2]
    return {
        "elapsed": elapsed,
        "ended": ended,
        "stall": max(g for g, _ in gaps) - 0.005,
        "kill_stall": (max(near) - 0.005) if near else None,
    }


async def main(out: Path | None) -> None:
    lines = [
        "## Script workers (`python perf/lua_workers.py`)",
        "",
        f"On {time.strftime('%Y-%m-%d %H:%M')}, load {psutil.getloadavg()[0]:.2f} before the run.",
        "",
    ]
    for rss, uss in await idle_workers():
        lines.append(
            f"- an idle, prepared worker: RSS {rss / 1024:.1f} MiB, USS {uss / 1024:.1f} MiB"
        )
    lines += [
        "",
        "| attack (1 s limit) | ended after | with | host loop's longest stall | around the kill |",
        "|---|---:|---|---:|---:|",
    ]
    for name, (source, _, _) in ATTACKS.items():
        folder = Path(tempfile.mkdtemp(prefix="satchel-attack-"))
        try:
            got = await attack(folder, source)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        kill = "no kill" if got["kill_stall"] is None else f"{got['kill_stall'] * 1000:.1f} ms"
        lines.append(
            f"| {name} | {got['elapsed']:.2f} s | {got['ended']} | "
            f"{got['stall'] * 1000:.1f} ms | {kill} |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if out is None:
        print(text)
    else:
        await anyio.Path(out).write_text(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=None)
    anyio.run(main, parser.parse_args().output, backend="trio")
