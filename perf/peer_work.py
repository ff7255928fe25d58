"""The work ``perf/bench_peers.py`` measures, on satchel and on each peer that can do it.

A *contender* is an async context manager that opens one system in a fresh folder, prepares
what the work needs, and yields ``op(i)``: one operation on JSON-like content unique to ``i``
(so no system can answer from a cache or skip a write as a duplicate). Every system names its
things the same way (session ``bench-session``, thread ``bench-thread``, artifact
``report-<i>.json``). The driver opens all the contenders of a workload at once and
interleaves their rounds.

satchel runs in the same asyncio loop as the peers, through its public API only.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from satchel import open_runtime

Op = Callable[[int], Awaitable[Any]]
Opener = Callable[[], Any]  # () -> async context manager yielding an Op

KIB, MIB = 1 << 10, 1 << 20
APP, USER, SESSION, THREAD = "bench", "bench-user", "bench-session", "bench-thread"


@dataclass(frozen=True)
class Contender:
    """One system doing one workload."""

    system: str  # as the table names it
    durability: str  # "process" (survives the process), "machine" (survives power loss)
    open: Opener
    in_memory: bool = False  # keeps nothing once the process is gone


# -- content ----------------------------------------------------------------------------------


def small_value(i: int) -> dict[str, Any]:
    """A JSON-like state value of about 200 bytes, different for each ``i``."""
    return {
        "step": i,
        "role": "assistant" if i % 2 else "user",
        "text": f"step {i}: the agent looked at the plan and chose tool {i % 13}",
        "tokens": (i * 37) % 4096,
        "tags": ["plan", "tool", str(i % 7)],
    }


def message(i: int) -> dict[str, Any]:
    """A chat message as the OpenAI Agents SDK stores one."""
    return {"role": "user" if i % 2 else "assistant", "content": f"message {i}: " + "x" * 60}


def json_like(seed: int, size: int) -> bytes:
    """``size`` bytes of JSON records, different for each seed (compresses ~3x with LZ4)."""
    records, total, n = [], 0, 0
    while total < size:
        line = json.dumps(
            {
                "id": f"{seed}-{n}",
                "role": "assistant" if n % 2 else "user",
                "text": f"message {n} of run {seed}: " + "lorem ipsum dolor sit amet " * 3,
                "tokens": (n * 37 + seed) % 4096,
                "tags": ["a", "b", str(n % 7)],
            }
        )
        records.append(line)
        total += len(line) + 2
        n += 1
    return ("[" + ",\n".join(records) + "]").encode()[:size]


def incompressible(seed: int, size: int) -> bytes:
    """``size`` random bytes (no codec shrinks them); ``seed`` only keeps calls apart."""
    return os.urandom(size)


Content = Callable[[int, int], bytes]


class Prepared:
    """``content(i, size)`` for the operations of a round, made before its clock runs
    (``perf/interleave.py`` calls ``prepare``); each taken once."""

    def __init__(self, content: Content, size: int) -> None:
        self._content, self._size = content, size
        self._made: dict[int, bytes] = {}

    def prepare(self, indexes: range) -> None:
        self._made = {i: self._content(i, self._size) for i in indexes}

    def take(self, i: int) -> bytes:
        made = self._made.pop(i, None)
        return self._content(i, self._size) if made is None else made


def prepared_op(content: Content, size: int, body: Callable[[int, bytes], Awaitable[Any]]) -> Op:
    """An ``op(i)`` calling ``body(i, content)`` with content made before the clock runs."""
    made = Prepared(content, size)

    async def op(i: int) -> None:
        await body(i, made.take(i))

    op.prepare = made.prepare  # type: ignore[attr-defined]
    return op


@asynccontextmanager
async def folder() -> AsyncIterator[Path]:
    """A fresh temporary folder, removed after."""
    path = Path(tempfile.mkdtemp(prefix="satchel-peers-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- satchel ----------------------------------------------------------------------------------


@asynccontextmanager
async def satchel(durability: str) -> AsyncIterator[Any]:
    """An open runtime in a fresh data folder."""
    async with folder() as where, open_runtime(where / "data", durability=durability) as rt:  # type: ignore[arg-type]
        yield rt


def satchel_state(durability: str) -> Opener:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        async with satchel(durability) as rt:
            sid = await rt.sessions.create(key=SESSION)

            async def op(i: int) -> None:
                await rt.sessions.set_state(sid, "step", small_value(i))

            yield op

    return opened


def satchel_create(durability: str) -> Opener:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        async with satchel(durability) as rt:

            async def op(i: int) -> None:
                await rt.sessions.create(key=f"{SESSION}-{i}", app=APP, user=USER)

            yield op

    return opened


EVENTS_KEPT, EVENTS_READ = 1000, 100


def satchel_recent(durability: str) -> Opener:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        async with satchel(durability) as rt:
            sid = await rt.sessions.create(key=SESSION)
            for start in range(0, EVENTS_KEPT, 100):
                await rt.sessions.append_events(
                    sid, [message(i) for i in range(start, start + 100)]
                )

            async def op(i: int) -> None:
                await rt.sessions.get(sid)
                await rt.sessions.events(sid, last=EVENTS_READ)

            yield op

    return opened


def satchel_save(durability: str, content: Content, size: int) -> Opener:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        async with satchel(durability) as rt:
            sid = await rt.sessions.create(key=SESSION)

            async def save(i: int, data: bytes) -> None:
                await rt.artifacts.store(sid, f"report-{i}.json", data, type="report")

            yield prepared_op(content, size, save)

    return opened


def satchel_load(size: int, names: int = 10) -> Opener:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        async with satchel("process") as rt:
            sid = await rt.sessions.create(key=SESSION)
            for n in range(names):
                await rt.artifacts.store(sid, f"report-{n}.json", json_like(n, size), type="report")

            async def op(i: int) -> None:
                await rt.artifacts.get(sid, f"report-{i % names}.json")

            yield op

    return opened


def satchel_versions(versions: int = 10) -> Opener:
    @asynccontextmanager
    async def opened() -> AsyncIterator[Op]:
        async with satchel("process") as rt:
            sid = await rt.sessions.create(key=SESSION)
            for v in range(versions):
                await rt.artifacts.store(sid, "report.json", json_like(v, KIB), type="report")

            async def op(i: int) -> None:
                await rt.artifacts.versions(sid, "report.json")

            yield op

    return opened
