"""A session writer killed with SIGKILL loses no acknowledged operation (variables, lifecycle,
artifacts) and leaves no half."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from satchel import open_runtime

from .ports import drop_table, networked_place
from .session_crash_writer import Model, plan
from .session_crash_writer import place as crash_place

ROUNDS = 8


def run_and_kill(where: str, run: str, rng: random.Random, env: dict[str, str]) -> int:
    """Start the writer, kill it at a random moment, return how many operations it acknowledged."""
    writer = Path(__file__).with_name("session_crash_writer.py")
    proc = subprocess.Popen(
        [sys.executable, str(writer), where, run],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    assert first == "ok 0\n", proc.stderr.read()
    time.sleep(rng.uniform(0.0, 0.5))
    proc.send_signal(signal.SIGKILL)
    lines = [first, *proc.stdout.read().splitlines()]
    proc.stdout.close()
    proc.stderr.close()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return len(lines)


def models_after(run: str, acknowledged: int) -> tuple[Model, Model]:
    """The state after the acknowledged operations, and after one more (it may have landed)."""
    states = [model for _, model in plan(run, acknowledged + 1)]
    return states[acknowledged - 1], states[acknowledged]


@pytest.fixture(params=["rocksdb", "postgresql+s3"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """Where the writer runs: a data folder, or a PostgreSQL store (a table of its own) with
    an S3 bucket folder for its large values; and the environment naming the bucket."""
    if request.param == "rocksdb":
        yield str(tmp_path / "data"), {}
        return
    store, objects, table = networked_place()
    yield store, {"SATCHEL_CRASH_OBJECTS": objects}
    anyio.run(drop_table, table)


@pytest.mark.slow
async def test_sigkill_loses_no_acknowledged_session_operation(
    where: tuple[str, dict[str, str]],
) -> None:
    """After each kill, every run's sessions are exactly as acknowledged and check is clean,
    on a data folder and on PostgreSQL with S3."""
    rng = random.Random(4)
    place, env = where
    final: dict[str, Model] = {}
    for round_ in range(ROUNDS):
        run = f"r{round_}"
        done, maybe = models_after(run, run_and_kill(place, run, rng, env))
        async with open_runtime(**crash_place(place, env.get("SATCHEL_CRASH_OBJECTS"))) as rt:
            found: dict[str, Model] = {}
            for info in await rt.sessions.list():
                variables = {
                    k: await rt.sessions.get_state(info.id, k)
                    for k in await rt.sessions.list_state(info.id)
                }
                artifacts = {
                    a.name: [
                        (await rt.artifacts.get(info.id, v.id)).content
                        for v in await rt.artifacts.versions(info.id, a.name)
                    ]
                    for a in await rt.artifacts.list(info.id)
                }
                found.setdefault(info.name.split("-")[0], {})[info.name] = (
                    info.status.value,
                    variables,
                    artifacts,
                )
            assert found.get(run, {}) in (done, maybe), run
            final[run] = found.get(run, {})
            for old in list(final)[:-1]:
                assert found.get(old, {}) == final[old], old
            report = await rt.sessions.check()
            assert report.clean, report.problems
            found = await rt.check()
            assert found.clean, found
    assert sum(len(m) for m in final.values()) > ROUNDS
    assert any(a for m in final.values() for _, _, a in m.values()), "no artifact survived"
