"""satchel on PostgreSQL with S3, beside RocksDB and beside the floors of the same work.

Rows: session create, set_state, artifact store and get of 1 KiB and of 1 MiB. Contenders in
each row, all open at once and taking turns (``interleave.interleaved``), on asyncio:

- ``pg+s3``: a runtime on PostgreSQL with large blob values in S3;
- ``rocksdb``: a runtime on a data folder (process durability);
- ``floor``: the bare driver doing the same storage work — an autocommit ``INSERT`` of bytes
  of the size satchel writes (a new row per call, one round trip) for the small rows; a bare
  S3 ``PUT`` / ``GET`` of the same 1 MiB for the large ones (boto3 called inline: no thread).

Run: ``eval "$(.ci/servers start)"; python perf/bench_networked.py [--ops N] [--repeats R]``
(``SATCHEL_TEST_POSTGRES`` and ``SATCHEL_TEST_S3`` name the servers).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from interleave import interleaved

from satchel import Runtime, open_runtime
from satchel.storage import PostgresRecords

Op = Callable[[int], Awaitable[Any]]
SMALL = 1024
LARGE = 1 << 20


def _content(i: int, size: int) -> bytes:
    """New content for every operation (so nothing is deduplicated away); random bytes, so
    compression saves satchel nothing over the floor's bare PUT of the same bytes."""
    return f"{i:012d}".encode() + os.urandom(size - 12)


@asynccontextmanager
async def _pg_runtime() -> AsyncIterator[Runtime]:
    postgres = os.environ["SATCHEL_TEST_POSTGRES"]
    bucket, _, query = os.environ["SATCHEL_TEST_S3"].partition("?")
    table = f"bench_{uuid.uuid4().hex[:12]}"
    store = f"{postgres}{'&' if '?' in postgres else '?'}satchel_table={table}"
    try:
        async with open_runtime(store=store, objects=f"{bucket}/{table}?{query}") as rt:
            yield rt
    finally:
        records = await PostgresRecords.open(postgres, table=table)
        await records.drop()
        await records.aclose()


@asynccontextmanager
async def _rocks_runtime() -> AsyncIterator[Runtime]:
    with TemporaryDirectory() as folder:
        async with open_runtime(Path(folder) / "data") as rt:
            yield rt


def _satchel(opener: Callable[[], Any], work: str) -> Callable[[], Any]:
    @asynccontextmanager
    async def open_() -> AsyncIterator[Op]:
        async with opener() as rt:
            sid = await rt.sessions.create(name="bench")
            size = LARGE if work.endswith("1m") else SMALL
            if work.startswith("get"):
                await rt.artifacts.store(sid, "doc", _content(-1, size), type="file")

            async def op(i: int) -> Any:
                if work == "create":
                    return await rt.sessions.create(name=f"s{i}")
                if work == "set_state":
                    return await rt.sessions.set_state(sid, "k", {"step": i, "note": "x" * 64})
                if work.startswith("store"):
                    return await rt.artifacts.store(sid, f"a{i}", _content(i, size), type="file")
                return await rt.artifacts.get(sid, "doc")

            yield op

    return open_


def _floor(work: str) -> Callable[[], Any]:
    @asynccontextmanager
    async def open_() -> AsyncIterator[Op]:
        import boto3
        import psycopg
        from botocore.config import Config

        table = f"floor_{uuid.uuid4().hex[:12]}"
        conn = await psycopg.AsyncConnection.connect(
            os.environ["SATCHEL_TEST_POSTGRES"], autocommit=True
        )
        await conn.execute(f"CREATE TABLE {table} (key bytea PRIMARY KEY, value bytea)")
        bucket_url, _, query = os.environ["SATCHEL_TEST_S3"].partition("?")
        endpoint = query.partition("endpoint=")[2].split("&")[0]
        bucket = bucket_url.removeprefix("s3://")
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="satchel",
            aws_secret_access_key="satchel",
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        s3.put_object(Bucket=bucket, Key=f"{table}/doc", Body=_content(-1, LARGE))
        # The bytes satchel's small writes carry: a session record with its indexes, a
        # state value, an artifact version with 1 KiB of content.
        sizes = {"create": 400, "set_state": 120, "store_1k": 1400, "get_1k": 0}
        try:

            async def op(i: int) -> Any:
                if work.endswith("1m"):
                    if work.startswith("store"):
                        body = _content(i, LARGE)
                        return s3.put_object(Bucket=bucket, Key=f"{table}/{i}", Body=body)
                    return s3.get_object(Bucket=bucket, Key=f"{table}/doc")["Body"].read()
                if work == "get_1k":
                    cursor = await conn.execute(
                        f"SELECT value FROM {table} WHERE key = %b", (b"k0",), binary=True
                    )
                    return await cursor.fetchall()
                await conn.execute(
                    f"INSERT INTO {table} VALUES (%b, %b)",
                    (f"k{i}".encode(), os.urandom(sizes[work])),
                )

            if work == "get_1k":
                await conn.execute(
                    f"INSERT INTO {table} VALUES (%b, %b)", (b"k0", os.urandom(SMALL))
                )
            yield op
        finally:
            await conn.execute(f"DROP TABLE {table}")
            await conn.close()

    return open_


WORKS = ["create", "set_state", "store_1k", "get_1k", "store_1m", "get_1m"]


async def main(ops: int, repeats: int, works: list[str]) -> None:
    print("| work | pg+s3 µs | rocksdb µs | floor µs | pg+s3 / floor |")
    print("|---|---:|---:|---:|---:|")
    for work in works:
        scale = 1 if not work.endswith("1m") else max(1, ops // 10)
        openers = [_satchel(_pg_runtime, work), _satchel(_rocks_runtime, work), _floor(work)]
        pg, rocks, floor = await interleaved(openers, max(1, ops // scale), repeats)
        print(
            f"| {work} | {pg * 1e6:,.0f} | {rocks * 1e6:,.0f} | {floor * 1e6:,.0f} "
            f"| {pg / floor:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=100, help="operations per round (small rows)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds counted")
    parser.add_argument("--only", default=",".join(WORKS), help="rows, comma-separated")
    args = parser.parse_args()
    asyncio.run(main(args.ops, args.repeats, args.only.split(",")))
