"""Cluster nodes as separate ``satchel serve --cluster`` processes on loopback, and clients
that write through them, for the failure tests of a cluster."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

TOKEN = "cluster-nodes-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: The lease time of the test nodes: a dead node's sessions move after at most this long.
TTL_S = 2.0


class NodeProcess:
    """One ``satchel serve --cluster`` process (see ``start``)."""

    def __init__(self, name: str, store: str, folder: Path, backend: str) -> None:
        self.name, self.store, self.folder, self.backend = name, store, folder, backend
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        """Start the node and wait until it serves (its URL printed)."""
        token_file = self.folder / "token"
        token_file.write_text(TOKEN)
        out = self.folder / f"{self.name}.out"
        out.unlink(missing_ok=True)
        command = [
            sys.executable, "-c", "import sys; from satchel._cli import main; sys.exit(main())",
            "--json", "--backend", self.backend, "serve", "--store", self.store,
            "--cluster", "--node-id", self.name, "--port", "0", "--token-file", str(token_file),
            "--lease-ttl", str(TTL_S), "--log-level", "warning",
        ]  # fmt: skip
        with open(out, "wb") as stdout, open(self.folder / f"{self.name}.err", "ab") as stderr:
            self.process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.url = json.loads(out.read_text())["url"]
                return
            except (ValueError, KeyError):
                if self.process.poll() is not None:
                    raise RuntimeError(f"node {self.name} exited: {self.stderr()}") from None
                time.sleep(0.05)
        raise RuntimeError(f"node {self.name} did not start: {self.stderr()}")

    def stderr(self) -> str:
        """What the node wrote to stderr (its log), for failure messages."""
        return (self.folder / f"{self.name}.err").read_text()[-4000:]

    def signal(self, number: int) -> None:
        """Send the node ``number`` (SIGKILL, SIGSTOP, SIGCONT, SIGTERM)."""
        assert self.process is not None
        os.kill(self.process.pid, number)

    def stop(self) -> None:
        """Stop the node as an operator does (SIGTERM) and wait for it to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process cannot handle TERM
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """kill -9 the node."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()


class Writers:
    """Clients writing variables through random live nodes, each write a key of its own, and
    what was acknowledged (a write that failed is asked again through another node)."""

    def __init__(self, client: httpx.AsyncClient, nodes: list[NodeProcess]) -> None:
        self.client = client
        self.nodes = nodes
        #: (session, key) -> value, for every acknowledged write.
        self.acknowledged: dict[tuple[str, str], int] = {}
        self.failures = 0
        self.down: set[str] = set()

    def live_url(self) -> str:
        """A node to ask (one not known to be down)."""
        return random.choice([n.url for n in self.nodes if n.name not in self.down])

    async def write(self, session_id: str, key: str, value: int) -> None:
        """Write until a node acknowledges it."""
        while True:
            url = self.live_url()
            try:
                answer = await self.client.put(
                    f"{url}/sessions/{session_id}/state/{key}", json={"value": value}
                )
                if answer.status_code == 204:
                    self.acknowledged[(session_id, key)] = value
                    return
                # 503: not carried out (ask again); 504: the node died with the request, which
                # may have been carried out (not acknowledged; asking again sets the same value).
                assert answer.status_code in (503, 504), answer.text
            except httpx.TransportError:
                pass
            self.failures += 1
            await anyio.sleep(0.1)  # as a client backs off before asking again

    async def run(self, sessions: list[str], stop: anyio.Event, writer: int) -> None:
        """Write keys of this writer to its sessions in turn until ``stop``."""
        step = 0
        while not stop.is_set():
            session_id = sessions[step % len(sessions)]
            await self.write(session_id, f"w{writer}-{step}", step)
            step += 1


async def create_sessions(client: httpx.AsyncClient, nodes: list[NodeProcess], n: int) -> list[str]:
    """``n`` sessions, created through the nodes in turn, 20 at a time."""
    made: list[str] = []

    async def create(i: int) -> None:
        answer = await client.post(f"{nodes[i % len(nodes)].url}/sessions", json={})
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["id"])

    limit = anyio.CapacityLimiter(20)
    async with anyio.create_task_group() as tasks:
        for i in range(n):

            async def one(i: int = i) -> None:
                async with limit:
                    await create(i)

            tasks.start_soon(one)
    return made


async def read_all(client: httpx.AsyncClient, url: str, session_id: str) -> dict[str, Any]:
    """The variables of ``session_id`` read through the node at ``url``."""
    answer = await client.get(f"{url}/sessions/{session_id}/state")
    assert answer.status_code == 200, answer.text
    variables: dict[str, Any] = answer.json()["variables"]
    return variables
