"""Artifacts: store, read, versions, list, delete, dedup and references, quotas, validation."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from satchel import (
    AccessDeniedError,
    ArtifactNotFoundError,
    InvalidArgumentError,
    QuotaExceededError,
    Runtime,
    SessionNotActiveError,
    SessionNotFoundError,
    ValidationError,
    open_runtime,
)
from satchel.storage import BlobLimits

MIB = 1 << 20


async def pieces(data: bytes, size: int = 300_000) -> AsyncIterator[bytes]:
    """``data`` as an async stream of pieces."""
    for start in range(0, len(data), size):
        await anyio.lowlevel.checkpoint()
        yield data[start : start + size]


async def clean(rt: Runtime) -> None:
    """Assert that blobs and sessions check clean."""
    found = await rt.check()
    assert found.clean, found


@pytest.fixture
def rt(networked_rt: Runtime) -> Runtime:
    """This suite's runtimes: every local one, and PostgreSQL with S3."""
    return networked_rt


async def test_store_and_get_keep_everything(rt: Runtime) -> None:
    """Content and every metadata field come back as given; mime is guessed from the name."""
    session = rt.session(await rt.sessions.create())
    meta = {"description": "a note", "tags": ["draft", "x"], "source": {"tool": "s", "n": [1]}}
    ref = await session.store_artifact("notes.md", b"# hi\n", type="agent_output", metadata=meta)
    assert (ref.session_id, ref.name, ref.version, ref.size, ref.sequence) == (
        session.id,
        "notes.md",
        1,
        5,
        1,
    )
    got = await session.get_artifact(ref.id)
    info = got.metadata
    assert got.content == b"# hi\n"
    assert (info.type, info.artifact_type, info.mime_type) == (
        "agent_output",
        "agent_output",
        "text/markdown",
    )
    assert (info.description, info.tags, info.custom) == (
        "a note",
        ("draft", "x"),
        {"source": {"tool": "s", "n": [1]}},
    )
    assert (info.content_hash, info.created_by) == (ref.content_hash, session.id)
    assert await session.artifact_info("notes.md") == info
    custom = await session.store_artifact(
        "data", b"{}", type="my-type", metadata={"mime_type": "application/json"}
    )
    assert (await session.artifact_info(custom.id)).mime_type == "application/json"
    await clean(rt)


async def test_versions_ids_and_listing(rt: Runtime) -> None:
    """A name stored again gets version n+1; every version has its own id, also for equal bytes."""
    session = rt.session(await rt.sessions.create())
    first = await session.store_artifact("a.txt", b"same", type="tool_result")
    second = await session.store_artifact("a.txt", b"same", type="tool_result")
    other = await session.store_artifact("b.txt", b"same", type="tool_result")
    third = await session.store_artifact("a.txt", b"new", type="tool_result")
    assert [first.version, second.version, third.version] == [1, 2, 3]
    assert len({first.id, second.id, third.id, other.id}) == 4
    assert first.content_hash == second.content_hash == other.content_hash
    assert [(i.name, i.version) for i in await session.list_artifacts()] == [
        ("a.txt", 3),
        ("b.txt", 1),
    ]
    assert [i.version for i in await session.artifact_versions("a.txt")] == [1, 2, 3]
    assert (await session.get_artifact("a.txt", 1)).content == b"same"
    assert (await session.get_artifact("a.txt")).content == b"new"
    assert (await session.get_artifact(second)).metadata.version == 2


async def test_streams_in_and_out(rt: Runtime) -> None:
    """Content streamed in as pieces is stored whole; a streaming read gives it back."""
    data = os.urandom(MIB) + b"text " * 300_000
    session = rt.session(await rt.sessions.create())
    ref = await session.store_artifact("big.bin", pieces(data), type="user_input")
    assert ref.size == len(data)
    out = b"".join([chunk async for chunk in session.stream_artifact(ref.id)])
    assert out == data
    assert (await session.get_artifact("big.bin")).content == data
    await clean(rt)


async def test_delete_by_id_version_and_name(rt: Runtime) -> None:
    """Delete removes one version by id or number, or all versions by name; numbering goes on."""
    session = rt.session(await rt.sessions.create())
    refs = [
        await session.store_artifact("r", f"v{i}".encode(), type="tool_result") for i in range(4)
    ]
    assert await session.delete_artifact(refs[1].id) == 1
    assert await session.delete_artifact("r", 4) == 1
    assert [i.version for i in await session.artifact_versions("r")] == [1, 3]
    # The last assigned version (4) is gone: the latest is the newest left.
    assert (await session.get_artifact("r")).content == b"v2"
    assert (await session.store_artifact("r", b"v5", type="tool_result")).version == 5
    assert (await session.get_artifact("r")).content == b"v5"
    with pytest.raises(ArtifactNotFoundError):
        await session.get_artifact(refs[1].id)
    assert await session.delete_artifact("r") == 3
    with pytest.raises(ArtifactNotFoundError):
        await session.artifact_versions("r")
    with pytest.raises(ArtifactNotFoundError):
        await session.delete_artifact("r")
    assert await session.list_artifacts() == []
    info = await session.info()
    assert (info.artifact_count, info.total_bytes) == (0, 0)
    await clean(rt)


async def test_version_numbers_are_never_given_twice(rt: Runtime) -> None:
    """A name deleted whole, or down to nothing, numbers its next version after the last."""
    sid = await rt.sessions.create()
    session = rt.session(sid)
    one = await session.store_artifact("r", b"first", type="tool_result")
    assert await session.delete_artifact("r", 1) == 1
    again = await session.store_artifact("r", b"second", type="tool_result")
    assert again.version == 2
    with pytest.raises(ArtifactNotFoundError):
        await session.get_artifact("r", one.version)
    await session.store_artifact("r", b"third", type="tool_result")
    assert await session.delete_artifact("r") == 2
    assert (await session.store_artifact("r", b"fourth", type="tool_result")).version == 4
    assert [i.version for i in await session.artifact_versions("r")] == [4]
    await clean(rt)
    await rt.sessions.delete(sid)
    await clean(rt)


async def test_type_cannot_be_swapped_with_the_name(rt: Runtime) -> None:
    """``type`` and ``metadata`` are keywords, so the old positional order fails loudly."""
    sid = await rt.sessions.create()
    store: Any = rt.artifacts.store
    with pytest.raises(TypeError):
        await store(sid, "tool_result", "report.md", b"x")
    handle: Any = rt.session(sid).store_artifact
    with pytest.raises(TypeError):
        await handle("report.md", b"x", "tool_result")
    assert await rt.artifacts.list(sid) == []


async def test_journal_names_artifacts_never_content(rt: Runtime) -> None:
    """Stores and deletes are journaled with id, name, version and hash, not the bytes."""
    session = rt.session(await rt.sessions.create())
    ref = await session.store_artifact("secret.txt", b"TOPSECRET", type="user_input")
    await session.delete_artifact(ref.id)
    stored, deleted = (await session.timeline())[1:]
    assert stored.kind == "artifact_stored" and deleted.kind == "artifact_deleted"
    assert {k: stored.data[k] for k in ("id", "name", "version", "hash")} == {
        "id": ref.id,
        "name": "secret.txt",
        "version": 1,
        "hash": ref.content_hash,
    }
    assert deleted.data["deleted"] == [{"id": ref.id, "version": 1, "hash": ref.content_hash}]
    assert b"TOPSECRET" not in repr(await session.timeline()).encode()


async def test_dedup_and_shared_blob_lifetime(rt: Runtime) -> None:
    """Equal bytes in two sessions are one blob with two references, freed with the last."""
    one = rt.session(await rt.sessions.create())
    two = rt.session(await rt.sessions.create())
    data = b"shared " * 500_000
    a = await one.store_artifact("x", data, type="agent_output")
    b = await two.store_artifact("y", data, type="agent_output")
    blob = await rt.store.blobs.info(a.content_hash)
    assert blob is not None and a.content_hash == b.content_hash
    assert len(await rt.store.blobs.references(a.content_hash)) == 2
    await one.delete_artifact(a.id)
    assert len(await rt.store.blobs.references(a.content_hash)) == 1
    assert (await two.get_artifact(b.id)).content == data
    await rt.sessions.delete(two.id)
    assert await rt.store.blobs.info(a.content_hash) is None
    await clean(rt)


async def test_concurrent_stores_of_the_same_bytes_make_one_blob(rt: Runtime) -> None:
    """Two sessions storing the same new bytes at once end with one blob and two references."""
    data = os.urandom(3 * MIB)
    sessions = [rt.session(await rt.sessions.create()) for _ in range(2)]
    refs = []

    async def store(session: Any, streamed: bool) -> None:
        content = pieces(data) if streamed else data
        refs.append(await session.store_artifact("same", content, type="tool_result"))

    async with anyio.create_task_group() as nursery:
        nursery.start_soon(store, sessions[0], True)
        nursery.start_soon(store, sessions[1], False)
    assert refs[0].content_hash == refs[1].content_hash
    assert len(await rt.store.blobs.references(refs[0].content_hash)) == 2
    await clean(rt)


async def test_references_survive_reopen(tmp_path: Path) -> None:
    """After a restart, refcounts hold: deleting one of two users keeps the blob."""
    async with open_runtime(tmp_path) as rt:
        one = await rt.sessions.create()
        two = await rt.sessions.create()
        data = b"persisted " * 200_000
        a = await rt.artifacts.store(one, "p", data, type="agent_output")
        await rt.artifacts.store(two, "q", data, type="agent_output")
    async with open_runtime(tmp_path) as rt:
        assert len(await rt.store.blobs.references(a.content_hash)) == 2
        await rt.artifacts.delete(one, "p")
        assert (await rt.artifacts.get(two, "q")).content == data
        await rt.sessions.delete(two)
        assert await rt.store.blobs.info(a.content_hash) is None
        await clean(rt)


@pytest.mark.parametrize("streamed", [False, True])
async def test_quotas_refuse_before_writing(rt: Runtime, streamed: bool) -> None:
    """max_artifacts and max_bytes allow exactly their limit and refuse the next store."""
    sid = await rt.sessions.create(config={"max_artifacts": 2, "max_bytes": 1000})
    session = rt.session(sid)

    def content(data: bytes) -> Any:
        return pieces(data, 100) if streamed else data

    await session.store_artifact("a", content(b"x" * 600), type="tool_result")
    with pytest.raises(QuotaExceededError, match="max_bytes"):
        await session.store_artifact("b", content(b"y" * 401), type="tool_result")
    await session.store_artifact("b", content(b"y" * 400), type="tool_result")
    with pytest.raises(QuotaExceededError, match="max_artifacts"):
        await session.store_artifact("c", content(b""), type="tool_result")
    info = await session.info()
    assert (info.artifact_count, info.total_bytes) == (2, 1000)
    assert [i.name for i in await session.list_artifacts()] == ["a", "b"]
    await clean(rt)
    assert rt.store.blobs.uploads_in_flight == frozenset()


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", ValidationError),
        ("x" * 256, ValidationError),
        ("a/b", ValidationError),
        ("a\\b", ValidationError),
        ("a\x00b", ValidationError),
        (".hidden", ValidationError),
        ("..", ValidationError),
        (7, InvalidArgumentError),
    ],
)
async def test_bad_names_are_refused(rt: Runtime, name: Any, error: type[Exception]) -> None:
    """Names must be 1-255 bytes without '/', '\\', NUL or a leading '.'."""
    session = rt.session(await rt.sessions.create())
    with pytest.raises(error):
        await session.store_artifact(name, b"x", type="tool_result")
    assert await session.list_artifacts() == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"type": ""}, InvalidArgumentError),
        ({"type": None}, InvalidArgumentError),
        ({"metadata": {"tags": ["t" * 65]}}, ValidationError),
        ({"metadata": {"mime_type": "text"}}, ValidationError),
        ({"metadata": {"mime_type": "text/plain\r\nX-Injected: 1"}}, ValidationError),
        ({"metadata": {"custom": {1: 2}}}, InvalidArgumentError),
        ({"content": "text, not bytes"}, InvalidArgumentError),
    ],
)
async def test_bad_store_input_is_refused(
    rt: Runtime, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    """Each bad type, tag, mime type or content gets its error and stores nothing."""
    session = rt.session(await rt.sessions.create())
    call = {"name": "n", "content": b"x", "type": "tool_result", "metadata": None} | kwargs
    with pytest.raises(error):
        await session.store_artifact(**call)
    assert await session.list_artifacts() == []
    await clean(rt)


async def test_content_size_limit(tmp_path: Path) -> None:
    """Content over the configured maximum is refused, whole or streamed, leaving nothing."""
    limits = BlobLimits(chunk_size=4096, max_size=10_000)
    async with open_runtime(tmp_path, limits=limits) as rt:
        session = rt.session(await rt.sessions.create())
        with pytest.raises(ValidationError):
            await session.store_artifact("big", b"x" * 10_001, type="tool_result")
        with pytest.raises(ValidationError):
            await session.store_artifact("big", pieces(b"x" * 20_000, 3000), type="tool_result")
        await session.store_artifact("ok", b"x" * 10_000, type="tool_result")
        assert [i.name for i in await session.list_artifacts()] == ["ok"]
        await clean(rt)
        assert rt.store.blobs.uploads_in_flight == frozenset()


async def test_a_failing_stream_stores_nothing(rt: Runtime) -> None:
    """A content stream that raises midway leaves no artifact and no chunks."""
    session = rt.session(await rt.sessions.create())

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (2 * MIB)
        raise OSError("the network went away")

    with pytest.raises(OSError, match="network"):
        await session.store_artifact("partial", broken(), type="user_input")
    assert await session.list_artifacts() == []
    await clean(rt)
    assert rt.store.blobs.uploads_in_flight == frozenset()


async def test_only_active_sessions_store_and_unknowns_are_typed(rt: Runtime) -> None:
    """Stores into a non-active session and reads of unknown things get their error kinds."""
    session = rt.session(await rt.sessions.create())
    ref = await session.store_artifact("kept", b"k", type="tool_result")
    await session.complete()
    with pytest.raises(SessionNotActiveError):
        await session.store_artifact("late", b"x", type="tool_result")
    with pytest.raises(SessionNotActiveError):
        await session.delete_artifact(ref.id)
    assert (await session.get_artifact(ref.id)).content == b"k"
    missing = "art_" + "0" * 32
    with pytest.raises(ArtifactNotFoundError):
        await session.get_artifact(missing)
    with pytest.raises(ArtifactNotFoundError):
        await session.get_artifact("kept", 2)
    with pytest.raises(SessionNotFoundError):
        await rt.artifacts.list("7d0b4f0a-2f6b-4c38-9d0e-5a1b3c2d4e5f")
    other = rt.session(await rt.sessions.create())
    with pytest.raises(ArtifactNotFoundError):
        await other.get_artifact(ref.id)


async def test_store_file_reads_only_under_allowed_roots(tmp_path: Path) -> None:
    """store_file takes files under its roots, refusing traversal, symlinks out and folders."""
    root, outside = tmp_path / "work", tmp_path / "private"
    root.mkdir()
    outside.mkdir()
    (root / "report.csv").write_bytes(b"a,b\n1,2\n")
    (outside / "secret.txt").write_bytes(b"no")
    (root / "link.txt").symlink_to(outside / "secret.txt")
    async with open_runtime(tmp_path / "data", file_roots=[root]) as rt:
        session = rt.session(await rt.sessions.create())
        ref = await session.store_file(root / "report.csv", type="user_input")
        info = await session.artifact_info(ref.id)
        assert (info.name, info.mime_type, info.size) == ("report.csv", "text/csv", 8)
        for bad in (root / ".." / "private" / "secret.txt", root / "link.txt"):
            with pytest.raises(AccessDeniedError):
                await session.store_file(bad, type="user_input")
        with pytest.raises(ValidationError):
            await session.store_file(root, type="user_input")
        with pytest.raises(ValidationError):
            await session.store_file(root / "missing", type="user_input")
        assert [i.name for i in await session.list_artifacts()] == ["report.csv"]


async def test_store_file_never_reads_the_data_folder(tmp_path: Path) -> None:
    """A file inside the data folder is refused even under an allowed root (it holds every
    session's data, and the HTTP token)."""
    async with open_runtime(tmp_path / "data", file_roots=[tmp_path]) as rt:
        session = rt.session(await rt.sessions.create())
        for name in ("CURRENT", "../data/CURRENT"):
            with pytest.raises(AccessDeniedError, match="inside the data folder"):
                await session.store_file(tmp_path / "data" / name, type="user_input")
        assert await session.list_artifacts() == []


class _SwappingOs:
    """``os`` as the artifact writes see it, putting a symlink to ``target`` in place of
    ``victim`` just before it is opened (another process racing the check)."""

    def __init__(self, victim: Path, target: Path) -> None:
        self.victim, self.target = victim, target

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def open(self, path: Any, flags: int, *args: Any) -> int:
        if Path(path) == self.victim and not self.victim.is_symlink():
            self.victim.unlink()
            self.victim.symlink_to(self.target)
        return os.open(path, flags, *args)


async def test_store_file_checks_the_file_it_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file swapped for a symlink to outside the roots as it is opened is refused: the
    check is made on what was opened, not on the path before."""
    from satchel.actors.artifacts import _artifact_writes

    root, outside = tmp_path / "work", tmp_path / "private"
    root.mkdir()
    outside.mkdir()
    (root / "report.txt").write_bytes(b"fine")
    (outside / "secret.txt").write_bytes(b"SECRET")
    monkeypatch.setattr(
        _artifact_writes, "os", _SwappingOs(root / "report.txt", outside / "secret.txt")
    )
    async with open_runtime(tmp_path / "data", file_roots=[root]) as rt:
        session = rt.session(await rt.sessions.create())
        with pytest.raises(AccessDeniedError, match="outside the folders"):
            await session.store_file(root / "report.txt", type="user_input")
        assert await session.list_artifacts() == []


async def test_a_file_that_grows_while_read_is_refused(tmp_path: Path) -> None:
    """A file whose size changes during the read stores nothing."""
    from satchel.actors.artifacts import _artifact_writes

    path = tmp_path / "growing.log"
    path.write_bytes(b"x" * (3 * MIB))
    real = _artifact_writes.read_file

    async def growing(raw: Any, p: Path) -> AsyncIterator[bytes]:
        async for piece in real(raw, p):
            with path.open("ab") as handle:
                handle.write(b"more")
            yield piece

    async with open_runtime(tmp_path / "data", file_roots=[tmp_path]) as rt:
        session = rt.session(await rt.sessions.create())
        _artifact_writes.read_file = growing  # type: ignore[assignment]
        try:
            with pytest.raises(ValidationError, match="changed size"):
                await session.store_file(path, type="user_input")
        finally:
            _artifact_writes.read_file = real  # type: ignore[assignment]
        assert await session.list_artifacts() == []
        await clean(rt)


def _fail_the_cleanup_of_the_next_commit(rt: Runtime) -> None:
    """Make the second write from now (a commit's freeing of unused chunks) fail once."""
    kv = rt.store.kv
    if kv is None:
        pytest.skip("makes a write of the local backend fail")
    real_write = kv.write
    writes = 0

    def write(batch: Any, *, sync: bool | None = None) -> None:
        nonlocal writes
        writes += 1
        if writes == 2:
            kv.write = real_write  # type: ignore[method-assign]
            raise OSError("injected: freeing chunks failed")
        real_write(batch, sync=sync)

    kv.write = write  # type: ignore[method-assign]


async def test_a_failed_chunk_cleanup_does_not_undo_a_committed_delete(rt: Runtime) -> None:
    """When freeing the chunks of a deleted artifact fails, the delete still counts as done
    (its journal entry stays and later entries follow it), and check(fix=True) frees them."""
    sid = await rt.sessions.create()
    await rt.artifacts.store(sid, "only.bin", os.urandom(5000), type="agent_output")
    _fail_the_cleanup_of_the_next_commit(rt)
    assert await rt.artifacts.delete(sid, "only.bin") == 1
    await rt.sessions.set_state(sid, "after", 1)
    kinds = [e.kind for e in await rt.sessions.timeline(sid)]
    assert kinds == ["session_created", "artifact_stored", "artifact_deleted", "state_set"]
    assert (await rt.sessions.get(sid)).artifact_count == 0
    found = await rt.check(fix=True)
    assert found.blobs.orphan_chunks and found.sessions.clean
    await clean(rt)


async def test_a_failed_chunk_cleanup_does_not_bring_a_deleted_session_back(
    rt: Runtime,
) -> None:
    """A session delete whose chunk freeing fails is still a delete: the session is gone and
    later writes to it are refused, leaving none of its keys."""
    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "a", 1)
    await rt.artifacts.store(sid, "only.bin", os.urandom(5000), type="agent_output")
    _fail_the_cleanup_of_the_next_commit(rt)
    await rt.sessions.delete(sid)
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.set_state(sid, "zombie", 1)
    raw = bytes.fromhex(sid.replace("-", ""))
    assert [k for k, _ in await rt.store.records.scan(b"", b"\xff" * 8) if raw in k] == []
    await rt.check(fix=True)
    await clean(rt)
