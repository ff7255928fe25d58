"""A writer killed with SIGKILL at random moments loses nothing it acknowledged."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import blake3
import pytest

from satchel.storage import open_store

from .crash_writer import LIMITS, content_for, owner_key

ROUNDS = 20


def run_and_kill(folder: Path, run: str, rng: random.Random) -> list[str]:
    """Start the writer, kill it at a random moment once it has written, return its lines."""
    writer = Path(__file__).with_name("crash_writer.py")
    errors = folder.with_name(f"{run}.stderr")
    with errors.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(writer), str(folder), run],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("put 0 "), errors.read_text()
    time.sleep(rng.uniform(0.0, 0.4))
    proc.send_signal(signal.SIGKILL)
    # Read through the same buffered reader: readline() may already hold later lines.
    rest = proc.stdout.read()
    proc.stdout.close()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return [first.strip(), *rest.splitlines()]


def acknowledged(lines: list[str]) -> tuple[dict[int, str], set[int], set[int]]:
    """Writes acknowledged as present, deletes acknowledged, and a delete maybe in flight."""
    present: dict[int, str] = {}
    deleted: set[int] = set()
    last = -1
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "put":
            last = int(parts[1])
            present[last] = parts[2]
        elif len(parts) == 2 and parts[0] == "del":
            deleted.add(int(parts[1]))
            present.pop(int(parts[1]))
    maybe = {last - 3} if last % 5 == 4 and last - 3 not in deleted else set()
    return present, deleted, maybe


@pytest.mark.slow
async def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """Across repeated SIGKILLs every acknowledged write reads back and check() is clean."""
    rng = random.Random(2026)
    folder = tmp_path / "data"
    history: dict[str, tuple[dict[int, str], set[int], set[int]]] = {}
    for round_ in range(ROUNDS):
        run = f"r{round_}"
        history[run] = acknowledged(run_and_kill(folder, run, rng))
        with open_store(folder, limits=LIMITS) as store:
            await store.blobs.recover()  # what the runtime does when it opens a store
            for old, (present, deleted, maybe) in history.items():
                for index, blob in present.items():
                    record = store.kv.get(owner_key(old, index))
                    if index in maybe and record is None:
                        continue
                    assert record == blob.encode(), (old, index)
                    data = await store.blobs.read(blob)
                    assert blake3.blake3(data).hexdigest() == blob
                    assert data == content_for(old, index)
                for index in deleted:
                    assert store.kv.get(owner_key(old, index)) is None
            report = await store.check()
            assert report.clean, report
    assert sum(len(p) for p, _, _ in history.values()) > ROUNDS
