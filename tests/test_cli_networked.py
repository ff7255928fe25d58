"""The command line on a PostgreSQL store with an S3 bucket: flags and environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import anyio
import pytest

from .ports import drop_table, networked_place


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `satchel` command line with ``env`` added to the environment."""
    return subprocess.run(
        [sys.executable, "-m", "satchel._cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def place() -> Iterator[tuple[str, str]]:
    """A PostgreSQL store URL (a table of its own, dropped after) and an S3 bucket URL."""
    store, objects, table = networked_place()
    yield store, objects
    anyio.run(drop_table, table)


def test_flags_name_the_store_and_its_bucket(place: tuple[str, str]) -> None:
    """--store and --objects run a command on PostgreSQL with S3; what it made is there for
    the next command, and check finds the store clean."""
    store, objects = place
    made = run("--store", store, "--objects", objects, "sessions", "create", "--name", "pg")
    assert made.returncode == 0, made.stderr
    sid = made.stdout.strip()
    listed = run("--json", "--store", store, "--objects", objects, "sessions", "list")
    assert [s["id"] for s in json.loads(listed.stdout)] == [sid]
    checked = run("--json", "--store", store, "--objects", objects, "check")
    assert json.loads(checked.stdout)["blobs"]["dangling_references"] == []


def test_environment_names_the_store(place: tuple[str, str]) -> None:
    """$SATCHEL_STORE and $SATCHEL_OBJECTS do what the flags do; --memory still wins."""
    store, objects = place
    env = {"SATCHEL_STORE": store, "SATCHEL_OBJECTS": objects}
    sid = run("sessions", "create", "--name", "env", env=env).stdout.strip()
    listed = run("--json", "sessions", "list", env=env)
    assert [s["id"] for s in json.loads(listed.stdout)] == [sid]
    assert json.loads(run("--json", "--memory", "sessions", "list", env=env).stdout) == []


def test_objects_without_a_store_are_refused() -> None:
    """--objects on a data folder or in memory is a usage error, and nothing runs."""
    refused = run("--memory", "--objects", "s3://bucket", "sessions", "list")
    assert refused.returncode != 0
    assert "--objects goes with a PostgreSQL store" in refused.stderr
