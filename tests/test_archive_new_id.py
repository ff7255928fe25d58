"""Importing an archive under a fresh session id, beside its original or twice."""

from __future__ import annotations

import pytest

from satchel import Runtime, SessionExistsError

from .test_archive import clean, export, load, rich_session


async def test_new_id_imports_beside_the_original(rt: Runtime) -> None:
    """With new_id an archive imports into the store it came from, twice, as new sessions
    that read back like the original under fresh session and artifact ids."""
    sid = await rich_session(rt)
    archive = await export(rt, sid)
    with pytest.raises(SessionExistsError):
        await load(rt, archive)
    copies = [(await load(rt, archive, new_id=True)).session_id for _ in range(2)]
    assert len({sid, *copies}) == 3
    original = await rt.sessions.get(sid)
    old_ids = {
        v.id for a in await rt.artifacts.list(sid) for v in await rt.artifacts.versions(sid, a.name)
    }
    for copy in copies:
        info = await rt.sessions.get(copy)
        assert (info.name, info.tags, info.metadata, info.status) == (
            original.name,
            original.tags,
            original.metadata,
            original.status,
        )
        assert await rt.sessions.list_state(copy) == await rt.sessions.list_state(sid)
        for name in await rt.sessions.list_state(sid):
            assert await rt.sessions.get_state(copy, name) == await rt.sessions.get_state(sid, name)
        listed = await rt.artifacts.list(copy)
        assert [(a.name, a.version, a.content_hash) for a in listed] == [
            (a.name, a.version, a.content_hash) for a in await rt.artifacts.list(sid)
        ]
        for info_ in listed:
            assert info_.session_id == copy and info_.id not in old_ids
            got = await rt.artifacts.get(copy, info_.id)
            assert got.content == (await rt.artifacts.get(sid, info_.name)).content
        # The journal names the new ids: every artifact it stored is one of the copy's.
        stored = [
            e.data["id"] for e in await rt.sessions.timeline(copy) if e.kind == "artifact_stored"
        ]
        assert stored and not set(stored) & old_ids
        replayed = await rt.sessions.replay(copy)
        assert replayed.state == (await rt.sessions.replay(sid)).state
    await clean(rt)


async def test_a_new_id_copy_forks_and_deletes_on_its_own(rt: Runtime) -> None:
    """A copy imported under a new id forks, takes writes and goes without touching the original."""
    sid = await rt.sessions.create(name="live")
    await rt.artifacts.store(sid, "a.txt", b"1", type="tool_result")
    await rt.sessions.set_state(sid, "n", 1)
    copy = (await load(rt, await export(rt, sid), new_id=True)).session_id
    fork = await rt.sessions.fork(copy)
    assert (await rt.artifacts.get(fork, "a.txt")).content == b"1"
    assert (await rt.artifacts.store(copy, "a.txt", b"2", type="tool_result")).version == 2
    await rt.sessions.delete(fork)
    await rt.sessions.delete(copy)
    assert (await rt.artifacts.get(sid, "a.txt")).content == b"1"
    assert await rt.sessions.get_state(sid, "n") == 1
    await clean(rt)
