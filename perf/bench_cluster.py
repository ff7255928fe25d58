"""A satchel cluster on one PostgreSQL: set_state throughput over 1,000 sessions with 1, 2 and 3
nodes, the latency a forwarded request adds, and what PostgreSQL itself sustains here.

- ``throughput``: N ``satchel serve --cluster`` processes (a fresh table each time); 1,000
  sessions, session i first written (and so served) through node i mod N; then ``--clients``
  keep-alive connections write ``PUT /sessions/{id}/state/k`` for ``--seconds``, each request
  to the node serving its session (a client that knows where sessions live). The client is a
  minimal HTTP/1.1 writer on asyncio streams, so little of the machine goes to it.
- ``forwarding``: two nodes; one session served by node 1; ``GET /sessions/{id}/state/k``
  alternately through node 1 and through node 2 (which forwards to node 1), one at a time;
  medians and their difference.
- ``postgresql``: the floor: ``--clients`` psycopg connections each upserting one row of the
  same size in autocommit for ``--seconds`` (writes/s the database sustains on this machine).

Run: ``eval "$(.ci/servers start /tmp/srv)"; python perf/bench_cluster.py`` (the servers'
``SATCHEL_TEST_POSTGRES``); prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TOKEN = "bench-cluster-token-0123456789abcdef"


class Node:
    """One ``satchel serve --cluster`` process."""

    def __init__(self, name: str, store: str, folder: Path) -> None:
        token = folder / "token"
        token.write_text(TOKEN)
        self.out = folder / f"{name}.out"
        command = [
            sys.executable, "-c", "import sys; from satchel._cli import main; sys.exit(main())",
            "--json", "serve", "--store", store, "--cluster", "--node-id", name, "--port", "0",
            "--token-file", str(token), "--log-level", "error",
        ]  # fmt: skip
        with open(self.out, "wb") as out, open(folder / f"{name}.err", "wb") as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err)
        deadline = time.monotonic() + 60
        while True:
            try:
                url = json.loads(self.out.read_text())["url"]
                break
            except (ValueError, KeyError):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"node {name} did not start") from None
                time.sleep(0.05)
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


class Connection:
    """One keep-alive HTTP/1.1 connection: a request out, its answer in."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, place: tuple[str, int]
    ) -> None:
        self.reader, self.writer, self.place = reader, writer, place
        self.uses = 0

    @classmethod
    async def open(cls, node: Node) -> Connection:
        reader, writer = await asyncio.open_connection(node.host, node.port)
        return cls(reader, writer, (node.host, node.port))

    async def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        self.uses += 1
        if self.uses > 900:  # hypercorn closes a connection after 1,000 requests
            self.close()
            self.reader, self.writer = await asyncio.open_connection(*self.place)
            self.uses = 1
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), answer

    def close(self) -> None:
        self.writer.close()


def store_url(table: str) -> str:
    postgres = os.environ["SATCHEL_TEST_POSTGRES"]
    return f"{postgres}{'&' if '?' in postgres else '?'}satchel_table={table}"


async def drop(table: str) -> None:
    from satchel.storage import PostgresLeases, PostgresRecords

    url = os.environ["SATCHEL_TEST_POSTGRES"]
    records = await PostgresRecords.open(url, table=table)
    leases = await PostgresLeases.open(url, table=table)
    await leases.drop()
    await records.drop()
    await leases.aclose()
    await records.aclose()


async def sessions_on(nodes: list[Node], count: int) -> list[tuple[str, Node]]:
    """``count`` sessions, session i first written through (and so served by) node i mod N."""
    made: list[tuple[str, Node]] = []
    conns = [await Connection.open(node) for node in nodes]
    for i in range(count):
        status, body = await conns[0].call("POST", "/sessions", b"{}")
        assert status == 201, body
        session_id = json.loads(body)["id"]
        status, body = await conns[i % len(nodes)].call(
            "PUT", f"/sessions/{session_id}/state/k", b'{"value": 0}'
        )
        assert status == 204, body
        made.append((session_id, nodes[i % len(nodes)]))
    for conn in conns:
        conn.close()
    return made


async def throughput(n_nodes: int, args: argparse.Namespace, folder: Path) -> float:
    table = f"bench_{uuid.uuid4().hex[:12]}"
    nodes = [Node(f"n{i}", store_url(table), folder) for i in range(n_nodes)]
    try:
        placed = await sessions_on(nodes, args.sessions)
        done = 0
        stop_at = 0.0

        async def client(k: int) -> None:
            nonlocal done
            mine = placed[k :: args.clients]
            conns = {id(node): await Connection.open(node) for node in nodes}
            step = 0
            while time.monotonic() < stop_at:
                session_id, node = mine[step % len(mine)]
                body = json.dumps({"value": step}).encode()
                status, answer = await conns[id(node)].call(
                    "PUT", f"/sessions/{session_id}/state/k", body
                )
                assert status == 204, answer
                done += 1
                step += 1
            for conn in conns.values():
                conn.close()

        stop_at = time.monotonic() + args.seconds
        started = time.monotonic()
        await asyncio.gather(*(client(k) for k in range(args.clients)))
        return done / (time.monotonic() - started)
    finally:
        for node in nodes:
            node.stop()
        await drop(table)


async def forwarding(args: argparse.Namespace, folder: Path) -> tuple[float, float]:
    table = f"bench_{uuid.uuid4().hex[:12]}"
    nodes = [Node(f"n{i}", store_url(table), folder) for i in range(2)]
    try:
        ((session_id, _),) = await sessions_on(nodes[:1], 1)
        owner, other = await Connection.open(nodes[0]), await Connection.open(nodes[1])
        direct: list[float] = []
        forwarded: list[float] = []
        path = f"/sessions/{session_id}/state/k"
        for i in range(args.forwarded + 50):
            for conn, times in ((owner, direct), (other, forwarded)):
                started = time.perf_counter()
                status, _ = await conn.call("GET", path)
                if i >= 50:  # warm-up (connections to the owner, caches)
                    times.append(time.perf_counter() - started)
                assert status == 200
        owner.close()
        other.close()
        return statistics.median(direct) * 1e6, statistics.median(forwarded) * 1e6
    finally:
        for node in nodes:
            node.stop()
        await drop(table)


async def postgres_floor(args: argparse.Namespace) -> float:
    import psycopg

    table = f"floor_{uuid.uuid4().hex[:12]}"
    url = os.environ["SATCHEL_TEST_POSTGRES"]
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"CREATE TABLE {table} (key bytea PRIMARY KEY, value bytea)")
    done = 0
    stop_at = time.monotonic() + args.seconds
    value = os.urandom(120)

    async def writer(k: int) -> None:
        nonlocal done
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            step = 0
            while time.monotonic() < stop_at:
                await conn.execute(
                    f"INSERT INTO {table} VALUES (%b, %b) ON CONFLICT (key) DO UPDATE "
                    "SET value = excluded.value",
                    (f"{k}:{step % 50}".encode(), value),
                )
                done += 1
                step += 1

    started = time.monotonic()
    await asyncio.gather(*(writer(k) for k in range(args.clients)))
    rate = done / (time.monotonic() - started)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"DROP TABLE {table}")
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--nodes", default="1,2,3")
    parser.add_argument("--forwarded", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        print(f"cores: {os.cpu_count()}; load before: {os.getloadavg()[0]:.2f}")
        floor = await postgres_floor(args)
        print("| nodes | set_state/s | per node |\n|---:|---:|---:|")
        for n in map(int, args.nodes.split(",")):
            rate = await throughput(n, args, folder)
            print(f"| {n} | {rate:,.0f} | {rate / n:,.0f} |")
        print(f"\nPostgreSQL alone ({args.clients} connections, one-row upserts): {floor:,.0f}/s")
        direct, forwarded = await forwarding(args, folder)
        print(
            f"GET state, median: to the owner {direct:,.0f} µs, through another node "
            f"{forwarded:,.0f} µs (+{forwarded - direct:,.0f} µs)"
        )
        print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
