"""satchel's framework adapters beside their frameworks' own backends (issue 20's Performance).

Called by ``perf/bench_peers.py`` (which puts the table in ``perf/peers_notes.md``); the same
rules as there: one process, each contender on its own asyncio loop and data folder, one after
the other; medians over ``repeats`` rounds of ``ops`` calls (after a warm-up round), as time
per call. Each SQLite peer's durability is read from its connection (``synchronous`` FULL or
EXTRA is ``machine``) and the adapter runs at that durability; the in-memory peers (and
``FileArtifactService``, which never syncs) are met at ``process``.

* LangGraph: ``put`` of a checkpoint with one changed channel (``SatchelSaver.aput``;
  ``SqliteSaver.put``, which has no async methods; ``InMemorySaver.aput``), and a 10-step
  linear ``StateGraph`` end to end on a fresh thread (``ainvoke`` on SatchelSaver; ``invoke``
  on SqliteSaver, outside any loop, as sync code runs it; ``ainvoke`` on AsyncSqliteSaver).
* OpenAI Agents SDK: ``add_items`` of one message (``SQLiteSession`` on a file, and on
  ``":memory:"``, the SDK's only in-memory session).
* Google ADK: ``append_event`` with a one-key state delta, a fresh session each round; and
  artifact save (new content each time) and load of 1 MiB of JSON-like content.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypedDict

from bench_peers import SYNC_NAMES, durability_of, fresh, median_per_op, pragmas, us

from satchel import open_runtime

Call = Callable[[int], Awaitable[Any]]


async def rounds_of(call: Call, ops: int, repeats: int) -> float:
    """Seconds per ``call(i)`` (``i`` counts every call), median of ``repeats`` rounds."""
    rounds, n = [], 0
    for r in range(repeats + 1):
        started = time.perf_counter()
        for _ in range(ops):
            n += 1
            await call(n)
        if r:  # the first round warms up
            rounds.append((time.perf_counter() - started, ops))
    return median_per_op(rounds)


def how(found: tuple[str, int]) -> str:
    """A SQLite peer's pragmas and the durability they amount to."""
    sync = SYNC_NAMES.get(found[1], found[1])
    return f"{found[0]}, {sync} → {durability_of(found[1])}"


# -- LangGraph --------------------------------------------------------------------------------


def putter(saver: Any, sync: bool = False) -> Call:
    """Successive puts on one thread, each changing the one channel ``step``."""
    config: Any = {"configurable": {"thread_id": "thread-1", "checkpoint_ns": ""}}
    version: Any = None

    async def put(step: int) -> None:
        from langgraph.checkpoint.base import empty_checkpoint

        nonlocal config, version
        version = saver.get_next_version(version, None)
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"step": {"n": step}}
        checkpoint["channel_versions"] = {"step": version}
        metadata: Any = {"source": "loop", "step": step}
        if sync:
            config = saver.put(config, checkpoint, metadata, {"step": version})
        else:
            config = await saver.aput(config, checkpoint, metadata, {"step": version})

    return put


async def lg_put_satchel(durability: str, ops: int, repeats: int) -> float:
    from satchel.integrations.langgraph import SatchelSaver

    folder = fresh()
    try:
        async with SatchelSaver.from_path(folder / "data", durability=durability) as saver:
            return await rounds_of(putter(saver), ops, repeats)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def lg_put_sqlite(ops: int, repeats: int) -> tuple[float, tuple[str, int]]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    folder = fresh()
    try:
        conn = sqlite3.connect(folder / "checkpoints.sqlite", check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()
        seconds = await rounds_of(putter(saver, sync=True), ops, repeats)
        found = pragmas(conn)
        conn.close()
        return seconds, found
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def lg_put_memory(ops: int, repeats: int) -> float:
    from langgraph.checkpoint.memory import InMemorySaver

    return await rounds_of(putter(InMemorySaver()), ops, repeats)


class Count(TypedDict):
    n: int


def ten_steps(checkpointer: Any) -> Any:
    """A linear graph of 10 nodes, each adding 1, compiled on ``checkpointer``."""
    from langgraph.graph import END, START, StateGraph

    builder: Any = StateGraph(Count)
    previous = START
    for i in range(10):
        builder.add_node(f"step{i}", lambda s: {"n": s["n"] + 1})
        builder.add_edge(previous, f"step{i}")
        previous = f"step{i}"
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=checkpointer)


async def graph_call(graph: Any, n: int) -> None:
    out = await graph.ainvoke({"n": 0}, {"configurable": {"thread_id": f"g{n}"}})
    assert out["n"] == 10


async def lg_graph_satchel(durability: str, runs: int, repeats: int) -> float:
    from satchel.integrations.langgraph import SatchelSaver

    folder = fresh()
    try:
        async with SatchelSaver.from_path(folder / "data", durability=durability) as saver:
            graph = ten_steps(saver)
            return await rounds_of(lambda n: graph_call(graph, n), runs, repeats)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def lg_graph_async_sqlite(runs: int, repeats: int) -> float:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    folder = fresh()
    try:
        async with AsyncSqliteSaver.from_conn_string(str(folder / "g.sqlite")) as saver:
            graph = ten_steps(saver)
            return await rounds_of(lambda n: graph_call(graph, n), runs, repeats)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def lg_graph_sqlite(runs: int, repeats: int) -> float:
    """``invoke`` on SqliteSaver, in plain sync code (no event loop running)."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    folder = fresh()
    try:
        with SqliteSaver.from_conn_string(str(folder / "g.sqlite")) as saver:
            graph = ten_steps(saver)
            rounds, n = [], 0
            for r in range(repeats + 1):
                started = time.perf_counter()
                for _ in range(runs):
                    n += 1
                    out = graph.invoke({"n": 0}, {"configurable": {"thread_id": f"g{n}"}})
                    assert out["n"] == 10
                if r:
                    rounds.append((time.perf_counter() - started, runs))
            return median_per_op(rounds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- OpenAI Agents SDK ------------------------------------------------------------------------


def adder(session: Any) -> Call:
    async def add(i: int) -> None:
        await session.add_items([{"role": "user", "content": f"message {i}"}])

    return add


async def oa_satchel(durability: str, ops: int, repeats: int) -> float:
    from satchel.integrations.openai_agents import SatchelSession

    folder = fresh()
    try:
        async with open_runtime(folder / "data", durability=durability) as rt:  # type: ignore[arg-type]
            return await rounds_of(adder(SatchelSession("session-1", rt)), ops, repeats)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def oa_sqlite(on_file: bool, ops: int, repeats: int) -> tuple[float, tuple[str, int]]:
    from agents import SQLiteSession

    folder = fresh()
    try:
        session = SQLiteSession("session-1", folder / "agents.sqlite" if on_file else ":memory:")
        seconds = await rounds_of(adder(session), ops, repeats)
        found = pragmas(session._get_connection())
        session.close()
        return seconds, found
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- Google ADK -------------------------------------------------------------------------------


def appender(service: Any, ops: int) -> Call:
    """``append_event`` with a one-key delta; a fresh session every ``ops`` calls (a round)."""
    from google.adk.events import Event, EventActions

    session: Any = None

    async def append(i: int) -> None:
        nonlocal session
        if (i - 1) % ops == 0:
            session = await service.create_session(app_name="bench", user_id="u")
        event = Event(
            invocation_id=f"inv-{i}", author="agent", actions=EventActions(state_delta={"step": i})
        )
        await service.append_event(session, event)

    return append


async def adk_append_satchel(durability: str, ops: int, repeats: int) -> float:
    from satchel.integrations.adk import SatchelSessionService

    folder = fresh()
    try:
        async with open_runtime(folder / "data", durability=durability) as rt:  # type: ignore[arg-type]
            return await rounds_of(appender(SatchelSessionService(rt), ops), ops, repeats)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def adk_append_sqlite(ops: int, repeats: int) -> tuple[float, tuple[str, int]]:
    from google.adk.sessions.sqlite_session_service import SqliteSessionService

    folder = fresh()
    try:
        path = folder / "adk.sqlite"
        seconds = await rounds_of(appender(SqliteSessionService(str(path)), ops), ops, repeats)
        probe = sqlite3.connect(path)  # the service sets no pragma but foreign_keys
        found = pragmas(probe)
        probe.close()
        return seconds, found
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def adk_append_memory(ops: int, repeats: int) -> float:
    from google.adk.sessions import InMemorySessionService

    return await rounds_of(appender(InMemorySessionService(), ops), ops, repeats)


def json_like(seed: int, size: int = 1 << 20) -> bytes:
    """``size`` bytes of JSON records, different for each seed."""
    records, total, n = [], 0, 0
    while total < size:
        record = {
            "id": f"{seed}-{n}",
            "role": "assistant" if n % 2 else "user",
            "text": f"message {n} of run {seed}: " + "lorem ipsum dolor sit amet " * 3,
            "tokens": (n * 37 + seed) % 4096,
            "tags": ["a", "b", str(n % 7)],
        }
        line = json.dumps(record)
        records.append(line)
        total += len(line) + 2
        n += 1
    return ("[" + ",\n".join(records) + "]").encode()[:size]


async def artifact_rounds(service: Any, ops: int, repeats: int) -> tuple[float, float]:
    """Seconds per save of new 1 MiB JSON-like content and per load of it."""
    from google.genai import types

    where = {"app_name": "bench", "user_id": "u", "session_id": "s"}
    parts = [
        types.Part.from_bytes(data=json_like(i), mime_type="application/json")
        for i in range((repeats + 1) * ops)
    ]
    saves, loads = [], []
    for r in range(repeats + 1):
        names = [f"r{r}-{i}.json" for i in range(ops)]
        started = time.perf_counter()
        for name, part in zip(names, parts[r * ops : (r + 1) * ops], strict=True):
            await service.save_artifact(filename=name, artifact=part, **where)
        saved = time.perf_counter() - started
        started = time.perf_counter()
        for name in names:
            assert await service.load_artifact(filename=name, **where) is not None
        if r:
            saves.append((saved, ops))
            loads.append((time.perf_counter() - started, ops))
    return median_per_op(saves), median_per_op(loads)


async def adk_artifacts_satchel(ops: int, repeats: int) -> tuple[float, float]:
    from satchel.integrations.adk import SatchelArtifactService

    folder = fresh()
    try:
        async with open_runtime(folder / "data", durability="process") as rt:
            return await artifact_rounds(SatchelArtifactService(rt), ops, repeats)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def adk_artifacts_files(ops: int, repeats: int) -> tuple[float, float]:
    from google.adk.artifacts import FileArtifactService

    folder = fresh()
    try:
        return await artifact_rounds(FileArtifactService(Path(folder) / "files"), ops, repeats)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the table --------------------------------------------------------------------------------


def adapter_lines(ops: int, repeats: int) -> list[str]:
    """Measure every pair and return the markdown section."""
    warnings.simplefilter("ignore")  # ADK's experimental-feature warnings
    run = asyncio.run
    artifact_ops = max(10, ops // 10)
    graph_runs = max(5, ops // 5)

    lg_sql, lg_found = run(lg_put_sqlite(ops, repeats))
    lg_ours = run(lg_put_satchel(durability_of(lg_found[1]), ops, repeats))
    lg_mem = run(lg_put_memory(ops, repeats))
    lg_ours_p = run(lg_put_satchel("process", ops, repeats))
    g_sql = lg_graph_sqlite(graph_runs, repeats)
    g_asql = run(lg_graph_async_sqlite(graph_runs, repeats))
    g_ours = run(lg_graph_satchel(durability_of(lg_found[1]), graph_runs, repeats))
    g_ours_p = run(lg_graph_satchel("process", graph_runs, repeats))

    oa_sql, oa_found = run(oa_sqlite(True, ops, repeats))
    oa_ours = run(oa_satchel(durability_of(oa_found[1]), ops, repeats))
    oa_mem, _ = run(oa_sqlite(False, ops, repeats))
    oa_ours_p = run(oa_satchel("process", ops, repeats))

    adk_sql, adk_found = run(adk_append_sqlite(ops, repeats))
    adk_ours = run(adk_append_satchel(durability_of(adk_found[1]), ops, repeats))
    adk_mem = run(adk_append_memory(ops, repeats))
    adk_ours_p = run(adk_append_satchel("process", ops, repeats))
    files_save, files_load = run(adk_artifacts_files(artifact_ops, repeats))
    ours_save, ours_load = run(adk_artifacts_satchel(artifact_ops, repeats))

    def at(found: tuple[str, int]) -> str:
        return durability_of(found[1])

    rows = [
        (f"LangGraph put, one changed channel: SatchelSaver ({at(lg_found)}) vs SqliteSaver "
         f"({how(lg_found)})", lg_ours, lg_sql, 0.5),
        ("LangGraph put, one changed channel: SatchelSaver (process) vs InMemorySaver",
         lg_ours_p, lg_mem, 3.0),
        (f"LangGraph 10-step graph end to end: SatchelSaver ({at(lg_found)}, ainvoke) vs "
         "SqliteSaver (invoke)", g_ours, g_sql, 1.0),
        (f"OpenAI Agents add_items, one message: SatchelSession ({at(oa_found)}) vs "
         f"SQLiteSession file ({how(oa_found)})", oa_ours, oa_sql, 0.5),
        ('OpenAI Agents add_items, one message: SatchelSession (process) vs SQLiteSession '
         '(":memory:")', oa_ours_p, oa_mem, 3.0),
        (f"ADK append_event, one-key delta: SatchelSessionService ({at(adk_found)}) vs "
         f"SqliteSessionService ({how(adk_found)})", adk_ours, adk_sql, 0.5),
        ("ADK append_event, one-key delta: SatchelSessionService (process) vs "
         "InMemorySessionService", adk_ours_p, adk_mem, 3.0),
        ("ADK artifact save 1 MiB JSON-like, new content: SatchelArtifactService (process; "
         "hash, dedup, compression) vs FileArtifactService (no fsync)", ours_save, files_save,
         1.0),
        ("ADK artifact load 1 MiB JSON-like: SatchelArtifactService (hash verified) vs "
         "FileArtifactService", ours_load, files_load, 1.0),
    ]  # fmt: skip
    lines = [
        "### The framework adapters against their frameworks' own backends (issue 20)",
        "",
        f"Same run and process; each contender on its own asyncio loop and data folder, one "
        f"after the other; medians of {repeats} rounds of {ops} calls ({artifact_ops} for "
        f"1 MiB artifacts, {graph_runs} for the graph, each on a fresh thread) after a warm-up "
        "round. Each adapter at the SQLite peer's durability as read from its connection, and "
        "at `process` against the in-memory peers. Target: satchel / peer.",
        "",
        "| work | satchel | peer | satchel / peer | target | |",
        "|---|---|---|---|---|---|",
    ]
    for label, ours, peer, target in rows:
        verdict = "PASS" if ours / peer <= target else "**FAIL**"
        lines.append(
            f"| {label} | {us(ours)} | {us(peer)} | {ours / peer:.2f}x | <= {target:g}x "
            f"| {verdict} |"
        )
    lines += [
        "",
        f"Besides, the 10-step graph with SatchelSaver at `process`: {us(g_ours_p)}; with "
        f"AsyncSqliteSaver (`ainvoke`): {us(g_asql)} "
        f"(SatchelSaver at {at(lg_found)} / AsyncSqliteSaver = {g_ours / g_asql:.2f}x).",
        "",
    ]
    return lines
