"""satchel side by side with its peers, in one process and one run, from asyncio.

Each workload (``perf/peer_work.py`` for satchel, ``perf/peer_systems.py`` for the peers,
``perf/peer_floors.py`` for the floors) runs on every system that can do it:

* a state update of one key (LangGraph ``put`` with one changed channel; ADK ``append_event``
  with a one-key state delta);
* creating a session (LangGraph: the first ``put`` of a new thread; ADK ``create_session``);
* reading a session and its last 100 of 1,000 events (OpenAI Agents SDK ``get_items(100)``;
  ADK ``get_session(num_recent_events=100)``);
* saving and loading artifacts of 1 MiB (JSON-like, and incompressible) and of 1 KiB, and
  listing 10 versions of one (ADK ``FileArtifactService`` and ``InMemoryArtifactService``).

Content is JSON-like and new for every operation; every system names things the same way.
All contenders of a workload are open at once and take turns in rounds whose order rotates
(``perf/interleave.py``); figures are medians over rounds of the time per operation after a
warm-up round. Beside them, floors in the same rounds: a bare ``pwrite`` + ``fdatasync``, a
bare file write (and write + ``fsync``) of the same bytes, a bare file read.

Each SQLite peer's durability is read from its own connection (``synchronous`` FULL or EXTRA:
an fsync per commit, ``machine``; less: ``process``); ``FileArtifactService`` never syncs
(``process``); in-memory peers keep nothing. satchel runs at both durabilities and is compared
with the best peer at the same durability. The process calls ``satchel.tune_allocator()``
first, as satchel's CLI and server do (process-wide, so for the peers too).

Needs the ``peers`` extra (``pip install -e '.[peers]'``). Writes ``perf/peers_notes.md``
(``perf/report.py --notes`` puts it in RESULTS.md). Run (from the repository root)::

    python perf/bench_peers.py [--ops 200] [--repeats 5] [--skip-adapters]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import peer_floors as floors
import peer_systems as peers
import peer_work as work
from interleave import concurrent_rounds, interleaved
from peer_work import KIB, MIB, Contender

from satchel import open_runtime, tune_allocator

NOTES = Path(__file__).with_name("peers_notes.md")
CONCURRENT = 100


# -- helpers shared with bench_adapters.py ----------------------------------------------------


def pragmas(conn: sqlite3.Connection) -> tuple[str, int]:
    """``journal_mode`` and ``synchronous`` of a connection."""
    return peers.pragmas_of(conn)


def durability_of(synchronous: int) -> str:
    """The satchel durability matching a SQLite ``synchronous`` level."""
    return "machine" if synchronous >= 2 else "process"


SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def us(seconds: float) -> str:
    """Seconds as microseconds for the table."""
    return f"{seconds * 1e6:,.0f} µs"


# -- the workloads ----------------------------------------------------------------------------


@dataclass
class Workload:
    """One row of the table: contenders measured in the same interleaved rounds."""

    label: str
    ops: int
    contenders: list[Contender]
    floors: dict[str, Callable[[], Any]] = field(default_factory=dict)
    results: dict[str, float] = field(default_factory=dict)  # "system/durability" -> s/op
    floor_results: dict[str, float] = field(default_factory=dict)


FILES, ADK_MEM = "ADK FileArtifactService", "ADK InMemoryArtifactService"
OA_MEM = 'OpenAI SQLiteSession ":memory:"'
SQLITE = "sqlite"  # durability read from the peer's connection after the run


def satchel_pair(make: Callable[[str], Any]) -> list[Contender]:
    return [Contender("satchel", d, make(d)) for d in ("process", "machine")]


def workloads(ops: int) -> list[Workload]:
    big = max(10, ops // 10)
    sync_floor = {"pwrite + fdatasync": floors.durable_write}

    def artifact_save(label: str, content: work.Content, size: int, n: int) -> Workload:
        return Workload(
            label,
            n,
            [
                *satchel_pair(lambda d: work.satchel_save(d, content, size)),
                Contender(FILES, "process", peers.adk_save("files", content, size)),
                Contender(ADK_MEM, "memory", peers.adk_save("memory", content, size), True),
            ],
            {"file write": floors.file_write(size, sync=False),
             "file write + fsync": floors.file_write(size, sync=True)},
        )  # fmt: skip

    def artifact_load(label: str, size: int, n: int) -> Workload:
        return Workload(
            label,
            n,
            [
                Contender("satchel", "process", work.satchel_load(size)),
                Contender(FILES, "process", peers.adk_load("files", size)),
                Contender(ADK_MEM, "memory", peers.adk_load("memory", size), True),
            ],
            {"file read": floors.file_read(size)},
        )  # fmt: skip

    return [
        Workload(
            "state update, one key",
            ops,
            [
                *satchel_pair(work.satchel_state),
                Contender("LangGraph SqliteSaver", SQLITE, peers.langgraph_state(True)),
                Contender("LangGraph InMemorySaver", "memory", peers.langgraph_state(False), True),
                Contender("ADK SqliteSessionService", SQLITE, peers.adk_state(True)),
                Contender("ADK InMemorySessionService", "memory", peers.adk_state(False), True),
            ],
            sync_floor,
        ),
        Workload(
            "create session",
            ops,
            [
                *satchel_pair(work.satchel_create),
                Contender("LangGraph SqliteSaver", SQLITE, peers.langgraph_create(True)),
                Contender("LangGraph InMemorySaver", "memory", peers.langgraph_create(False), True),
                Contender("ADK SqliteSessionService", SQLITE, peers.adk_create(True)),
                Contender("ADK InMemorySessionService", "memory", peers.adk_create(False), True),
            ],
            sync_floor,
        ),
        Workload(
            "session + last 100 of 1,000 events",
            ops,
            [
                Contender("satchel", "process", work.satchel_recent("process")),
                Contender("OpenAI SQLiteSession", SQLITE, peers.agents_recent(True)),
                Contender(OA_MEM, "memory", peers.agents_recent(False), True),
                Contender("ADK SqliteSessionService", SQLITE, peers.adk_recent(True)),
                Contender("ADK InMemorySessionService", "memory", peers.adk_recent(False), True),
            ],
        ),
        artifact_save("artifact save 1 MiB, JSON-like", work.json_like, MIB, big),
        artifact_save("artifact save 1 MiB, incompressible", work.incompressible, MIB, big),
        artifact_load("artifact load 1 MiB, JSON-like", MIB, big),
        artifact_save("artifact save 1 KiB, JSON-like", work.json_like, KIB, ops),
        artifact_load("artifact load 1 KiB, JSON-like", KIB, ops),
        Workload(
            "list 10 versions",
            ops,
            [
                Contender("satchel", "process", work.satchel_versions()),
                Contender(FILES, "process", peers.adk_versions("files")),
                Contender(ADK_MEM, "memory", peers.adk_versions("memory"), True),
            ],
        ),
    ]  # fmt: skip


def name(c: Contender) -> str:
    return f"{c.system}/{c.durability}"


async def measure(load: Workload, repeats: int) -> None:
    floor_names = list(load.floors)
    openers = [c.open for c in load.contenders] + [load.floors[n] for n in floor_names]
    seconds = await interleaved(openers, load.ops, repeats)
    for c, s in zip(load.contenders, seconds, strict=False):
        load.results[name(c)] = s
    for n, s in zip(floor_names, seconds[len(load.contenders) :], strict=True):
        load.floor_results[n] = s


def satchel_writers(durability: str) -> Callable[[], Any]:
    """``CONCURRENT`` sessions, each with its own writer of ``set_state``."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Any]:
        async with (
            work.folder() as where,
            open_runtime(where / "data", durability=durability) as rt,
        ):  # type: ignore[arg-type]

            async def make(w: int) -> Any:
                sid = await rt.sessions.create(key=f"{work.SESSION}-{w}")

                async def op(i: int) -> None:
                    await rt.sessions.set_state(sid, "step", work.small_value(i))

                return op

            yield make

    return opened


# -- the table --------------------------------------------------------------------------------


def resolved(c: Contender) -> str:
    """The durability a contender ran at, SQLite peers' as read from their connection."""
    if c.durability != SQLITE:
        return c.durability
    found = peers.PRAGMAS.get(c.system)
    return "?" if found is None else durability_of(found[1])


def best(load: Workload, durability: str) -> tuple[str, float] | None:
    found = [
        (c.system, load.results[name(c)])
        for c in load.contenders
        if c.system != "satchel" and resolved(c) == durability
    ]
    return min(found, key=lambda pair: pair[1]) if found else None


def cell(pair: tuple[str, float] | None) -> str:
    return "—" if pair is None else f"{pair[0]} {us(pair[1])}"


def targets(load: Workload, floor_sync: float) -> list[tuple[str, bool]]:
    """The issue's targets for a row: (what, met)."""
    r, f = load.results, load.floor_results
    proc, mach = r.get("satchel/process"), r.get("satchel/machine")
    out: list[tuple[str, bool]] = []
    if load.label in ("state update, one key", "create session"):
        assert proc is not None and mach is not None
        out.append(("process <= 40 µs", proc <= 40e-6))
        out.append(
            (f"machine <= 1.25 x floor ({us(1.25 * floor_sync)})", mach <= 1.25 * floor_sync)
        )
    elif load.label.startswith("session + last 100"):
        oa = r["OpenAI SQLiteSession/sqlite"]
        assert proc is not None
        out.append((f"<= OpenAI get_items(100) ({us(oa)})", proc <= oa))
    elif load.label.startswith("artifact save 1 MiB"):
        assert proc is not None and mach is not None
        files = r["ADK FileArtifactService/process"]
        out.append((f"process <= ADK files ({us(files)})", proc <= files))
        limit = 1.3 * f["file write + fsync"]
        out.append((f"machine <= 1.3 x write+fsync ({us(limit)})", mach <= limit))
    elif load.label.startswith("artifact load 1 MiB"):
        files = r["ADK FileArtifactService/process"]
        assert proc is not None
        out.append((f"<= ADK files ({us(files)})", proc <= files))
    elif "1 KiB" in load.label or load.label == "list 10 versions":
        assert proc is not None
        out.append(("process <= 100 µs", proc <= 100e-6))
    for durability, ours in (("process", proc), ("machine", mach)):
        peer = best(load, durability)
        if ours is not None and peer is not None:
            out.append((f"{durability}: ahead of {peer[0]}", ours <= peer[1]))
    return out


def table(loads: list[Workload], many: dict[str, float], floor_sync: float) -> list[str]:
    lines = [
        "| work | satchel process | satchel machine | best peer, process | best peer, machine "
        "| best in-memory peer | floors (same rounds) | targets |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for load in loads:
        proc, mach = load.results.get("satchel/process"), load.results.get("satchel/machine")
        checks = "; ".join(
            f"{what}: {'PASS' if ok else '**FAIL**'}" for what, ok in targets(load, floor_sync)
        )
        floors_text = ", ".join(f"{n} {us(s)}" for n, s in load.floor_results.items()) or "—"
        lines.append(
            f"| {load.label} | {us(proc) if proc else '—'} | {us(mach) if mach else '—'} "
            f"| {cell(best(load, 'process'))} | {cell(best(load, 'machine'))} "
            f"| {cell(best(load, 'memory'))} | {floors_text} | {checks} |"
        )  # fmt: skip
    ok_p, ok_m = many["process"] <= 37e-6, many["machine"] <= 37e-6
    lines.append(
        f"| state update, {CONCURRENT} sessions at once (amortised) | {us(many['process'])} "
        f"| {us(many['machine'])} | — | — | — | — | machine <= 37 µs: "
        f"{'PASS' if ok_m else '**FAIL**'}; process <= 37 µs: {'PASS' if ok_p else '**FAIL**'} |"
    )
    return lines


def every_figure(loads: list[Workload]) -> list[str]:
    lines = ["| work | system | durability | time per operation |", "|---|---|---|---|"]
    for load in loads:
        for c in load.contenders:
            lines.append(
                f"| {load.label} | {c.system} | {resolved(c)} | {us(load.results[name(c)])} |"
            )
        for n, s in load.floor_results.items():
            lines.append(f"| {load.label} | floor: {n} | — | {us(s)} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-adapters", action="store_true")
    args = parser.parse_args()
    ops, repeats = args.ops, args.repeats
    warnings.simplefilter("ignore")  # ADK's experimental-feature warnings
    tuned = tune_allocator()
    load_before = os.getloadavg()
    loads = workloads(ops)
    for load in loads:
        asyncio.run(measure(load, repeats))
    many = {
        d: asyncio.run(
            concurrent_rounds(satchel_writers(d), CONCURRENT, max(1, ops // 10), repeats)
        )
        for d in ("process", "machine")
    }
    load_after = os.getloadavg()
    floor_sync = loads[0].floor_results["pwrite + fdatasync"]
    lines = [
        "## satchel and its peers, side by side (`python perf/bench_peers.py`)",
        "",
        f"One asyncio process, one run (`--ops {ops} --repeats {repeats}`); every contender of a "
        "row open at once, interleaved rounds in rotating order, medians of "
        f"{repeats} rounds after a warm-up round ({max(10, ops // 10)} operations a round "
        f"for 1 MiB artifacts, {ops} otherwise). Content JSON-like and new for every "
        f"operation. `satchel.tune_allocator()` {'applied' if tuned else 'not available'}. "
        f"Load average before {load_before[0]:.2f}, after {load_after[0]:.2f}.",
        "",
        *table(loads, many, floor_sync),
        "",
        "SQLite peers' durability as their connections report it: "
        + ", ".join(f"{s}: journal_mode={j}, synchronous={SYNC_NAMES.get(n, n)} → "
                    f"{durability_of(n)}" for s, (j, n) in sorted(peers.PRAGMAS.items()))
        + "; ADK FileArtifactService never syncs (process).",
        "",
        "<details><summary>Every figure</summary>",
        "",
        *every_figure(loads),
        "",
        "</details>",
        "",
    ]  # fmt: skip
    if not args.skip_adapters:
        from bench_adapters import adapter_lines

        lines += adapter_lines(ops, repeats)
    NOTES.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
