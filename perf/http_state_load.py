"""State writes and reads on `satchel serve` from many keep-alive clients: operations/s,
latency percentiles, and the CPU both sides spent.

Starts ``satchel serve`` in its own process on a fresh data folder (``--server-args`` are
``--backend``
and ``--server-args`` are passed to it), creates one session per client,
then runs ``--clients`` clients, each on one kept-alive HTTP/1.1 connection, alternating

* ``PUT /sessions/{id}/state/counter`` with ``{"value": n}`` (a write), and
* ``GET /sessions/{id}/state/counter`` (a read),

for ``--seconds`` after a warm-up. Each client waits for its answer before the next request
(closed loop), so ops/s times latency is about the client count.

The client is kept cheap so that it leaves the server its core: raw asyncio streams on
uvloop, each request pre-formatted bytes, each answer parsed only as far as its status line
and ``Content-Length``; ``--processes`` splits the clients over several client processes.
The server's CPU is read from ``/proc/<pid>/stat`` (every thread of it, RocksDB's too),
the clients' from ``getrusage`` in each client process. The load average is printed with
every figure: the machine is shared.

Run (from the repository root)::

    python perf/http_state_load.py [--clients 50] [--seconds 20] [--processes 1]
        [--backend trio|asyncio] [--server-args=...] [--shared-session]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from satchel._serve import find_server

_TICKS = os.sysconf("SC_CLK_TCK")


def start_server(folder: Path, backend: str, extra: list[str]) -> subprocess.Popen[bytes]:
    """``satchel --backend <backend> serve`` on ``folder`` (``extra``: more ``serve``
    options), once it answers."""
    command = [sys.executable, "-m", "satchel._cli", "--backend", backend, "serve"]
    command += ["--data", str(folder), "--port", "0", "--log-level", "warning", *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while find_server(folder) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    return process


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Result:
    """What one client process measured."""

    latencies: list[float]
    writes: int
    reads: int
    cpu: float  # this process's CPU seconds during the measured run


class Connection:
    """One kept-alive HTTP/1.1 connection, parsing answers minimally."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request`` (whole, bytes) and read the answer: status and body."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return status, body


def requests_for(host: str, token: str, session: str) -> tuple[bytes, bytes]:
    """The write and read requests of one client, bytes ready to send (the write's body is
    filled in per request)."""
    common = f"Host: {host}\r\nAuthorization: Bearer {token}\r\n"
    path = f"/sessions/{session}/state/counter"
    write = f"PUT {path} HTTP/1.1\r\n{common}Content-Type: application/json\r\n"
    read = f"GET {path} HTTP/1.1\r\n{common}\r\n"
    return write.encode(), read.encode()


async def client_run(
    url: str, token: str, sessions: list[str], warmup: float, seconds: float
) -> Result:
    """The clients of this process, one per session, each writing and reading in turn."""
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    host = f"{parts.hostname}:{parts.port}"
    latencies: list[float] = []
    counts = [0, 0]
    measuring = False
    stop = False

    async def client(session: str) -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        connection = Connection(reader, writer)
        write_head, read = requests_for(host, token, session)
        n = 0
        while not stop:
            n += 1
            if n % 2:
                body = b'{"value": %d}' % n
                request = write_head + b"Content-Length: %d\r\n\r\n" % len(body) + body
                expected = 204
            else:
                request, expected = read, 200
            started = time.perf_counter()
            status, answer = await connection.exchange(request)
            elapsed = time.perf_counter() - started
            if status != expected:
                raise SystemExit(f"{request[:40]!r}: {status} {answer[:200]!r}")
            if measuring and not stop:
                latencies.append(elapsed)
                counts[n % 2 == 0] += 1
        writer.close()

    tasks = [asyncio.ensure_future(client(s)) for s in sessions]
    await asyncio.sleep(warmup)
    measuring = True
    before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.sleep(seconds)
    stop = True
    after = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*tasks)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Result(latencies, counts[0], counts[1], cpu)


def _client_process(
    url: str, token: str, sessions: list[str], warmup: float, seconds: float
) -> Result:
    import uvloop

    return uvloop.run(client_run(url, token, sessions, warmup, seconds))


async def make_sessions(url: str, token: str, count: int) -> list[str]:
    """``count`` new sessions, made over one connection."""
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    connection = Connection(reader, writer)
    host = f"{parts.hostname}:{parts.port}"
    made = []
    for i in range(count):
        body = json.dumps({"name": f"load-{i}"}).encode()
        request = (
            f"POST /sessions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        status, answer = await connection.exchange(request)
        if status != 201:
            raise SystemExit(f"POST /sessions: {status} {answer[:200]!r}")
        made.append(json.loads(answer)["id"])
    writer.close()
    return made


def percentile(ordered: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of the sorted ``ordered``."""
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="satchel-http-state-"))
    if args.attach is None:
        process: subprocess.Popen[bytes] | None = start_server(
            folder / "data", args.backend, shlex.split(args.server_args)
        )
        info = find_server(folder / "data")
    else:  # a server started by hand (an experiment), left running
        process = None
        info = find_server(args.attach)
    try:
        assert info is not None
        pid = info.pid
        count = 1 if args.shared_session else args.clients
        made = asyncio.run(make_sessions(info.url, info.token, count))
        sessions = [made[i % count] for i in range(args.clients)]
        shares = [sessions[p :: args.processes] for p in range(args.processes)]
        loads = [load_average()]
        with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
            # The server's CPU is read over the measured window: warm-up excluded.
            pending = [
                pool.apply_async(
                    _client_process, (info.url, info.token, share, args.warmup, args.seconds)
                )
                for share in shares
            ]
            time.sleep(args.warmup + 0.5)  # the pool's processes take a moment to start
            server_before = cpu_seconds(pid)
            time.sleep(args.seconds - 1.0)
            server_cpu_window = cpu_seconds(pid) - server_before
            window = args.seconds - 1.0
            results = [p.get() for p in pending]
        loads.append(load_average())
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    latencies = sorted(x for r in results for x in r.latencies)
    ops = len(latencies) / args.seconds
    writes = sum(r.writes for r in results) / args.seconds
    reads = sum(r.reads for r in results) / args.seconds
    client_cpu = sum(r.cpu for r in results)
    server_per_op = server_cpu_window / (ops * window) * 1e3
    label = args.label or f"{args.backend} {args.server_args}".strip()
    print(
        f"| {label} | {args.clients} | {args.processes} | "
        f"{ops:,.0f} | {writes:,.0f} | {reads:,.0f} | "
        f"{percentile(latencies, 0.5) * 1e3:.1f} | {percentile(latencies, 0.99) * 1e3:.1f} | "
        f"{server_cpu_window / window:.2f} | {server_per_op:.3f} | "
        f"{client_cpu / args.seconds:.2f} | {loads[0]} -> {loads[1]} |"
    )


HEADER = (
    "| server | clients | client procs | ops/s | writes/s | reads/s | p50 ms | p99 ms | "
    "server CPU (cores) | server CPU ms/op | client CPU (cores) | load avg before -> after |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--backend", default="asyncio", help="the server's event loop (serve's default)"
    )
    parser.add_argument("--server-args", default="", help="more options for satchel serve")
    parser.add_argument("--attach", type=Path, help="load the server holding this folder")
    parser.add_argument("--shared-session", action="store_true", help="all on one session")
    parser.add_argument("--label", help="the table's first column (default: backend, args)")
    parser.add_argument("--header", action="store_true", help="print the table's header first")
    parsed = parser.parse_args()
    if parsed.header:
        print(HEADER)
    main(parsed)
