"""The artifacts, hooks and archives packages read the record port only through their
repositories (``ArtifactRecords``, ``HookRecords``, ``ArchiveRecords``), and those read what
their names say."""

from __future__ import annotations

import ast
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from satchel import Runtime
from satchel.actors import _validate as validate
from satchel.actors.archives._archive_records import ArchiveRecords
from satchel.actors.artifacts import _artifact_layout as layout
from satchel.actors.artifacts._artifact_records import ArtifactRecords
from satchel.actors.hooks._hook_records import HookRecords
from satchel.actors.hooks._schedule_layout import ScheduledReplay, StoredRun
from satchel.actors.sessions import _session_layout as session_layout

from .conftest import BACKENDS, open_test_runtime

ACTORS = Path(__file__).resolve().parent.parent / "actors"
PACKAGES = ("artifacts", "hooks", "archives")
REPOSITORIES = {
    "artifacts/_artifact_records.py",
    "hooks/_hook_records.py",
    "archives/_archive_records.py",
}
#: The port's reads, and the storage helpers that call them.
PORT_READS = {"get", "get_many", "scan"}
PORT_HELPERS = {"prefix_pairs", "iter_pages", "iter_pairs", "paged", "most_selective"}
#: What holds the port where these packages held it: ``records``, ``reads``, ``self._records``,
#: ``store.records``, ``owner.records``.
PORT_NAMES = re.compile(r"(^|[._])(records|reads)$")


def port_reads(source: str) -> list[str]:
    """The calls in ``source`` that read the record port directly, as written."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            name, held = func.attr, ast.unparse(func.value)
            if (name in PORT_READS and PORT_NAMES.search(held)) or (
                name in PORT_HELPERS and held in ("indexscan", "storage")
            ):
                found.append(ast.unparse(node))
        elif isinstance(func, ast.Name) and func.id in PORT_HELPERS:
            found.append(ast.unparse(node))
    return found


def test_only_the_repositories_read_the_record_port() -> None:
    """No module of actors/artifacts, actors/hooks or actors/archives but its package's
    repository calls the record port's reads (or a storage helper over them)."""
    found = []
    for package in PACKAGES:
        for source in sorted((ACTORS / package).glob("*.py")):
            where = f"{package}/{source.name}"
            if where not in REPOSITORIES:
                found += [f"{where}: {call}" for call in port_reads(source.read_text())]
    assert found == []


def test_the_scan_finds_direct_reads() -> None:
    """The scan above sees the forms of direct read these packages used before their
    repositories, and not a dict's ``get``."""
    before = """
async def f(records, owner, store, self, seen):
    await records.get(key)
    await owner.records.get_many(keys)
    await self._records.scan(a, b)
    await store.records.get(key)
    await prefix_pairs(reads, prefix)
    await indexscan.most_selective(records, prefixes, bounds, 1, count_one=False)
    seen.get(key)
"""
    assert len(port_reads(before)) == 6


@pytest.fixture(params=BACKENDS)
async def rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with open_test_runtime(request.param, tmp_path) as runtime:
        yield runtime


async def test_artifact_records_read_versions_names_and_grants(rt: Runtime) -> None:
    """``ArtifactRecords`` finds a session's versions by name and id, its names' heads, and
    the grants another session holds on them."""
    owner_id, other_id = await rt.sessions.create(), await rt.sessions.create()
    owner, other = session_layout.bytes_of(owner_id), session_layout.bytes_of(other_id)
    await rt.artifacts.store(owner_id, "doc", b"one", type="file")
    second = await rt.artifacts.store(owner_id, "doc", b"two", type="file")
    await rt.artifacts.store(owner_id, "note", b"three", type="file")
    artifacts = ArtifactRecords(rt.store.records)
    assert await artifacts.name_exists(owner, b"doc")
    assert not await artifacts.name_exists(owner, b"nothing")
    assert [r.version for r in await artifacts.versions(owner, b"doc")] == [1, 2]
    latest = await artifacts.by_name(owner, b"doc", None)
    assert latest is not None and latest.id == second.id
    assert await artifacts.by_id(bytes(16)) is None
    assert await artifacts.by_id(validate.artifact_id(second.id)) == latest
    assert [name for name, _ in await artifacts.heads(owner)] == [b"doc", b"note"]
    assert await artifacts.heads(owner, limit=1) == (await artifacts.heads(owner))[:1]
    assert not await artifacts.has_grant_in(other, owner)
    await rt.artifacts.share(owner_id, "doc", other_id, "write")
    assert await artifacts.has_grant_in(other, owner)
    assert await artifacts.grant_ranks(owner, b"doc", [layout.WHOLE_NAME], other) == [2]
    assert [(o, n) for o, n, _ in await artifacts.granted_to(other)] == [(owner, b"doc")]
    assert await artifacts.has_any(owner) and not await artifacts.has_any(other)


async def test_hook_records_keep_schedules_and_their_newest_runs(rt: Runtime) -> None:
    """``HookRecords`` keeps a schedule, the newest runs it is told to keep, and forgets
    both."""
    session_id = await rt.sessions.create()
    schedules = HookRecords(rt.store.records)
    replay = ScheduledReplay("rpl_" + "ab" * 16, session_id, "simulate", None, {}, True, 4e9, None)
    assert await schedules.schedule(replay.id) is None
    await schedules.keep(replay)
    assert await schedules.schedule(replay.id) == replay
    assert await schedules.schedules() == [replay]
    assert not await schedules.has_run(replay.id)
    for ran_us in (1_000_000, 2_000_000, 3_000_000):
        await schedules.keep_run(replay.id, StoredRun(ran_us, 1, 0, 0, 0, None), kept=2)
    runs = await schedules.runs(replay.id)
    assert [run.ran_at.timestamp() for run in runs] == [2.0, 3.0]
    assert await schedules.forget(replay.id)
    assert not await schedules.forget(replay.id)
    assert await schedules.runs(replay.id) == [] and await schedules.schedules() == []


async def test_archive_records_read_a_session_as_stored(rt: Runtime) -> None:
    """``ArchiveRecords`` reads a session's record, counters, variables and journal as they
    are stored, and tells a session with leftovers from one with none."""
    session_id = await rt.sessions.create()
    await rt.sessions.set_state(session_id, "k", 1)
    sid = session_layout.bytes_of(session_id)
    stored = ArchiveRecords(rt.store.records)
    raw_record, raw_counters = await stored.stored_session(sid)
    assert raw_record is not None and raw_counters is not None
    seq = session_layout.Counters.decode(raw_counters).seq
    assert [s for s, _ in await stored.stored_journal(sid)] == list(range(1, seq + 1))
    variables = await stored.stored_variables(sid)
    assert [(name, session_layout.decode_value(raw)) for name, raw in variables] == [(b"k", 1)]
    assert await stored.has_leftovers(sid)
    assert not await stored.has_leftovers(bytes(16))
