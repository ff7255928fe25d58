"""Session archives: export, import, bit-for-bit round trips, dedup, and refusing bad input."""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.lowlevel
import attrs
import blake3
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satchel import (
    AccessDeniedError,
    ArtifactNotFoundError,
    InvalidArgumentError,
    Runtime,
    SessionExistsError,
    SessionNotFoundError,
    ValidationError,
    open_runtime,
)
from satchel.actors import ArchiveReport, export_session, import_session
from satchel.actors.sessions import _removal as removal
from satchel.actors.sessions import _session_layout as layout
from satchel.storage import BLOBS, Backend, Batch, KeyValueStore, LocalRecords, MemoryStore
from satchel.storage import _keys as keys

from .conftest import SMALL_CHUNKS

MIB = 1 << 20
_TOP = b"\xff" * 64  # above every key of both spaces


@pytest.fixture
async def target(rt: Runtime, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A second, empty runtime on the same backend as ``rt``, in another data folder."""
    async with open_runtime(tmp_path / "other", store=cast(Backend, rt.backend)) as runtime:
        yield runtime


async def export(rt: Runtime, sid: str, **options: Any) -> bytes:
    """The archive of session ``sid`` as bytes."""
    sink = io.BytesIO()
    await export_session(rt.sessions, rt.artifacts, rt.store, sid, sink, **options)
    return sink.getvalue()


async def load(rt: Runtime, archive: bytes, **options: Any) -> ArchiveReport:
    """Import ``archive`` into ``rt``."""
    return await import_session(rt.sessions, rt.artifacts, rt.store, io.BytesIO(archive), **options)


def dump(kv: KeyValueStore) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """Every key and value of both key spaces."""
    return list(kv.scan(b"", _TOP)), list(kv.scan(b"", _TOP, space=BLOBS))


async def clean(rt: Runtime) -> None:
    """Assert that the blob store and the sessions check clean."""
    blobs = await rt.store.check()
    assert blobs.clean, blobs
    sessions = await rt.sessions.check()
    assert sessions.clean, sessions.problems


def comparable_index(kv: KeyValueStore) -> list[tuple[bytes, bytes]]:
    """The index space without what differs between two stores holding the same sessions:
    blob records (they name each store's random chunk ids) and kernel reminders."""
    return [
        (key, value)
        for key, value in kv.scan(b"", _TOP)
        if not key.startswith((keys.BLOB, keys.REMINDER))
    ]


# -- editing archives --------------------------------------------------------------------


def members(archive: bytes) -> list[tuple[str, bytes]]:
    """The members of an archive, in order, with their bytes."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        found = []
        for member in tar:
            stream = tar.extractfile(member)
            assert stream is not None
            found.append((member.name, stream.read()))
        return found


def build(items: list[tuple[str, bytes]]) -> bytes:
    """A tar of ``items``, as ``tarfile`` writes it."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def edit_manifest(archive: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """``archive`` with its manifest changed by ``change``."""
    items = members(archive)
    manifest = json.loads(items[0][1])
    change(manifest)
    return build([("manifest.json", json.dumps(manifest).encode()), *items[1:]])


def flip(data: bytes, at: int) -> bytes:
    """``data`` with one byte changed at ``at``."""
    return data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1 :]


# -- building a session ------------------------------------------------------------------


async def pieces(data: bytes, size: int = 300_000) -> AsyncIterator[bytes]:
    """``data`` as an async stream."""
    for start in range(0, len(data), size):
        await anyio.lowlevel.checkpoint()
        yield data[start : start + size]


BIG = os.urandom(MIB * 5 // 2)  # three 1 MiB chunks, incompressible
TEXT = ("line of text, compressible\n" * 3000).encode()
BINARY = bytes(range(256)) * 4


async def rich_session(rt: Runtime) -> str:
    """A session with variables, versions (one chunked, one binary, one repeated content,
    one deleted), tags, custom metadata, a lifecycle and deadlines."""
    sid = await rt.sessions.create(
        name="research run",
        description="finds things\x00and keeps them",
        tags=["agent", "Research", "ünïcode"],
        metadata={"owner": "ana", "budget": {"tokens": 4000, "ratio": 0.25}, "list": [1, None]},
        config={"max_operations": 1000, "idle_timeout_s": 600, "retention_days": 30},
    )
    session = rt.session(sid)
    await session.set_state("plan", ["search", "read"])
    await session.set_state("ключ", {"nested": {"deep": [1.5, True, None, "x"]}})
    await session.set_state("gone", 1)
    await session.delete_state("gone")
    meta = {"description": "report", "tags": ["final", "md"], "model": {"name": "m-1", "t": 0.2}}
    await session.store_artifact("report.md", b"# one\n", type="agent_output", metadata=meta)
    await session.store_artifact(
        "report.md", TEXT, type="agent_output", metadata={"tags": ["final"]}
    )
    await session.store_artifact("report.md", b"# three\n", type="agent_output")
    await session.delete_artifact("report.md", 3)  # the name's last version stays 3
    await rt.artifacts.store(sid, "big.bin", pieces(BIG), type="tool_result", metadata={"run": 7})
    await session.store_artifact(
        "bytes.bin", BINARY, type="custom-type", metadata={"mime_type": "x/y"}
    )
    await session.store_artifact("copy.bin", BINARY, type="user_input")  # same content again
    await session.suspend()
    await session.resume()
    await session.set_state("plan", ["write"])
    await session.complete()
    return sid


async def assert_same_session(source: Runtime, target: Runtime, sid: str) -> None:
    """Assert that ``sid`` reads back alike, field by field and byte by byte."""
    assert await target.sessions.get(sid) == await source.sessions.get(sid)
    assert await target.sessions.timeline(sid) == await source.sessions.timeline(sid)
    names = await source.sessions.list_state(sid)
    assert await target.sessions.list_state(sid) == names
    for name in names:
        assert await target.sessions.get_state(sid, name) == await source.sessions.get_state(
            sid, name
        )
    listed = await source.artifacts.list(sid)
    assert await target.artifacts.list(sid) == listed
    for latest in listed:
        versions = await source.artifacts.versions(sid, latest.name)
        assert await target.artifacts.versions(sid, latest.name) == versions
        for info in versions:
            want = await source.artifacts.get(sid, info.id)
            assert await target.artifacts.get(sid, info.id) == want
            streamed = [chunk async for chunk in target.artifacts.stream(sid, info.id)]
            assert b"".join(streamed) == want.content
    sid_bytes = bytes.fromhex(sid.replace("-", ""))
    for prefix in (keys.SESSION, keys.SESSION_COUNTERS, keys.SESSION_VAR, keys.JOURNAL):
        owned = prefix + sid_bytes
        assert list(target.store.kv.scan(owned, owned + b"\xff")) == list(
            source.store.kv.scan(owned, owned + b"\xff")
        )


# -- round trips -------------------------------------------------------------------------


async def test_round_trip_reads_back_bit_for_bit(rt: Runtime, target: Runtime) -> None:
    """A rich session exported from one runtime and imported into a fresh one reads back the
    same: records, variables, journal, versions, content, and every index key."""
    sid = await rich_session(rt)
    seen: list[tuple[int, int]] = []
    archive = await export(rt, sid, progress=lambda done, total: seen.append((done, total)))
    report = await load(target, archive)
    total = len(BIG) + len(TEXT) + len(BINARY) + len(b"# one\n")
    assert report == ArchiveReport(sid, 5, 4, total, 16, 2, 0, False)
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    await assert_same_session(rt, target, sid)
    # Exactly the keys the session had where it was created, derived indexes included.
    assert comparable_index(target.store.kv) == comparable_index(rt.store.kv)
    await clean(target)


async def test_imported_session_is_found_by_queries(rt: Runtime, target: Runtime) -> None:
    """Session lists and artifact queries find the imported session as they find the original;
    check() is clean on both sides."""
    sid = await rich_session(rt)
    await load(target, await export(rt, sid))
    for filters in (
        {"tags": ["Research"]},
        {"status": "completed"},
        {"search": "RESEARCH", "order_by": "name"},
        {"order_by": "updated_at", "descending": True},
    ):
        assert await target.sessions.list(**filters) == await rt.sessions.list(**filters)
    for query in (
        {"tags": ["final"], "all_versions": True},
        {"metadata": {"run": 7}},
        {"type": "custom-type"},
        {"name_pattern": "BIN", "order_by": "size"},
        {"min_size": 1000, "all_versions": True, "order_by": "name"},
    ):
        assert await target.artifacts.query(**query) == await rt.artifacts.query(**query)
    await clean(rt)
    await clean(target)


async def test_imported_session_keeps_working(rt: Runtime, target: Runtime) -> None:
    """An imported active session takes new writes and versions after its old ones."""
    sid = await rt.sessions.create(name="live")
    await rt.artifacts.store(sid, "a.txt", b"1", type="tool_result")
    await rt.sessions.set_state(sid, "n", 1)
    await load(target, await export(rt, sid))
    await target.sessions.set_state(sid, "n", 2)
    ref = await target.artifacts.store(sid, "a.txt", b"2", type="tool_result")
    assert ref.version == 2
    assert [e.seq for e in await target.sessions.timeline(sid)] == [1, 2, 3, 4, 5]
    await clean(target)
    await target.sessions.delete(sid)
    await clean(target)
    assert dump(target.store.kv)[1] == []


async def test_archive_is_a_plain_tar_with_a_manifest(rt: Runtime) -> None:
    """The archive is a tar any reader lists: the manifest, the records, then each distinct
    blob once, each member hashed in the manifest."""
    sid = await rich_session(rt)
    items = members(await export(rt, sid))
    names = [name for name, _ in items]
    assert names[:5] == [
        "manifest.json",
        "session.msgpack",
        "variables.msgpack",
        "artifacts.msgpack",
        "journal.msgpack",
    ]
    blobs = {blake3.blake3(c).hexdigest() for c in (BIG, TEXT, BINARY, b"# one\n")}
    assert sorted(names[5:]) == sorted(f"blobs/{h}" for h in blobs)
    manifest = json.loads(items[0][1])
    assert (manifest["format"], manifest["version"], manifest["session_id"]) == (
        "satchel-session-archive",
        2,
        sid,
    )
    assert manifest["counts"] == {
        "variables": 2,
        "journal_entries": 16,
        "artifacts": 5,
        "names": 4,
        "blobs": 4,
    }
    listed = [(m["name"], m["size"], m["blake3"]) for m in manifest["members"]]
    assert listed == [(n, len(d), blake3.blake3(d).hexdigest()) for n, d in items[1:]]


async def test_export_streams_to_a_sink_that_cannot_seek(rt: Runtime, target: Runtime) -> None:
    """Export writes front to back to a sink that takes any part of each write, and import
    reads from a source that hands out a few bytes at a time."""

    class Trickle(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            taken = bytes(b[:7000])
            self.data += taken
            return len(taken)

    class Drip(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = memoryview(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            size = min(len(b), 5000, len(self.data))
            b[:size] = self.data[:size]
            self.data = self.data[size:]
            return size

    sid = await rich_session(rt)
    sink = Trickle()
    await export_session(rt.sessions, rt.artifacts, rt.store, sid, sink)
    assert len(sink.data) % tarfile.RECORDSIZE == 0
    await import_session(target.sessions, target.artifacts, target.store, Drip(bytes(sink.data)))
    await assert_same_session(rt, target, sid)


async def test_dedup_against_content_already_stored(rt: Runtime, target: Runtime) -> None:
    """Content the target already holds is referenced, not stored again; the blob lives as long
    as either session holds it."""
    sid = await rich_session(rt)
    other = await target.sessions.create(name="already here")
    await target.artifacts.store(other, "same.bin", BIG, type="tool_result")
    report = await load(target, await export(rt, sid))
    assert (report.blobs, report.blobs_reused) == (4, 1)
    digest = blake3.blake3(BIG).hexdigest()
    assert len(await target.store.blobs.references(digest)) == 2
    await clean(target)
    await target.sessions.delete(other)
    assert (await target.artifacts.get(sid, "big.bin")).content == BIG
    await clean(target)
    await target.sessions.delete(sid)
    assert await target.store.blobs.info(digest) is None
    await clean(target)


async def test_imported_deadlines_fire(rt: Runtime, target: Runtime, autojump_clock: None) -> None:
    """A policy deadline of an imported session fires in the target, as if created there."""
    sid = await rt.sessions.create(config={"max_duration_s": 60})
    await load(target, await export(rt, sid))
    await anyio.sleep(61)
    info = await target.sessions.get(sid)
    assert (info.status, info.failure_reason) == ("failed", "timeout")
    await clean(target)


async def test_child_without_its_parent_is_kept_and_reported(rt: Runtime, target: Runtime) -> None:
    """A child imported without its parent keeps its parent id (and says so); importing the
    parent later joins them up again."""
    parent = await rt.sessions.create(name="parent")
    child = await rt.sessions.create(name="child", parent_id=parent)
    report = await load(target, await export(rt, child))
    assert report.parent_missing
    assert (await target.sessions.get(child)).parent_session_id == parent
    await clean(target)
    report = await load(target, await export(rt, parent))
    assert not report.parent_missing
    assert [s.id for s in await target.sessions.children(parent)] == [child]
    assert not (await load_again_report(rt, target, child)).parent_missing
    await clean(target)


async def load_again_report(source: Runtime, target: Runtime, sid: str) -> ArchiveReport:
    """Delete ``sid`` from ``target`` and import it again."""
    await target.sessions.delete(sid)
    return await load(target, await export(source, sid))


async def test_export_reads_one_consistent_view(rt: Runtime, target: Runtime) -> None:
    """Writes racing an export land wholly before or after it: the archive imports clean and
    is a prefix of the session's history."""
    sid = await rt.sessions.create()
    await rt.artifacts.store(sid, "big.bin", BIG, type="tool_result")
    archive = b""

    async def exporter() -> None:
        nonlocal archive
        archive = await export(rt, sid)

    async with anyio.create_task_group() as nursery:
        nursery.start_soon(exporter)
        for n in range(20):
            await rt.sessions.set_state(sid, "n", n)
            await rt.artifacts.store(sid, f"f{n}.txt", b"%d" % n, type="tool_result")
    await load(target, archive)
    await clean(target)
    imported = await target.sessions.timeline(sid)
    assert imported == (await rt.sessions.timeline(sid))[: len(imported)]
    assert 2 <= len(imported) < 42  # the racing writes were seen in part


async def test_artifact_deleted_during_export_fails_the_export(tmp_path: Path) -> None:
    """A version deleted (with its content) while the export streams it fails the export with
    ArtifactNotFoundError rather than write another view."""
    async with open_runtime(tmp_path, store="memory", limits=SMALL_CHUNKS) as rt:
        sid = await rt.sessions.create()
        await rt.artifacts.store(
            sid, "a.bin", os.urandom(SMALL_CHUNKS.max_size), type="tool_result"
        )
        started = anyio.Event()

        class Sink(io.BytesIO):
            def write(self, data: Any) -> int:
                if len(data) == SMALL_CHUNKS.chunk_size:
                    started.set()
                return super().write(data)

        async def deleter() -> None:
            await started.wait()
            await rt.artifacts.delete(sid, "a.bin")

        async with anyio.create_task_group() as nursery:
            nursery.start_soon(deleter)
            with pytest.raises(ArtifactNotFoundError, match="deleted during the export"):
                await export_session(rt.sessions, rt.artifacts, rt.store, sid, Sink())
        await clean(rt)


# -- crash safety --------------------------------------------------------------------------


async def test_commit_is_one_batch(rt: Runtime, target: Runtime, monkeypatch: Any) -> None:
    """Every key the import adds to the index is written by one batch (the kernel reminder
    the deadline sweeper then sets aside)."""
    sid = await rich_session(rt)
    archive = await export(rt, sid)
    before = {key for key, _ in target.store.kv.scan(b"", _TOP)}
    batches: list[set[bytes]] = []
    write = target.store.kv.write

    def recording(batch: Any, *, sync: bool = False) -> None:
        batches.append({key for op, space, key, _ in batch.ops if op == "put"})
        write(batch, sync=sync)

    monkeypatch.setattr(target.store.kv, "write", recording)
    await load(target, archive)
    # The deadline sweeper, told of the session's deadlines, then sets its own reminder.
    added = {k for k, _ in target.store.kv.scan(b"", _TOP) if not k.startswith(keys.REMINDER)}
    added -= before
    holding = [batch for batch in batches if added & batch]
    assert len(holding) == 1 and added <= holding[0]


async def test_failed_commit_leaves_the_target_as_it_was(
    rt: Runtime, target: Runtime, monkeypatch: Any
) -> None:
    """If the final batch fails, the content staged for it is discarded: the target holds
    exactly what it held before, its own sessions and content included."""
    sid = await rich_session(rt)
    archive = await export(rt, sid)
    mine = await target.sessions.create(name="mine")
    await target.artifacts.store(mine, "same.bin", BIG, type="tool_result")
    before = dump(target.store.kv)
    write = target.store.kv.write

    def failing(batch: Any, *, sync: bool = False) -> None:
        if any(key.startswith(keys.SESSION) for _, _, key, _ in batch.ops):
            raise OSError("disk full")
        write(batch, sync=sync)

    monkeypatch.setattr(target.store.kv, "write", failing)
    with pytest.raises(OSError, match="disk full"):
        await load(target, archive)
    monkeypatch.undo()
    assert dump(target.store.kv) == before
    await clean(target)
    await load(target, archive)  # nothing was left behind to get in the way
    await clean(target)


# -- bad input -----------------------------------------------------------------------------


@pytest.fixture
async def archive(rt: Runtime) -> bytes:
    """The archive of a rich session of ``rt``."""
    return await export(rt, await rich_session(rt))


async def refused(target: Runtime, data: bytes, error: type[Exception], match: str) -> None:
    """Assert that importing ``data`` raises ``error`` and changes nothing."""
    before = dump(target.store.kv)
    with pytest.raises(error, match=match):
        await load(target, data)
    assert dump(target.store.kv) == before


@pytest.mark.parametrize(
    "name",
    ["../escape", "/etc/passwd", "blobs/../../escape", "blobs/" + "A" * 64, "extra.txt", "blobs/"],
)
async def test_member_names_outside_the_format_are_refused(
    archive: bytes, target: Runtime, name: str
) -> None:
    """A member named outside the format (path traversal, absolute, unknown) is refused,
    whether or not the manifest lists it."""
    items = members(archive)
    renamed = build([*items[:-1], (name, items[-1][1])])
    await refused(target, renamed, ValidationError, "is not the expected")

    def relist(manifest: dict[str, Any]) -> None:
        manifest["members"][-1]["name"] = name

    listed = edit_manifest(renamed, relist)
    await refused(target, listed, ValidationError, "not part of the format")
    await refused(target, build([*items, (name, b"x")]), ValidationError, "unexpected member")


async def test_a_link_member_is_refused(archive: bytes, target: Runtime) -> None:
    """A member that is not a regular file (a symlink under an expected name) is refused."""
    items = members(archive)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|") as tar:
        for name, data in items[:-1]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo(items[-1][0])
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    await refused(target, out.getvalue(), ValidationError, "regular file|bytes, not")


def data_end(archive: bytes) -> int:
    """Where the last member's data ends (after it there is only padding)."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        last = tar.getmembers()[-1]
        return last.offset_data + last.size


async def test_truncated_archives_are_refused(archive: bytes, target: Runtime) -> None:
    """An archive cut short anywhere before its last byte of content is refused, and leaves
    nothing behind (Hypothesis picks the cut points)."""
    cuts: list[int] = []
    end = data_end(archive)

    @settings(max_examples=60, deadline=None, database=None)
    @given(cut=st.integers(0, end - 1))
    def collect(cut: int) -> None:
        cuts.append(cut)

    collect()
    boundaries = [0, 511, 512, 1024, end - len(BINARY), end - 1]
    for cut in sorted({*cuts, *boundaries}):
        await refused(target, archive[:cut], ValidationError, "truncated|not a tar|missing")


async def test_changed_member_bytes_are_refused(archive: bytes, target: Runtime) -> None:
    """Any byte changed inside any member after the manifest is refused (Hypothesis picks the
    member and the byte)."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        spans = [(m.offset_data, m.size) for m in tar.getmembers()[1:]]
    picks: list[int] = []

    @settings(max_examples=40, deadline=None, database=None)
    @given(member=st.integers(0, len(spans) - 1), where=st.floats(0, 1, exclude_max=True))
    def collect(member: int, where: float) -> None:
        start, size = spans[member]
        picks.append(start + int(where * size))

    collect()
    for at in sorted(set(picks)):
        await refused(target, flip(archive, at), ValidationError, "does not match")


async def test_member_not_matching_the_manifest_is_refused(archive: bytes, target: Runtime) -> None:
    """A record member whose bytes differ from the hash the manifest gives is refused."""
    items = members(archive)
    name, data = items[1]
    changed = build([items[0], (name, flip(data, len(data) // 2)), *items[2:]])
    await refused(target, changed, ValidationError, "session.msgpack does not match its hash")


async def test_blob_not_matching_its_content_hash_is_refused(
    archive: bytes, target: Runtime
) -> None:
    """A blob whose content is not the content its hash names is refused after earlier blobs
    were staged, and every staged chunk is discarded."""
    items = members(archive)
    big = blake3.blake3(BIG).hexdigest()
    ordered = sorted(items[5:], key=lambda item: item[0] != f"blobs/{big}")  # big first
    name, data = ordered[-1]
    changed = build([*items[:5], *ordered[:-1], (name, flip(data, 0))])

    def reorder(manifest: dict[str, Any]) -> None:
        listed = manifest["members"]
        by_name = {m["name"]: m for m in listed}
        listed[4:] = [by_name[n] for n, _ in ordered]

    changed = edit_manifest(changed, reorder)
    await refused(target, changed, ValidationError, "does not match its content hash")
    await clean(target)


@pytest.mark.parametrize("version", [0, 3, "1", None])
async def test_unknown_format_version_is_refused(
    archive: bytes, target: Runtime, version: object
) -> None:
    """An archive of a format version this satchel does not read is refused."""

    def change(manifest: dict[str, Any]) -> None:
        manifest["version"] = version

    await refused(target, edit_manifest(archive, change), ValidationError, "format version")


async def test_inconsistent_manifest_is_refused(archive: bytes, target: Runtime) -> None:
    """Counts, sizes and hashes the manifest gets wrong are refused."""

    def count(manifest: dict[str, Any]) -> None:
        manifest["counts"]["variables"] += 1

    def size(manifest: dict[str, Any]) -> None:
        manifest["members"][0]["size"] += 1

    def blob_hash(manifest: dict[str, Any]) -> None:
        manifest["members"][-1]["blake3"] = "0" * 64

    await refused(target, edit_manifest(archive, count), ValidationError, "counts")
    await refused(target, edit_manifest(archive, size), ValidationError, "bytes, not")
    await refused(target, edit_manifest(archive, blob_hash), ValidationError, "another hash")
    await refused(target, b"not a tar at all" * 100, ValidationError, "not a tar|manifest")
    await refused(target, build([("manifest.json", b"{")]), ValidationError, "not JSON")


async def test_existing_session_is_refused(rt: Runtime, target: Runtime) -> None:
    """Importing a session the target already holds raises SessionExistsError and changes
    nothing, here or in the source."""
    sid = await rich_session(rt)
    archive = await export(rt, sid)
    await refused(rt, archive, SessionExistsError, "already exists")
    await load(target, archive)
    await refused(target, archive, SessionExistsError, "already exists")
    await clean(target)


async def test_wrong_arguments_are_refused(rt: Runtime) -> None:
    """Arguments of the wrong type raise InvalidArgumentError; a missing session
    SessionNotFoundError; a session's view of the artifacts AccessDeniedError."""
    sid = await rt.sessions.create()
    sink = io.BytesIO()
    for bad in (b"", "archive.tar", io.StringIO()):
        with pytest.raises(InvalidArgumentError):
            await export_session(rt.sessions, rt.artifacts, rt.store, sid, bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            await import_session(rt.sessions, rt.artifacts, rt.store, bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        await export_session(rt.sessions, rt.artifacts, rt.store, 42, sink)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        await export_session(rt.artifacts, rt.sessions, rt.store, sid, sink)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        await import_session(rt.sessions, rt.artifacts, None, sink)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        await export_session(rt.sessions, rt.artifacts, rt.store, sid, sink, progress=1)  # type: ignore[arg-type]
    with pytest.raises(SessionNotFoundError):
        await export_session(
            rt.sessions, rt.artifacts, rt.store, "00000000-0000-4000-8000-000000000000", sink
        )
    with pytest.raises(AccessDeniedError):
        await export_session(rt.sessions, rt.artifacts.as_session(sid), rt.store, sid, sink)
    assert sink.getvalue() == b""


def with_session_member(archive: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    """``archive`` with its session member's decoded body changed by ``change`` (and the
    manifest's size and hash of that member made to match)."""
    items = dict(members(archive))
    body = msgpack.unpackb(items["session.msgpack"], raw=False)
    change(body)
    data = msgpack.packb(body, use_bin_type=True)
    items["session.msgpack"] = data
    manifest = json.loads(items["manifest.json"])
    for member in manifest["members"]:
        if member["name"] == "session.msgpack":
            member["size"], member["blake3"] = len(data), blake3.blake3(data).hexdigest()
    items["manifest.json"] = json.dumps(manifest).encode()
    return build([(name, items[name]) for name, _ in members(archive)])


async def test_a_session_that_is_its_own_parent_is_refused(rt: Runtime, target: Runtime) -> None:
    """An archive whose session names itself as parent is refused (its deletes would loop)."""
    sid = await rt.sessions.create()

    def own_parent(body: dict[str, Any]) -> None:
        record = layout.RECORD_CODEC.decode(body["record"])
        body["record"] = layout.RECORD_CODEC.encode(attrs.evolve(record, parent_id=sid))

    crafted = with_session_member(await export(rt, sid), own_parent)
    await refused(target, crafted, ValidationError, "its own parent")


async def test_times_no_date_can_hold_are_refused(rt: Runtime, target: Runtime) -> None:
    """A session time past year 9999 (which would fail every later read of it, and of every
    session list) is refused."""
    sid = await rt.sessions.create()

    def far_future(body: dict[str, Any]) -> None:
        counters = layout.Counters.decode(body["counters"])
        body["counters"] = counters._replace(updated_us=1 << 62).encode()

    crafted = with_session_member(await export(rt, sid), far_future)
    await refused(target, crafted, ValidationError, "out of range")
    assert [s.id for s in await target.sessions.list()] == []


def test_descendants_of_looping_parent_links_end() -> None:
    """Parent links that loop (damaged data) list each session below once and end."""
    kv = MemoryStore()
    a, b = os.urandom(16), os.urandom(16)
    batch = Batch()
    batch.put(layout.parent_prefix(a) + b, b"")
    batch.put(layout.parent_prefix(b) + a, b"")
    kv.write(batch)
    found: list[list[bytes]] = []
    # In a thread: a walk that loops must fail the test, not hang it.
    records = LocalRecords(kv)
    walker = threading.Thread(
        target=lambda: found.append(anyio.run(removal.descendants, records, a)), daemon=True
    )
    walker.start()
    walker.join(timeout=10)
    assert found == [[b]]


async def test_a_deadline_already_past_when_imported_fires(
    rt: Runtime, target: Runtime, autojump_clock: None
) -> None:
    """An imported session whose deadline passed before the import (and after the target's
    last sweep) is acted on at once, not never."""
    sid = await rt.sessions.create(config={"max_duration_s": 60})
    archive = await export(rt, sid)
    other = await target.sessions.create(config={"max_duration_s": 100})
    await anyio.sleep(300)  # the target sweeps past the imported deadline's time
    assert (await target.sessions.get(other)).status == "failed"
    await load(target, archive)
    await anyio.sleep(1)
    assert (await target.sessions.get(sid)).status == "failed"


async def test_a_deadline_its_status_cannot_take_is_refused(rt: Runtime, target: Runtime) -> None:
    """An active session carrying a retention deadline (which it could never act on, and
    would be told of at every sweep) is refused."""
    sid = await rt.sessions.create()

    def retention_while_active(body: dict[str, Any]) -> None:
        record = layout.RECORD_CODEC.decode(body["record"])
        deadlines = ((record.created_us + 1, layout.Deadline.RETENTION.value),)
        body["record"] = layout.RECORD_CODEC.encode(attrs.evolve(record, deadlines=deadlines))

    crafted = with_session_member(await export(rt, sid), retention_while_active)
    await refused(target, crafted, ValidationError, "does not fit the status .active.")
