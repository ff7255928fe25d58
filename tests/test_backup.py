"""Whole-store backups taken while the runtime serves, and restoring them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest

from satchel import (
    IntegrityError,
    InvalidArgumentError,
    StoreClosedError,
    ValidationError,
    open_runtime,
    restore_backup,
)
from satchel.storage import _backup

BIG = 300_000  # past the 64 KiB from which chunks are files


async def test_backup_is_the_store_as_it_was_when_it_began(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes and deletes made while a backup copies do not reach it, and the chunk files a
    delete frees stay until the copy is done: the restored store has every artifact."""
    contents = {f"a{i}.bin": os.urandom(BIG) for i in range(3)}
    copy = _backup._copy_files

    async with open_runtime(tmp_path / "data") as rt:
        sid = await rt.sessions.create(name="kept")
        for name, data in contents.items():
            await rt.artifacts.store(sid, name, data, type="tool_result")
        await rt.sessions.set_state(sid, "step", 1)

        async def meanwhile() -> None:
            for name in contents:
                await rt.artifacts.delete(sid, name)
            await rt.control.gc()
            await rt.sessions.set_state(sid, "step", 2)
            await rt.artifacts.store(sid, "late.bin", os.urandom(BIG), type="tool_result")

        def copy_after_changes(*args: Any) -> int:
            anyio.from_thread.run(meanwhile)
            return copy(*args)

        monkeypatch.setattr(_backup, "_copy_files", copy_after_changes)
        report = await rt.backup(tmp_path / "backup")
        assert report.chunk_files >= 3 and report.chunk_bytes >= 3 * BIG
        assert await rt.artifacts.list(sid) != []
        assert (await rt.check()).clean
    result = await restore_backup(tmp_path / "backup", tmp_path / "restored")
    assert result.clean
    async with open_runtime(tmp_path / "restored") as restored:
        assert await restored.sessions.get_state(sid, "step") == 1
        names = sorted(a.name for a in await restored.artifacts.list(sid))
        assert names == sorted(contents)
        for name, data in contents.items():
            assert (await restored.artifacts.get(sid, name)).content == data
    assert (tmp_path / "backup").is_dir()  # the backup stays


async def test_a_backup_opens_as_a_data_folder(tmp_path: Path) -> None:
    """A backup is itself a data folder, and the original goes on taking writes."""
    async with open_runtime(tmp_path / "data") as rt:
        sid = await rt.sessions.create(tags=["t"])
        await rt.session(sid).set_state("k", "v")
        await rt.backup(tmp_path / "b")
        await rt.session(sid).set_state("k", "after")
    async with open_runtime(tmp_path / "b") as copy:
        assert await copy.session(sid).get_state("k") == "v"
        assert [s.id for s in await copy.sessions.list(tags=["t"])] == [sid]
        assert (await copy.check()).clean


async def test_bad_backup_requests_are_refused(tmp_path: Path) -> None:
    """Existing, nested or parentless destinations and in-memory stores are refused."""
    (tmp_path / "taken").mkdir()
    async with open_runtime(tmp_path / "data") as rt:
        for bad in (tmp_path / "taken", tmp_path / "data" / "inner", tmp_path / "no" / "b"):
            with pytest.raises(ValidationError):
                await rt.backup(bad)
    async with open_runtime(store="memory") as memory:
        with pytest.raises(InvalidArgumentError):
            await memory.backup(tmp_path / "m")
    assert sorted(os.listdir(tmp_path)) == ["data", "taken"]


async def test_bad_restores_are_refused(tmp_path: Path) -> None:
    """A folder that is no backup, or a target in use, is refused and nothing is written."""
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("mine")
    with pytest.raises(ValidationError):
        await restore_backup(tmp_path / "busy", tmp_path / "new")
    async with open_runtime(tmp_path / "data") as source:
        await source.sessions.create()
        await source.backup(tmp_path / "b")
    with pytest.raises(ValidationError):
        await restore_backup(tmp_path / "b", tmp_path / "busy")
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "busy" / "x").read_text() == "mine"


async def test_a_damaged_backup_does_not_restore(tmp_path: Path) -> None:
    """A backup missing a chunk file fails its check: IntegrityError, and no folder."""
    async with open_runtime(tmp_path / "data") as rt:
        sid = await rt.sessions.create()
        await rt.artifacts.store(sid, "a.bin", os.urandom(BIG), type="tool_result")
        await rt.backup(tmp_path / "b")
    chunk = next(p for p in (tmp_path / "b" / "chunks").rglob("*") if p.is_file())
    chunk.unlink()
    with pytest.raises(IntegrityError):
        await restore_backup(tmp_path / "b", tmp_path / "restored")
    assert not (tmp_path / "restored").exists()
    assert not (tmp_path / "restored.partial").exists()


async def test_a_backup_never_removes_what_was_there(tmp_path: Path) -> None:
    """A data folder named like a backup's work folder is left alone, and so is its store."""
    async with open_runtime(tmp_path / "store.partial") as rt:
        sid = await rt.sessions.create(name="live")
        await rt.backup(tmp_path / "store")
        assert (await rt.sessions.get(sid)).name == "live"
        assert (await rt.check()).clean
    assert sorted(os.listdir(tmp_path)) == ["store", "store.partial"]


async def test_two_backups_to_one_place_leave_one_whole_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Of two backups racing to one destination one is published, the other refused, and
    no work folder is left."""
    copy = _backup._copy_files
    async with open_runtime(tmp_path / "data") as rt:
        sid = await rt.sessions.create()
        await rt.artifacts.store(sid, "a.bin", os.urandom(BIG), type="tool_result")
        second: list[BaseException] = []

        async def race() -> None:
            try:
                await rt.backup(tmp_path / "b")
            except ValidationError as error:
                second.append(error)

        def copy_while_another_runs(*args: Any) -> int:
            monkeypatch.setattr(_backup, "_copy_files", copy)
            anyio.from_thread.run(race)
            return copy(*args)

        monkeypatch.setattr(_backup, "_copy_files", copy_while_another_runs)
        with pytest.raises(ValidationError):
            await rt.backup(tmp_path / "b")
        assert second == []  # the one started second finished first
    assert sorted(os.listdir(tmp_path)) == ["b", "data"]
    assert (await restore_backup(tmp_path / "b", tmp_path / "r")).clean


async def test_a_store_closed_under_a_backup_fails_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backup whose store closes while it copies fails, leaving no folder."""
    copy = _backup._copy_files
    async with open_runtime(tmp_path / "data") as rt:
        await rt.sessions.create()

        def copy_after_close(*args: Any) -> int:
            rt.store.kv.close()
            return copy(*args)

        monkeypatch.setattr(_backup, "_copy_files", copy_after_close)
        with pytest.raises(StoreClosedError):
            await rt.backup(tmp_path / "b")
    assert sorted(os.listdir(tmp_path)) == ["data"]


async def test_a_restore_that_fails_to_copy_leaves_nothing(tmp_path: Path) -> None:
    """A backup that cannot be copied whole (a dangling link in it) leaves no folder."""
    async with open_runtime(tmp_path / "data") as rt:
        await rt.sessions.create()
        await rt.backup(tmp_path / "b")
    (tmp_path / "b" / "broken").symlink_to(tmp_path / "nowhere")
    with pytest.raises(shutil.Error):
        await restore_backup(tmp_path / "b", tmp_path / "r")
    assert sorted(os.listdir(tmp_path)) == ["b", "data"]
