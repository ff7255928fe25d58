"""satchel side by side with its peers, in one process and one run.

The same work on satchel and on:

* LangGraph ``SqliteSaver.put`` of a checkpoint with one changed channel;
* OpenAI Agents SDK ``SQLiteSession.add_items`` of one message;
* Google ADK ``SqliteSessionService.append_event`` of an event with a one-key state delta;
* Google ADK ``FileArtifactService`` save and load of 1 MiB;

and then satchel's framework adapters (``satchel.integrations``) against each framework's own
backends, durable and in memory, as issue 20 asks (``perf/bench_adapters.py``).

Beside them, the floor of one durable write on this disk (``pwrite`` + ``fdatasync`` of 200
bytes into a preallocated file), which no store that syncs each write alone can go under.

Each peer's durability is read from its own SQLite connection (``journal_mode`` and
``synchronous``) and satchel is compared at the same durability: ``synchronous`` FULL or EXTRA
(an fsync per commit) is ``machine``; anything less is at most ``process``. Timings are
medians over ``--repeats`` rounds of ``--ops`` operations each (after a warm-up round), as
time per operation; satchel runs on asyncio as the peers do (``--backend trio`` for Trio),
sequentially, never at once.
The process calls ``satchel.tune_allocator()`` first, as satchel's CLI and server do; the peers
run in the same process, so with it too.

Needs the ``peers`` extra (``pip install -e '.[peers]'``). Writes ``perf/peers_notes.md``
(``perf/report.py --notes`` puts it in RESULTS.md).

Run (from the repository root)::

    python perf/bench_peers.py [--ops 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from satchel import open_runtime, tune_allocator

NOTES = Path(__file__).with_name("peers_notes.md")
MIB = 1 << 20
CONCURRENT = 100


def fresh() -> Path:
    """A new temporary folder."""
    return Path(tempfile.mkdtemp(prefix="satchel-peers-"))


def median_per_op(rounds: list[tuple[float, int]]) -> float:
    """The median of each round's time per operation."""
    return statistics.median(seconds / count for seconds, count in rounds)


def pragmas(conn: sqlite3.Connection) -> tuple[str, int]:
    """``journal_mode`` and ``synchronous`` of a connection."""
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
    return str(journal), int(synchronous)


def durability_of(synchronous: int) -> str:
    """The satchel durability matching a SQLite ``synchronous`` level."""
    return "machine" if synchronous >= 2 else "process"


SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


# -- the floor --------------------------------------------------------------------------------


def durable_write_floor(ops: int, repeats: int) -> float:
    """Seconds per ``pwrite`` of 200 bytes plus ``fdatasync`` into a preallocated file: the
    cheapest write that survives power loss here (no size or metadata change to commit).
    Anything that syncs each acknowledged write alone pays at least this."""
    folder = fresh()
    try:
        fd = os.open(folder / "floor", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            size = ops * 200
            os.write(fd, bytes(size))
            os.fsync(fd)
            record = b"x" * 200
            rounds = []
            for r in range(repeats + 1):
                started = time.perf_counter()
                for i in range(ops):
                    os.pwrite(fd, record, i * 200)
                    os.fdatasync(fd)
                if r:
                    rounds.append((time.perf_counter() - started, ops))
            return median_per_op(rounds)
        finally:
            os.close(fd)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- satchel ----------------------------------------------------------------------------------


async def satchel_state(durability: str, sessions: int, ops: int, repeats: int) -> float:
    """Seconds per ``set_state`` (a one-key dict), ``sessions`` sessions writing at once."""
    folder = fresh()
    try:
        async with open_runtime(folder / "data", durability=durability) as rt:  # type: ignore[arg-type]
            ids = [await rt.sessions.create() for _ in range(sessions)]
            per_session = max(1, ops // sessions) if sessions > 1 else ops

            async def writer(sid: str, base: int) -> None:
                for i in range(per_session):
                    await rt.sessions.set_state(sid, "step", {"n": base + i})

            rounds = []
            for r in range(repeats + 1):
                started = time.perf_counter()
                async with anyio.create_task_group() as nursery:
                    for sid in ids:
                        nursery.start_soon(writer, sid, r * per_session)
                elapsed = time.perf_counter() - started
                if r:  # the first round warms up (actors start, caches fill)
                    rounds.append((elapsed, per_session * sessions))
            return median_per_op(rounds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def satchel_artifacts(ops: int, repeats: int) -> tuple[float, float]:
    """Seconds per 1 MiB artifact store (new content each time: hashed, compressed where it
    pays, deduplicated, written) and per 1 MiB get (read and hash-verified)."""
    folder = fresh()
    try:
        async with open_runtime(folder / "data") as rt:
            sid = await rt.sessions.create()

            async def save(name: str, content: bytes) -> None:
                await rt.artifacts.store(sid, name, content, type="tool_result")

            async def load(name: str) -> None:
                await rt.artifacts.get(sid, name)

            return await save_load_rounds(save, load, ops, repeats)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _content(i: int) -> bytes:
    # 1 MiB, half random, half text: distinct per call (no dedup shortcut), partly compressible.
    return (os.urandom(MIB // 2) + (b"line %d of an agent's output\n" % i) * (MIB // 40))[:MIB]


async def save_load_rounds(
    save: Callable[[str, bytes], Awaitable[None]],
    load: Callable[[str], Awaitable[None]],
    ops: int,
    repeats: int,
) -> tuple[float, float]:
    """Seconds per ``save`` of new 1 MiB content and per ``load`` of it, in rounds of ``ops``
    (the first round warms up); works on Trio and on asyncio alike."""
    contents = [_content(i) for i in range((repeats + 1) * ops)]
    saves, loads = [], []
    for r in range(repeats + 1):
        batch = contents[r * ops : (r + 1) * ops]
        started = time.perf_counter()
        for i, content in enumerate(batch):
            await save(f"r{r}-{i}.bin", content)
        saved = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(len(batch)):
            await load(f"r{r}-{i}.bin")
        loaded = time.perf_counter() - started
        if r:
            saves.append((saved, len(batch)))
            loads.append((loaded, len(batch)))
    return median_per_op(saves), median_per_op(loads)


# -- peers ------------------------------------------------------------------------------------


def langgraph_put(ops: int, repeats: int) -> tuple[float, tuple[str, int]]:
    """Seconds per ``SqliteSaver.put`` with one changed channel; its pragmas."""
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.sqlite import SqliteSaver

    folder = fresh()
    try:
        conn = sqlite3.connect(folder / "checkpoints.sqlite", check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()
        config: Any = {"configurable": {"thread_id": "thread-1", "checkpoint_ns": ""}}
        rounds = []
        step = 0
        for r in range(repeats + 1):
            started = time.perf_counter()
            for _ in range(ops):
                step += 1
                checkpoint = empty_checkpoint()
                checkpoint["channel_values"] = {"step": {"n": step}}
                checkpoint["channel_versions"] = {"step": step}
                metadata: Any = {"source": "loop", "step": step}
                config = saver.put(config, checkpoint, metadata, {"step": step})
            if r:
                rounds.append((time.perf_counter() - started, ops))
        found = pragmas(conn)
        conn.close()
        return median_per_op(rounds), found
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_async(make: Callable[[], Awaitable[Any]]) -> Any:
    """Run an asyncio coroutine to completion (the peers are asyncio libraries)."""
    return asyncio.run(make())  # type: ignore[arg-type]


async def agents_add_items(ops: int, repeats: int) -> tuple[float, tuple[str, int]]:
    """Seconds per ``SQLiteSession.add_items`` of one message; its pragmas."""
    from agents import SQLiteSession

    folder = fresh()
    try:
        session = SQLiteSession("session-1", folder / "agents.sqlite")
        rounds = []
        for r in range(repeats + 1):
            started = time.perf_counter()
            for i in range(ops):
                await session.add_items([{"role": "user", "content": f"message {i}"}])
            if r:
                rounds.append((time.perf_counter() - started, ops))
        found = pragmas(session._get_connection())
        session.close()
        return median_per_op(rounds), found
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def adk_append_event(ops: int, repeats: int) -> tuple[float, tuple[str, int]]:
    """Seconds per ``SqliteSessionService.append_event`` with a one-key state delta; the
    pragmas a connection to its file gets (the service sets none but foreign_keys)."""
    from google.adk.events import Event, EventActions
    from google.adk.sessions.sqlite_session_service import SqliteSessionService

    folder = fresh()
    try:
        path = folder / "adk.sqlite"
        service = SqliteSessionService(str(path))
        session = await service.create_session(app_name="bench", user_id="u")
        rounds = []
        for r in range(repeats + 1):
            started = time.perf_counter()
            for i in range(ops):
                event = Event(
                    invocation_id=f"inv-{r}-{i}",
                    author="agent",
                    actions=EventActions(state_delta={"step": i}),
                )
                await service.append_event(session, event)
            if r:
                rounds.append((time.perf_counter() - started, ops))
        probe = sqlite3.connect(path)
        found = pragmas(probe)
        probe.close()
        return median_per_op(rounds), found
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def adk_file_artifacts(ops: int, repeats: int) -> tuple[float, float]:
    """Seconds per 1 MiB ``FileArtifactService`` save (new content) and load."""
    from google.adk.artifacts import FileArtifactService
    from google.genai import types

    folder = fresh()
    try:
        service = FileArtifactService(folder / "artifacts")
        where = {"app_name": "bench", "user_id": "u", "session_id": "s"}

        async def save(name: str, content: bytes) -> None:
            part = types.Part.from_bytes(data=content, mime_type="application/octet-stream")
            await service.save_artifact(filename=name, artifact=part, **where)

        async def load(name: str) -> None:
            await service.load_artifact(filename=name, **where)

        return await save_load_rounds(save, load, ops, repeats)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the table --------------------------------------------------------------------------------


def us(seconds: float) -> str:
    """Seconds as microseconds for the table."""
    return f"{seconds * 1e6:,.0f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()
    ops, repeats, backend = args.ops, args.repeats, args.backend
    artifact_ops = max(10, ops // 10)
    # As the CLI and server do (satchel._allocator); the peers share the process and it.
    tuned = tune_allocator()

    floor = durable_write_floor(ops, repeats)
    lg, lg_pragmas = langgraph_put(ops, repeats)
    oa, oa_pragmas = run_async(lambda: agents_add_items(ops, repeats))
    adk, adk_pragmas = run_async(lambda: adk_append_event(ops, repeats))
    adk_save, adk_load = run_async(lambda: adk_file_artifacts(artifact_ops, repeats))

    def on_loop(fn: Callable[..., Awaitable[Any]], *fn_args: Any) -> Any:
        return anyio.run(fn, *fn_args, backend=backend)

    machine_one = on_loop(satchel_state, "machine", 1, ops, repeats)
    machine_many = on_loop(satchel_state, "machine", CONCURRENT, ops * 10, repeats)
    process_one = on_loop(satchel_state, "process", 1, ops, repeats)
    process_many = on_loop(satchel_state, "process", CONCURRENT, ops * 10, repeats)
    save, load = on_loop(satchel_artifacts, artifact_ops, repeats)

    def mode(found: tuple[str, int]) -> str:
        return (
            f"journal_mode={found[0]}, synchronous={SYNC_NAMES.get(found[1], found[1])} "
            f"→ {durability_of(found[1])}"
        )

    def satchel_at(found: tuple[str, int]) -> float:
        return machine_one if durability_of(found[1]) == "machine" else process_one

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "**FAIL**"

    rows = [
        ("LangGraph SqliteSaver.put, one changed channel", lg, mode(lg_pragmas),
         satchel_at(lg_pragmas)),
        ("OpenAI Agents SQLiteSession.add_items, one message", oa, mode(oa_pragmas),
         satchel_at(oa_pragmas)),
        ("ADK SqliteSessionService.append_event, one-key delta", adk, mode(adk_pragmas),
         satchel_at(adk_pragmas)),
    ]  # fmt: skip
    lines = [
        "## satchel and its peers, side by side (`python perf/bench_peers.py`)",
        "",
        f"One process, one run; medians of {repeats} rounds of {ops} operations "
        f"({artifact_ops} for 1 MiB artifacts) after a warm-up round; satchel on RocksDB "
        f"in a{'n' if backend == 'asyncio' else ''} {backend} loop, "
        "the peers on SQLite files (their own defaults) and the local file system. Each "
        "peer's durability as configured, and satchel at the same durability. "
        f"`satchel.tune_allocator()` {'applied' if tuned else 'not available'} "
        "(process-wide, so for the peers too).",
        "",
        "| work | peer | peer durability | satchel, same durability | peer / satchel |",
        "|---|---|---|---|---|",
    ]
    for label, peer, how, ours in rows:
        lines.append(f"| {label} | {us(peer)} | {how} | {us(ours)} | {peer / ours:.1f}x |")
    lines.append(
        f"| ADK FileArtifactService save 1 MiB | {us(adk_save)} | files, no fsync → process "
        f"| {us(save)} (hash, dedup, lz4) | {adk_save / save:.1f}x |"
    )
    lines.append(
        f"| ADK FileArtifactService load 1 MiB | {us(adk_load)} | — | {us(load)} "
        f"(hash verified) | {adk_load / load:.1f}x |"
    )
    lines += [
        "",
        f"The floor of one durable write on this disk, in the same run: {us(floor)} "
        "(`pwrite` of 200 bytes and `fdatasync` into a preallocated file, no satchel code). "
        "A state update that must be on disk before it returns, one at a time, costs at least "
        "that plus the in-process path (the process-mode update below).",
        "",
        "| satchel target | measured | target | |",
        "|---|---|---|---|",
        f"| state update, one session, machine | {us(machine_one)} | <= 185 µs and "
        f"<= LangGraph / 2 ({us(lg / 2)}) | {verdict(machine_one <= min(185e-6, lg / 2))} |",
        f"| state update, {CONCURRENT} sessions at once, machine (amortised) | "
        f"{us(machine_many)} | <= 37 µs and <= LangGraph / 10 ({us(lg / 10)}) | "
        f"{verdict(machine_many <= min(37e-6, lg / 10))} |",
        f"| state update, one session, process | {us(process_one)} | <= 40 µs | "
        f"{verdict(process_one <= 40e-6)} |",
        f"| about the least a one-session machine update can cost: floor + process-mode "
        f"update ({us(floor)} + {us(process_one)}) | {us(floor + process_one)} | — | |",
        f"| state update, {CONCURRENT} sessions at once, process (amortised) | "
        f"{us(process_many)} | — | |",
        f"| artifact save 1 MiB, process | {us(save)} | <= ADK FileArtifactService "
        f"({us(adk_save)}) | {verdict(save <= adk_save)} |",
        f"| artifact load 1 MiB, hash verified | {us(load)} | <= 500 µs | "
        f"{verdict(load <= 500e-6)} |",
        "",
    ]
    from bench_adapters import adapter_lines  # it imports this module's helpers

    lines += adapter_lines(ops, repeats)
    NOTES.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
