"""satchel's framework adapters beside their frameworks' own backends (issue 20's Performance).

Called by ``perf/bench_peers.py`` (which puts the table in ``perf/peers_notes.md``); the same
rules as there: one process and asyncio loop, every contender of a comparison open at once in
its own data folder, taking turns in interleaved rounds (``perf/interleave.py``); medians over
``repeats`` rounds of ``ops`` calls (after a warm-up round), as time per call. Each SQLite
peer's durability is read from its connection (``synchronous`` FULL or EXTRA is ``machine``)
and the adapter runs at that durability; the in-memory peers (and
``FileArtifactService``, which never syncs) are met at ``process``.

* LangGraph: ``put`` of a checkpoint with one changed channel (``SatchelSaver.aput``;
  ``SqliteSaver.put``, which has no async methods; ``InMemorySaver.aput``), and a 10-step
  linear ``StateGraph`` end to end on a fresh thread (``ainvoke`` on SatchelSaver; ``invoke``
  on SqliteSaver, its sync API, blocking the loop as it would block a thread; ``ainvoke`` on
  AsyncSqliteSaver).
* OpenAI Agents SDK: ``add_items`` of one message (``SQLiteSession`` on a file, and on
  ``":memory:"``, the SDK's only in-memory session).
* Google ADK: ``append_event`` with a one-key state delta, a fresh session each round; and
  artifact save (new content each time) and load of 1 MiB of JSON-like content.
"""

from __future__ import annotations

import asyncio
import sqlite3
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypedDict

import peer_systems as peers
import peer_work as work
from bench_peers import SYNC_NAMES, durability_of, pragmas, us
from interleave import interleaved

from satchel import open_runtime

Call = Callable[[int], Awaitable[Any]]


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


# -- OpenAI Agents SDK ------------------------------------------------------------------------


def adder(session: Any) -> Call:
    async def add(i: int) -> None:
        await session.add_items([{"role": "user", "content": f"message {i}"}])

    return add


# -- Google ADK -------------------------------------------------------------------------------


def appender(service: Any, ops: int) -> Call:
    """``append_event`` with a one-key delta; a fresh session every ``ops`` calls (a round)."""
    from google.adk.events import Event, EventActions

    session: Any = None

    async def append(i: int) -> None:
        nonlocal session
        if session is None or i % ops == 0:
            session = await service.create_session(app_name="bench", user_id="u")
        event = Event(
            invocation_id=f"inv-{i}", author="agent", actions=EventActions(state_delta={"step": i})
        )
        await service.append_event(session, event)

    return append


# -- openers for the interleaved rounds (perf/interleave.py) ---------------------------------


def lg_put(kind: str, durability: str = "process") -> Callable[[], Any]:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Call]:
        if kind == "satchel":
            from satchel.integrations.langgraph import SatchelSaver

            async with (
                work.folder() as where,
                SatchelSaver.from_path(where / "data", durability=durability) as saver,
            ):
                yield putter(saver)
        elif kind == "sqlite":
            from langgraph.checkpoint.sqlite import SqliteSaver

            async with work.folder() as where:
                conn = sqlite3.connect(where / "checkpoints.sqlite", check_same_thread=False)
                saver = SqliteSaver(conn)
                saver.setup()
                yield putter(saver, sync=True)
                FOUND["lg"] = pragmas(conn)
                conn.close()
        else:
            from langgraph.checkpoint.memory import InMemorySaver

            yield putter(InMemorySaver())

    return opened


def lg_graph(kind: str, durability: str = "process") -> Callable[[], Any]:
    """A 10-step graph on a fresh thread per call: ``ainvoke`` on SatchelSaver and
    AsyncSqliteSaver, ``invoke`` on SqliteSaver (its sync API, blocking the loop as sync
    code would block its thread)."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Call]:
        async with work.folder() as where:
            if kind == "satchel":
                from satchel.integrations.langgraph import SatchelSaver

                async with SatchelSaver.from_path(where / "data", durability=durability) as s:
                    graph = ten_steps(s)
                    yield lambda n: graph_call(graph, n)
            elif kind == "async-sqlite":
                from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

                async with AsyncSqliteSaver.from_conn_string(str(where / "g.sqlite")) as saver:
                    graph = ten_steps(saver)
                    yield lambda n: graph_call(graph, n)
            else:
                from langgraph.checkpoint.sqlite import SqliteSaver

                with SqliteSaver.from_conn_string(str(where / "g.sqlite")) as saver:
                    graph = ten_steps(saver)

                    async def call(n: int) -> None:
                        out = graph.invoke({"n": 0}, {"configurable": {"thread_id": f"g{n}"}})
                        assert out["n"] == 10

                    yield call

    return opened


def oa_add(kind: str, durability: str = "process") -> Callable[[], Any]:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Call]:
        async with work.folder() as where:
            if kind == "satchel":
                from satchel.integrations.openai_agents import SatchelSession

                async with open_runtime(where / "data", durability=durability) as rt:  # type: ignore[arg-type]
                    yield adder(SatchelSession("session-1", rt))
            else:
                from agents import SQLiteSession

                on_file = kind == "sqlite"
                session = SQLiteSession("session-1", where / "a.sqlite" if on_file else ":memory:")
                yield adder(session)
                if on_file:
                    FOUND["oa"] = pragmas(session._get_connection())
                session.close()

    return opened


def adk_append(kind: str, ops: int, durability: str = "process") -> Callable[[], Any]:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Call]:
        async with work.folder() as where:
            if kind == "satchel":
                from satchel.integrations.adk import SatchelSessionService

                async with open_runtime(where / "data", durability=durability) as rt:  # type: ignore[arg-type]
                    yield appender(SatchelSessionService(rt), ops)
            elif kind == "sqlite":
                from google.adk.sessions.sqlite_session_service import SqliteSessionService

                path = where / "adk.sqlite"
                yield appender(SqliteSessionService(str(path)), ops)
                probe = sqlite3.connect(path)  # the service sets no pragma but foreign_keys
                FOUND["adk"] = pragmas(probe)
                probe.close()
            else:
                from google.adk.sessions import InMemorySessionService

                yield appender(InMemorySessionService(), ops)

    return opened


#: The pragmas each SQLite peer ran with: "lg", "oa", "adk" -> (journal_mode, synchronous).
FOUND: dict[str, tuple[str, int]] = {}


def machine_if_synced() -> str:
    """The durability the SQLite peers run at by default (``synchronous=FULL``, read from a
    fresh connection: every peer here leaves SQLite's default), to run satchel at."""
    conn = sqlite3.connect(":memory:")
    try:
        return durability_of(int(conn.execute("PRAGMA synchronous").fetchone()[0]))
    finally:
        conn.close()


# -- the table --------------------------------------------------------------------------------


def adapter_lines(ops: int, repeats: int) -> list[str]:
    """Measure every pair in interleaved rounds and return the markdown section."""
    warnings.simplefilter("ignore")  # ADK's experimental-feature warnings
    run = asyncio.run
    artifact_ops = max(10, ops // 10)
    graph_runs = max(5, ops // 5)
    d = machine_if_synced()

    lg_ours, lg_sql, lg_ours_p, lg_mem = run(
        interleaved(
            [lg_put("satchel", d), lg_put("sqlite"), lg_put("satchel"), lg_put("memory")],
            ops,
            repeats,
        )
    )
    g_ours, g_sql, g_asql, g_ours_p = run(
        interleaved(
            [lg_graph("satchel", d), lg_graph("sqlite"), lg_graph("async-sqlite"),
             lg_graph("satchel")],
            graph_runs,
            repeats,
        )
    )  # fmt: skip
    oa_ours, oa_sql, oa_ours_p, oa_mem = run(
        interleaved(
            [oa_add("satchel", d), oa_add("sqlite"), oa_add("satchel"), oa_add("memory")],
            ops,
            repeats,
        )
    )
    adk_ours, adk_sql, adk_ours_p, adk_mem = run(
        interleaved(
            [adk_append("satchel", ops, d), adk_append("sqlite", ops),
             adk_append("satchel", ops), adk_append("memory", ops)],
            ops,
            repeats,
        )
    )  # fmt: skip
    ours_save, files_save = run(
        interleaved(
            [peers.adk_save(k, work.json_like, 1 << 20) for k in ("satchel", "files")],
            artifact_ops,
            repeats,
        )
    )
    ours_load, files_load = run(
        interleaved(
            [peers.adk_load(k, 1 << 20) for k in ("satchel", "files")], artifact_ops, repeats
        )
    )
    lg_found, oa_found, adk_found = FOUND["lg"], FOUND["oa"], FOUND["adk"]
    assert {durability_of(f[1]) for f in FOUND.values()} == {d}, FOUND

    rows = [
        (f"LangGraph put, one changed channel: SatchelSaver ({d}) vs SqliteSaver "
         f"({how(lg_found)})", lg_ours, lg_sql, 0.5),
        ("LangGraph put, one changed channel: SatchelSaver (process) vs InMemorySaver",
         lg_ours_p, lg_mem, 3.0),
        (f"LangGraph 10-step graph end to end: SatchelSaver ({d}, ainvoke) vs "
         "SqliteSaver (invoke)", g_ours, g_sql, 1.0),
        (f"OpenAI Agents add_items, one message: SatchelSession ({d}) vs "
         f"SQLiteSession file ({how(oa_found)})", oa_ours, oa_sql, 0.5),
        ('OpenAI Agents add_items, one message: SatchelSession (process) vs SQLiteSession '
         '(":memory:")', oa_ours_p, oa_mem, 3.0),
        (f"ADK append_event, one-key delta: SatchelSessionService ({d}) vs "
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
        "### The framework adapters against their frameworks' own backends",
        "",
        f"Same process, one asyncio loop; the contenders of each pair (and their in-memory "
        f"and process-durability twins) open at once, in interleaved rounds of rotating order "
        f"(`perf/interleave.py`); medians of {repeats} rounds of {ops} calls ({artifact_ops} "
        f"for 1 MiB artifacts, {graph_runs} graphs, each on a fresh thread) after a warm-up "
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
        f"(SatchelSaver at {d} / AsyncSqliteSaver = {g_ours / g_asql:.2f}x).",
        "",
    ]
    return lines
