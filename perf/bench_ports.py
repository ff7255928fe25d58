"""The storage ports against their floors: PostgreSQL records, S3 objects, local records.

Every contender of a section is open at once and they take turns op by op: operation ``i``
of every contender runs before operation ``i + 1`` of any, in an order that rotates with
``i`` (the ``interleaved`` idea of ``perf/interleave.py``, one operation a turn instead of a
batch, so that each operation is timed alone and a p99 can be read). The first ``--warm``
operations of each contender are not counted. Figures are microseconds per operation.

* PostgreSQL (``SATCHEL_TEST_POSTGRES``): ``PostgresRecords`` commit of one 1 KiB put,
  unconditional and with ``expect=Equals(previous)``, and ``get``; floors: a bare autocommit
  upsert on a connection of the driver mode ``PostgresRecords`` uses on the loop (psycopg's
  ``AsyncConnection`` on asyncio, a synchronous connection in a worker thread on Trio), the
  same from a synchronous connection called inline, a bare point select; beside them the
  bare call of the commit function (the PL/pgSQL cost without the pool and the wrapper) and
  a bare conditional ``UPDATE``. Then a commit of 10 puts against 10 bare upserts in one
  explicit transaction (and in one ``executemany``, which psycopg pipelines).
* S3 (``SATCHEL_TEST_S3``): ``S3Objects.put``/``get`` of 1 KiB and 1 MiB against boto3 called
  inline on the store's own client, and against a minimal async client here (httpx, signed
  with botocore's SigV4 signer).
* Local: ``LocalRecords`` over ``RocksStore`` (process durability) commit of one put against
  ``RocksStore.write`` of the same ``Batch``, and ``LocalRecords.get`` against ``kv.get``.

Run from the repository root, servers started by ``.ci/servers start DIR``:
``. DIR/env; python perf/bench_ports.py --loop asyncio|trio|uvloop``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio

Op = Callable[[int], Awaitable[Any]]
KIB = 1024
MIB = 1 << 20


def payload(size: int, i: int, salt: bytes = b"") -> bytes:
    """``size`` bytes that differ with ``i`` (and ``salt``) in their first bytes."""
    head = salt + i.to_bytes(8, "big")
    return head + _BASE[: size - len(head)] if size > len(head) else head[:size]


_BASE = os.urandom(2 * MIB)


async def op_by_op(contenders: Sequence[tuple[str, Op]], ops: int, warm: int) -> dict[str, Any]:
    """Per-operation seconds of each contender, taking turns op by op (see the module)."""
    times: list[list[float]] = [[] for _ in contenders]
    count = len(contenders)
    for i in range(warm + ops):
        shift = i % count
        for n in list(range(shift, count)) + list(range(shift)):
            call = contenders[n][1]
            started = time.perf_counter()
            await call(i)
            elapsed = time.perf_counter() - started
            if i >= warm:
                times[n].append(elapsed)
    return {name: sample for (name, _), sample in zip(contenders, times, strict=True)}


def summary(sample: list[float]) -> tuple[float, float]:
    """Median and p99 in microseconds."""
    ordered = sorted(sample)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return statistics.median(ordered) * 1e6, p99 * 1e6


ROWS: list[str] = []


def report(title: str, samples: dict[str, list[float]], floors: dict[str, str]) -> None:
    """Print (and keep) a markdown table: median, p99, ratio of medians to the floor."""
    medians = {name: summary(sample) for name, sample in samples.items()}
    lines = [f"\n### {title}\n", "| op | median µs | p99 µs | vs floor |", "|---|---:|---:|---|"]
    for name, (median, p99) in medians.items():
        floor = floors.get(name)
        ratio = f"{median / medians[floor][0]:.2f}x {floor}" if floor else "floor"
        lines.append(f"| {name} | {median:.1f} | {p99:.1f} | {ratio} |")
    text = "\n".join(lines)
    ROWS.append(text)
    print(text, flush=True)


# --- PostgreSQL -----------------------------------------------------------------------------


async def _trio_wait(gen: Any, fileno: int) -> Any:
    """Drive a psycopg generator on Trio: a zero-timeout poll first, then Trio's own wait
    on the socket (a prototype: with both directions pending and neither ready it waits
    for readable only, enough for small statements)."""
    import select

    import trio
    from psycopg.waiting import READY_R, READY_W, WAIT_R, WAIT_W

    try:
        state = next(gen)
        while True:
            readable, writable, _ = select.select(
                [fileno] if state & WAIT_R else [], [fileno] if state & WAIT_W else [], [], 0
            )
            ready = (READY_R if readable else 0) | (READY_W if writable else 0)
            if not ready:
                if state & WAIT_R:
                    await trio.lowlevel.wait_readable(fileno)
                    ready = READY_R
                else:
                    await trio.lowlevel.wait_writable(fileno)
                    ready = READY_W
            state = gen.send(ready)
    except StopIteration as done:
        return done.value


def trio_connection(url: str) -> Any:
    """A prototype: psycopg's ``AsyncConnection`` waiting through Trio instead of asyncio
    (connected synchronously; its lock is asyncio's, which an uncontended use never makes
    touch a loop)."""
    import psycopg
    from psycopg import waiting

    class TrioConnection(psycopg.AsyncConnection[Any]):
        # psycopg's signature; the prototype has no timeout.
        async def wait(
            self,
            gen: Any,
            interval: float = 0.1,
            timeout: float | None = None,  # noqa: ASYNC109
        ) -> Any:
            return await _trio_wait(gen, self.pgconn.socket)

    conn = waiting.wait_conn(TrioConnection._connect_gen(url), interval=0.1)
    conn._autocommit = True
    return conn


async def bench_postgres(url: str, loop: str, ops: int, warm: int) -> None:
    import psycopg

    from satchel.storage import Equals, PostgresRecords

    records = await PostgresRecords.open(url, table=f"bench_{uuid.uuid4().hex[:12]}")
    table = records.table
    inline = psycopg.Connection.connect(url, autocommit=True)
    # The record table is (key, value), or (space, key, value) in later layouts: the floors
    # write the same rows the commit function writes (space 0, the index).
    columns = {
        row[0]
        for row in inline.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
        )
    }
    if "space" in columns:
        upsert = (
            f"INSERT INTO {table} (space, key, value) VALUES (0, %b, %b) "
            "ON CONFLICT (space, key) DO UPDATE SET value = excluded.value"
        )
        update_if = f"UPDATE {table} SET value = %b WHERE space = 0 AND key = %b AND value = %b"
        select = f"SELECT value FROM {table} WHERE space = 0 AND key = %b"
    else:
        upsert = (
            f"INSERT INTO {table} (key, value) VALUES (%b, %b) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        update_if = f"UPDATE {table} SET value = %b WHERE key = %b AND value = %b"
        select = f"SELECT value FROM {table} WHERE key = %b"
    commit_call = records._commit_sql
    commit_params = _commit_params(records)

    # The driver mode PostgresRecords uses on this loop, on a connection of its own.
    if loop != "trio":
        aconn = await psycopg.AsyncConnection.connect(url, autocommit=True)

        async def execute(query: str, params: Sequence[Any]) -> int:
            cursor = await aconn.execute(query, params, binary=True)
            return cursor.rowcount

        async def fetch(query: str, params: Sequence[Any]) -> list[Any]:
            cursor = await aconn.execute(query, params, binary=True)
            return await cursor.fetchall()

        async def in_transaction(query: str, rows: list[tuple[bytes, bytes]]) -> None:
            async with aconn.transaction():
                for row in rows:
                    await aconn.execute(query, row, binary=True)

        async def execute_many(query: str, rows: list[tuple[bytes, bytes]]) -> None:
            async with aconn.transaction(), aconn.cursor(binary=True) as cursor:
                await cursor.executemany(query, rows)

        async def close_mode() -> None:
            await aconn.close()

    else:
        tconn = await anyio.to_thread.run_sync(
            lambda: psycopg.Connection.connect(url, autocommit=True)
        )

        async def execute(query: str, params: Sequence[Any]) -> int:
            def run() -> int:
                return tconn.execute(query, params, binary=True).rowcount

            return await anyio.to_thread.run_sync(run)

        async def fetch(query: str, params: Sequence[Any]) -> list[Any]:
            def run() -> list[Any]:
                return tconn.execute(query, params, binary=True).fetchall()

            return await anyio.to_thread.run_sync(run)

        async def in_transaction(query: str, rows: list[tuple[bytes, bytes]]) -> None:
            def run() -> None:
                with tconn.transaction():
                    for row in rows:
                        tconn.execute(query, row, binary=True)

            await anyio.to_thread.run_sync(run)

        async def execute_many(query: str, rows: list[tuple[bytes, bytes]]) -> None:
            def run() -> None:
                with tconn.transaction(), tconn.cursor(binary=True) as cursor:
                    cursor.executemany(query, rows)

            await anyio.to_thread.run_sync(run)

        async def close_mode() -> None:
            await anyio.to_thread.run_sync(tconn.close)

    # Each contender writes its own key; the conditional ones remember what they wrote.
    last: dict[bytes, bytes] = {}
    for key in (b"b", b"fb"):
        last[key] = payload(KIB, 0, b"init")
        inline.execute(upsert, (key, last[key]), binary=True)
    inline.execute(upsert, (b"c", payload(KIB, 0)), binary=True)

    async def commit_put(i: int) -> None:
        tx = records.transaction()
        tx.put(b"a", payload(KIB, i))
        await tx.commit()

    async def commit_put_expect(i: int) -> None:
        tx = records.transaction()
        value = payload(KIB, i)
        tx.put(b"b", value, expect=Equals(last[b"b"]))
        await tx.commit()
        last[b"b"] = value

    async def records_get(i: int) -> None:
        assert await records.get(b"c") is not None

    async def bare_upsert(i: int) -> None:
        await execute(upsert, (b"f1", payload(KIB, i)))

    async def bare_upsert_inline(i: int) -> None:
        inline.execute(upsert, (b"f2", payload(KIB, i)), binary=True)

    async def bare_select(i: int) -> None:
        assert await fetch(select, (b"c",))

    async def bare_select_inline(i: int) -> None:
        assert inline.execute(select, (b"c",), binary=True).fetchall()

    async def bare_commit_function(i: int) -> None:
        await execute(commit_call, commit_params(b"d", payload(KIB, i)))

    async def bare_update_if(i: int) -> None:
        value = payload(KIB, i)
        assert await execute(update_if, (value, b"fb", last[b"fb"])) == 1
        last[b"fb"] = value

    native = trio_connection(url) if loop == "trio" else None

    async def native_upsert(i: int) -> None:
        await native.execute(upsert, (b"f4", payload(KIB, i)), binary=True)

    async def native_select(i: int) -> None:
        cursor = await native.execute(select, (b"c",), binary=True)
        assert await cursor.fetchall()

    async def native_commit_function(i: int) -> None:
        await native.execute(commit_call, commit_params(b"e", payload(KIB, i)), binary=True)

    mode = "sync conn in thread" if loop == "trio" else "AsyncConnection"
    single = [
        ("(a) commit 1 put", commit_put),
        ("(b) commit 1 put expect=Equals", commit_put_expect),
        ("(c) get", records_get),
        (f"(f1) bare upsert, {mode}", bare_upsert),
        ("(f2) bare upsert, sync inline", bare_upsert_inline),
        (f"(f3) bare select, {mode}", bare_select),
        ("(f3i) bare select, sync inline", bare_select_inline),
        (f"(d) bare SELECT t_commit(...) 1 put, {mode}", bare_commit_function),
        (f"(f1b) bare UPDATE ... WHERE value=, {mode}", bare_update_if),
    ]
    floors = {
        "(a)": "(f1)",
        "(b)": "(f1)",
        "(c)": "(f3)",
        "(f2)": "(f1)",
        "(f3i)": "(f3)",
        "(d)": "(f1)",
        "(f1b)": "(f1)",
        "(f4)": "(f1)",
        "(f5)": "(f3)",
        "(d2)": "(f1)",
    }
    if native is not None:
        single += [
            ("(f4) bare upsert, AsyncConnection on Trio (prototype)", native_upsert),
            ("(f5) bare select, AsyncConnection on Trio (prototype)", native_select),
            ("(d2) bare SELECT t_commit(...), AsyncConnection on Trio", native_commit_function),
        ]
    samples = await op_by_op(single, ops, warm)
    by_tag = {name.split()[0]: name for name, _ in single}
    report(
        f"PostgreSQL, {loop}: one 1 KiB record ({ops} ops each, op by op)",
        samples,
        {by_tag[tag]: by_tag[floor] for tag, floor in floors.items() if tag in by_tag},
    )

    def ten(i: int, salt: bytes) -> list[tuple[bytes, bytes]]:
        return [(salt + bytes([k]), payload(KIB, i, bytes([k]))) for k in range(10)]

    async def commit_ten(i: int) -> None:
        tx = records.transaction()
        for key, value in ten(i, b"m"):
            tx.put(key, value)
        await tx.commit()

    async def bare_ten(i: int) -> None:
        await in_transaction(upsert, ten(i, b"n"))

    async def bare_ten_many(i: int) -> None:
        await execute_many(upsert, ten(i, b"o"))

    async def bare_ten_inline(i: int) -> None:
        with inline.transaction():
            for row in ten(i, b"p"):
                inline.execute(upsert, row, binary=True)

    async def native_ten(i: int) -> None:
        async with native.transaction(), native.cursor(binary=True) as cursor:
            await cursor.executemany(upsert, ten(i, b"q"))

    many = [
        ("commit 10 puts", commit_ten),
        (f"10 bare upserts in BEGIN/COMMIT, {mode}", bare_ten),
        (f"10 upserts executemany (pipelined), {mode}", bare_ten_many),
        ("10 bare upserts in BEGIN/COMMIT, sync inline", bare_ten_inline),
    ]
    if native is not None:
        many.append(("10 upserts executemany, AsyncConnection on Trio (prototype)", native_ten))
    ten_ops = max(100, ops // 3)
    samples = await op_by_op(many, ten_ops, warm)
    names = [name for name, _ in many]
    report(
        f"PostgreSQL, {loop}: ten 1 KiB records in one transaction ({ten_ops} ops each)",
        samples,
        {name: names[1] for name in names if name != names[1]},
    )

    await close_mode()
    if native is not None:
        native.pgconn.finish()
    inline.close()
    await records.drop()
    await records.aclose()


def _commit_params(records: Any) -> Callable[[bytes, bytes], Sequence[Any]]:
    """The commit function's arguments for one unconditional put, as ``records`` makes
    them (five arrays; six, with spaces, where the module has ``_commit_arrays``)."""
    from satchel.storage import _postgres

    arrays = getattr(_postgres, "_commit_arrays", None)
    if arrays is None:
        return lambda key, value: ([1], [key], [value], [0], [None])

    def params(key: bytes, value: bytes) -> Sequence[Any]:
        tx = records.transaction()
        tx.put(key, value)
        return arrays(tx.batch)  # type: ignore[no-any-return]

    return params


# --- S3 --------------------------------------------------------------------------------------


class HttpxS3:
    """A minimal async S3 client: path-style PUT/GET through httpx, SigV4 by botocore."""

    def __init__(self, endpoint: str, bucket: str, region: str) -> None:
        import httpx
        from botocore.auth import S3SigV4Auth
        from botocore.credentials import Credentials

        self._base = f"{endpoint.rstrip('/')}/{bucket}/"
        self._signer = S3SigV4Auth(Credentials("satchel", "satchel"), "s3", region)
        self._client = httpx.AsyncClient(timeout=30.0)

    def _signed(self, method: str, key: str, body: bytes) -> tuple[str, dict[str, str]]:
        from botocore.awsrequest import AWSRequest

        url = self._base + quote(key, safe="/~")
        request = AWSRequest(method=method, url=url, data=body)
        self._signer.add_auth(request)
        return url, dict(request.headers.items())

    async def put(self, key: str, data: bytes) -> None:
        url, headers = self._signed("PUT", key, data)
        answer = await self._client.put(url, content=data, headers=headers)
        if answer.status_code != 200:
            raise RuntimeError(f"PUT {key}: {answer.status_code} {answer.text[:200]}")

    async def get(self, key: str) -> bytes:
        url, headers = self._signed("GET", key, b"")
        answer = await self._client.get(url, headers=headers)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {key}: {answer.status_code} {answer.text[:200]}")
        return answer.content

    async def aclose(self) -> None:
        await self._client.aclose()


async def bench_s3(url: str, loop: str, ops: int, big_ops: int, warm: int) -> None:
    from satchel.storage import S3Location, S3Objects

    run = uuid.uuid4().hex[:12]
    base, _, query = url.partition("?")
    objects = await S3Objects.open(f"{base.rstrip('/')}/bench-{run}?{query}")
    where = S3Location.parse(url)
    assert where.endpoint is not None
    client = objects._client  # boto3, the store's own (same config)
    bucket, prefix = where.bucket, f"bench-{run}/"
    proto = HttpxS3(where.endpoint, bucket, where.region)
    # The prototype reads what boto3 wrote, and boto3 what it wrote.
    check = payload(KIB, 7)
    await proto.put(prefix + "check", check)
    assert client.get_object(Bucket=bucket, Key=prefix + "check")["Body"].read() == check
    assert await proto.get(prefix + "check") == check

    for size, count in ((KIB, ops), (MIB, big_ops)):
        label = "1 KiB" if size == KIB else "1 MiB"
        tag = f"{size}"

        async def port_put(i: int, size: int = size, tag: str = tag) -> None:
            await objects.put(f"port-{tag}-{i}", payload(size, i))

        async def boto_put(i: int, size: int = size, tag: str = tag) -> None:
            body = payload(size, i)
            client.put_object(Bucket=bucket, Key=f"{prefix}boto-{tag}-{i}", Body=body)

        async def httpx_put(i: int, size: int = size, tag: str = tag) -> None:
            await proto.put(f"{prefix}httpx-{tag}-{i}", payload(size, i))

        async def port_get(i: int, size: int = size, tag: str = tag) -> None:
            assert len(await objects.get(f"port-{tag}-{i}")) == size

        async def boto_get(i: int, size: int = size, tag: str = tag) -> None:
            answer = client.get_object(Bucket=bucket, Key=f"{prefix}boto-{tag}-{i}")
            assert len(answer["Body"].read()) == size

        async def httpx_get(i: int, size: int = size, tag: str = tag) -> None:
            assert len(await proto.get(f"{prefix}httpx-{tag}-{i}")) == size

        puts = [
            (f"S3Objects.put {label} (boto3 in thread)", port_put),
            (f"boto3 put_object {label} inline", boto_put),
            (f"httpx+SigV4 PUT {label}", httpx_put),
        ]
        samples = await op_by_op(puts, count, warm)
        floor = puts[1][0]
        report(
            f"S3, {loop}: put {label} ({count} ops each)",
            samples,
            {puts[0][0]: floor, puts[2][0]: floor},
        )
        gets = [
            (f"S3Objects.get {label} (boto3 in thread)", port_get),
            (f"boto3 get_object {label} inline", boto_get),
            (f"httpx+SigV4 GET {label}", httpx_get),
        ]
        samples = await op_by_op(gets, count, warm)
        floor = gets[1][0]
        report(
            f"S3, {loop}: get {label} ({count} ops each)",
            samples,
            {gets[0][0]: floor, gets[2][0]: floor},
        )

    # Clean up: every key of this run, 1000 a request.
    keys = [key async for key in objects.list()]
    for start in range(0, len(keys), 1000):
        chunk = [{"Key": prefix + key} for key in keys[start : start + 1000]]
        client.delete_objects(Bucket=bucket, Delete={"Objects": chunk})
    await proto.aclose()
    await objects.aclose()


# --- Local -----------------------------------------------------------------------------------


async def bench_local(loop: str, ops: int, warm: int) -> None:
    from satchel.storage import Batch, LocalRecords, RocksStore

    with tempfile.TemporaryDirectory() as folder:
        kv = RocksStore(Path(folder) / "db")
        records = LocalRecords(kv)
        kv.write(_one(b"c", payload(KIB, 0), Batch))

        async def commit_put(i: int) -> None:
            tx = records.transaction()
            tx.put(b"a", payload(KIB, i))
            await tx.commit()

        async def kv_write(i: int) -> None:
            batch = Batch()
            batch.put(b"b", payload(KIB, i))
            kv.write(batch)

        async def records_get(i: int) -> None:
            assert await records.get(b"c") is not None

        async def kv_get(i: int) -> None:
            assert kv.get(b"c") is not None

        contenders = [
            ("LocalRecords commit 1 put (1 KiB)", commit_put),
            ("RocksStore.write(Batch 1 put)", kv_write),
            ("LocalRecords.get", records_get),
            ("RocksStore.get", kv_get),
        ]
        samples = await op_by_op(contenders, ops, warm)
        names = [name for name, _ in contenders]
        report(
            f"Local (RocksDB, process durability), {loop} ({ops} ops each)",
            samples,
            {names[0]: names[1], names[2]: names[3]},
        )
        await records.aclose()


def _one(key: bytes, value: bytes, batch_type: Any) -> Any:
    batch = batch_type()
    batch.put(key, value)
    return batch


async def main(args: argparse.Namespace) -> None:
    load = os.getloadavg()
    print(f"loop {args.loop}; load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    sections = set(args.only.split(","))
    if "pg" in sections:
        url = os.environ.get("SATCHEL_TEST_POSTGRES")
        if url:
            await bench_postgres(url, args.loop, args.ops, args.warm)
        else:
            print("SATCHEL_TEST_POSTGRES is not set: PostgreSQL skipped")
    if "s3" in sections:
        url = os.environ.get("SATCHEL_TEST_S3")
        if url:
            await bench_s3(url, args.loop, args.s3_ops, args.s3_big_ops, args.warm)
        else:
            print("SATCHEL_TEST_S3 is not set: S3 skipped")
    if "local" in sections:
        await bench_local(args.loop, args.local_ops, args.warm)
    load = os.getloadavg()
    print(f"\nload average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loop", choices=["asyncio", "uvloop", "trio"], default="asyncio")
    parser.add_argument("--only", default="pg,s3,local", help="sections: pg,s3,local")
    parser.add_argument("--ops", type=int, default=1000, help="PostgreSQL ops per contender")
    parser.add_argument("--s3-ops", type=int, default=300, help="S3 1 KiB ops per contender")
    parser.add_argument("--s3-big-ops", type=int, default=100, help="S3 1 MiB ops")
    parser.add_argument("--local-ops", type=int, default=5000, help="local ops per contender")
    parser.add_argument("--warm", type=int, default=20, help="uncounted first ops")
    arguments = parser.parse_args()
    if arguments.loop == "uvloop":
        anyio.run(main, arguments, backend="asyncio", backend_options={"use_uvloop": True})
    else:
        anyio.run(main, arguments, backend=arguments.loop)
    sys.stdout.flush()
