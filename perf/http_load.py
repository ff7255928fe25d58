"""Load on `satchel serve` over loopback: requests/s and latency percentiles (issue 8).

Starts ``satchel serve`` in its own process on a fresh data folder, seeds one session with a
1 MiB artifact, then drives it from this process with httpx clients on Trio, each over a
kept-alive connection, for a bounded number of requests (and at most ``--seconds``):

* ``GET /sessions/{id}``: the session record as JSON;
* ``GET /sessions/{id}/artifacts/blob.bin``: a 1 MiB download, streamed and hash-checked by
  the server, read whole by the client.

The server and the load generator share the machine's two cores, so the figures are what one
loopback client sees, not the server's ceiling. Writes a Markdown table as the first section of
``perf/http_notes.md`` (``python perf/report.py ... --notes perf/http_notes.md`` puts it in
RESULTS.md).

Run (from the repository root)::

    python perf/http_load.py [--requests 4000] [--concurrency 1,8] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio

from satchel._serve import find_server

NOTES = Path(__file__).with_name("http_notes.md")


def start_server(folder: Path) -> subprocess.Popen[bytes]:
    """``satchel serve`` on ``folder``, once it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "satchel._cli", "serve", "--data", str(folder), "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while find_server(folder) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    return process


async def drive(
    url: str, token: str, path: str, requests: int, concurrency: int, seconds: float
) -> tuple[list[float], float, int]:
    """Latencies (s) of ``requests`` GETs of ``path`` from ``concurrency`` clients; elapsed
    time and bytes received."""
    latencies: list[float] = []
    received = 0
    remaining = requests
    headers = {"Authorization": f"Bearer {token}"}

    async def client() -> None:
        nonlocal remaining, received
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                answer = await http.get(path)
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    raise SystemExit(f"{path}: {answer.status_code} {answer.text[:200]}")
                received += len(answer.content)

    started = time.perf_counter()
    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(client)
    return latencies, time.perf_counter() - started, received


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="satchel-http-"))
    process = start_server(folder / "data")
    try:
        info = find_server(folder / "data")
        assert info is not None
        headers = {"Authorization": f"Bearer {info.token}"}
        async with httpx.AsyncClient(base_url=info.url, headers=headers) as http:
            sid = (await http.post("/sessions", json={"name": "load"})).json()["id"]
            await http.put(f"/sessions/{sid}/artifacts/blob.bin", content=os.urandom(1 << 20))
        rows = []
        for clients in args.concurrency:
            for label, path, count in (
                ("GET /sessions/{id}", f"/sessions/{sid}", args.requests),
                ("GET 1 MiB artifact", f"/sessions/{sid}/artifacts/blob.bin", args.requests // 4),
            ):
                rows.append(await measure(info.url, info.token, label, path, count, clients, args))
                print(rows[-1], flush=True)
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    section = (
        "## HTTP on loopback (`python perf/http_load.py`)\n\n"
        "`satchel serve` (hypercorn, Trio worker, RocksDB folder) in one process; httpx "
        "clients on Trio in another, each on a kept-alive connection; both share the "
        "2 cores. After a warm-up of up to 200 requests.\n\n"
        "| request | requests | clients | requests/s | MB/s | p50 ms | p99 ms | mean ms |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    NOTES.write_text(with_section(NOTES.read_text() if NOTES.exists() else "", section))


def with_section(notes: str, section: str) -> str:
    """``notes`` with its first section (up to the next ``## `` heading) replaced by
    ``section``: the sections other scripts (``http_state_load.py``'s) keep there stay."""
    rest = notes.split("\n## ", 1)[1] if "\n## " in notes else ""
    return section + ("\n## " + rest if rest else "")


async def measure(
    url: str, token: str, label: str, path: str, count: int, clients: int, args: argparse.Namespace
) -> str:
    """One table row: ``count`` GETs of ``path`` from ``clients`` clients, after a warm-up."""
    await drive(url, token, path, min(200, count), clients, 30)
    latencies, elapsed, received = await drive(url, token, path, count, clients, args.seconds)
    return (
        f"| {label} | {len(latencies)} | {clients} | "
        f"{len(latencies) / elapsed:,.0f} | {received / elapsed / 1e6:,.0f} | "
        f"{percentile(latencies, 0.5) * 1e3:.2f} | "
        f"{percentile(latencies, 0.99) * 1e3:.2f} | "
        f"{statistics.fmean(latencies) * 1e3:.2f} |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument(
        "--concurrency",
        type=lambda t: [int(n) for n in t.split(",")],
        default=[1, 8],
        help="client counts to measure, comma-separated (default 1,8)",
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    trio.run(main, parser.parse_args())
