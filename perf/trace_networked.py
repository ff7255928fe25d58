"""Round trips per operation of bench_networked's rows: each PostgreSQL call and S3 call a
satchel operation on PostgreSQL+S3 makes, with the keys' prefixes and the batch sizes.

Each call is timed (a nested call's time is inside its caller's too). Run:
``eval "$(.ci/servers start)"; python perf/trace_networked.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from satchel import open_runtime
from satchel.storage import PostgresRecords, S3Objects

CALLS: list[str] = []


def _wrap(cls: Any, name: str, describe: Any) -> None:
    original = getattr(cls, name)

    async def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(self, *args, **kwargs)
        finally:
            took = (time.perf_counter() - started) * 1e6
            CALLS.append(f"{took:7.0f} µs {cls.__name__}.{name} {describe(*args, **kwargs)}")

    setattr(cls, name, traced)


def _key(key: bytes, *rest: Any, **kw: Any) -> str:
    return repr(key[:6])


def _batch(batch: Any, *rest: Any, **kw: Any) -> str:
    ops = Counter(f"{op}:{key[:3]!r}" for op, _, key, _ in batch.ops)
    return f"{len(batch)} ops, {len(batch.conditions or ())} cond {dict(ops)}"


_wrap(PostgresRecords, "get", _key)
_wrap(PostgresRecords, "get_many", lambda keys, *a, **k: f"{len(keys)} keys")
_wrap(PostgresRecords, "scan", _key)
_wrap(PostgresRecords, "write", _batch)
_wrap(PostgresRecords, "write_reading", _batch)
for method in ("put", "get", "get_range", "delete", "list"):
    _wrap(S3Objects, method, lambda key, *a, **k: str(key)[-20:])


async def main() -> None:
    postgres = os.environ["SATCHEL_TEST_POSTGRES"]
    bucket, _, query = os.environ["SATCHEL_TEST_S3"].partition("?")
    table = f"trace_{uuid.uuid4().hex[:12]}"
    store = f"{postgres}{'&' if '?' in postgres else '?'}satchel_table={table}"
    try:
        async with open_runtime(store=store, objects=f"{bucket}/{table}?{query}") as rt:
            sid = await rt.sessions.create(name="warm")
            await rt.artifacts.store(sid, "doc", b"x" * 1024, type="file")
            await rt.artifacts.store(sid, "big", os.urandom(1 << 20), type="file")
            await rt.artifacts.get(sid, "doc")
            await rt.artifacts.get(sid, "big")
            ops = {
                "create": lambda i: rt.sessions.create(name=f"s{i}"),
                "set_state": lambda i: rt.sessions.set_state(sid, "k", {"step": i}),
                "store_1k": lambda i: rt.artifacts.store(
                    sid, f"a{i}", os.urandom(1024), type="file"
                ),
                "store_1k_same_name": lambda i: rt.artifacts.store(
                    sid, "doc", os.urandom(1024), type="file"
                ),
                "get_1k": lambda i: rt.artifacts.get(sid, "doc"),
                "store_1m": lambda i: rt.artifacts.store(
                    sid, f"b{i}", os.urandom(1 << 20), type="file"
                ),
                "get_1m": lambda i: rt.artifacts.get(sid, "big"),
            }
            for work, op in ops.items():
                for i in range(20):  # warm: statements prepared, connections open
                    await op(100 + i)
                CALLS.clear()
                started = time.perf_counter()
                await op(1)
                took = (time.perf_counter() - started) * 1e6
                print(f"{work}: {len(CALLS)} calls, {took:.0f} µs in all")
                for call in CALLS:
                    print("   ", call)
    finally:
        records = await PostgresRecords.open(postgres, table=table)
        await records.drop()
        await records.aclose()


if __name__ == "__main__":
    asyncio.run(main())
