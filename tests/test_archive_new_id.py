"""Importing an archive under a fresh session id, beside its original or twice."""

from __future__ import annotations

from typing import Any

import pytest

from satchel import Runtime, SessionExistsError, ValidationError

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


async def test_a_copy_keeps_data_that_looks_like_its_ids(rt: Runtime) -> None:
    """Variables and artifact names that hold the session's or an artifact's id are kept
    as they were: only the journal's own id fields are renamed, so replay agrees."""
    sid = await rt.sessions.create()
    ref = await rt.artifacts.store(sid, "out.txt", b"x", type="tool_result")
    await rt.sessions.set_state(sid, "me", sid)
    await rt.sessions.set_state(sid, "last_artifact", ref.id)
    await rt.sessions.set_state(sid, sid, 1)
    await rt.artifacts.store(sid, sid, b"named after me", type="tool_result")
    copy = (await load(rt, await export(rt, sid), new_id=True)).session_id
    state = {k: await rt.sessions.get_state(copy, k) for k in await rt.sessions.list_state(copy)}
    assert state == {"me": sid, "last_artifact": ref.id, sid: 1}
    assert sorted(a.name for a in await rt.artifacts.list(copy)) == sorted([sid, "out.txt"])
    replayed = await rt.sessions.replay(copy)
    assert replayed.state == state
    assert sorted(a.name for a in replayed.artifacts) == sorted([sid, "out.txt"])
    await clean(rt)


async def test_the_nil_uuid_is_never_imported(rt: Runtime) -> None:
    """An archive whose session record is the nil UUID's is refused."""
    import attrs
    import msgpack

    from satchel.actors.archives import _archive_read
    from satchel.actors.sessions import _session_layout as layout

    sid = await rt.sessions.create()
    raw_record, raw_counters = rt.store.kv.get_many(
        [layout.record_key(layout.bytes_of(sid)), layout.counters_key(layout.bytes_of(sid))]
    )
    assert raw_record is not None and raw_counters is not None
    nil = "00000000-0000-0000-0000-000000000000"
    record = attrs.evolve(layout.RECORD_CODEC.decode(raw_record), id=nil)
    body = msgpack.packb({"record": layout.RECORD_CODEC.encode(record), "counters": raw_counters})
    records = _archive_read._Records(nil, layout.bytes_of(nil))
    with pytest.raises(ValidationError, match="nil UUID"):
        _archive_read._read_session(records, body)


async def test_a_copy_counts_against_no_scripts_budget(rt: Runtime) -> None:
    """A session a script made counts against the script's session; its copy, imported by
    the host under a new id, does not."""
    from satchel.actors.sessions import _session_layout as layout

    holder = await rt.sessions.create(config={"max_artifacts": 4})
    made = await rt.run_lua(
        "return Session.create({})",
        session_id=holder,
        output=lambda _: None,
    )
    copy = (await load(rt, await export(rt, made[0]), new_id=True)).session_id
    raw = rt.store.kv.get(layout.record_key(layout.bytes_of(copy)))
    assert raw is not None
    assert layout.RECORD_CODEC.decode(raw).budget_of is None
    await clean(rt)


async def test_a_round_trip_keeps_retired_version_numbers(rt: Runtime) -> None:
    """A name deleted whole before the export still numbers on after it in the imported
    session, the same id or a new one."""
    sid = await rt.sessions.create()
    for content in (b"1", b"2"):
        await rt.artifacts.store(sid, "a.txt", content, type="tool_result")
    await rt.artifacts.delete(sid, "a.txt")
    archive = await export(rt, sid)
    copy = (await load(rt, archive, new_id=True)).session_id
    await rt.sessions.delete(sid)
    await load(rt, archive)
    for session in (sid, copy):
        assert (await rt.artifacts.store(session, "a.txt", b"3", type="tool_result")).version == 3
    await clean(rt)


async def test_version_one_archives_still_import(rt: Runtime) -> None:
    """An archive in format version 1 (no retired names) imports."""
    import json

    import blake3
    import msgpack

    from .test_archive import build, members

    sid = await rt.sessions.create()
    await rt.artifacts.store(sid, "a.txt", b"1", type="tool_result")
    items = members(await export(rt, sid))
    await rt.sessions.delete(sid)
    artifacts = msgpack.unpackb(dict(items)["artifacts.msgpack"])
    del artifacts["retired"]
    old_member = msgpack.packb(artifacts)
    manifest = json.loads(items[0][1])
    manifest["version"] = 1
    for member in manifest["members"]:
        if member["name"] == "artifacts.msgpack":
            member["size"], member["blake3"] = (
                len(old_member),
                blake3.blake3(old_member).hexdigest(),
            )
    edited = [(n, old_member if n == "artifacts.msgpack" else d) for n, d in items[1:]]
    await load(rt, build([("manifest.json", json.dumps(manifest).encode()), *edited]))
    assert (await rt.artifacts.get(sid, "a.txt")).content == b"1"


@pytest.mark.parametrize(
    ("kind", "bad"),
    [
        ("artifact_deleted", {"deleted": 5}),
        ("artifact_deleted", {"deleted": [["not", "a", "map"], {"id": ["a", "list"]}]}),
        ("artifact_stored", {"id": ["a", "list"], "name": "a.txt"}),
    ],
)
async def test_a_copy_keeps_entries_of_an_odd_shape_as_they_were(
    rt: Runtime, kind: str, bad: dict[str, Any]
) -> None:
    """An archive entry whose ids are not where entries keep them (an odd shape a replay
    refuses) imports under a new id as it is, not as a TypeError halfway through."""
    import io

    import msgpack

    from satchel.actors import export_session, import_session
    from satchel.actors.sessions import _session_layout as layout

    from .test_event_log import _with_member

    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "k", 1)
    sink = io.BytesIO()
    await export_session(rt.sessions, rt.artifacts, rt.store, sid, sink)

    def odd(data: bytes) -> bytes:
        entries = msgpack.unpackb(data)
        seq, raw = entries[-1]  # an operation, in place of an operation
        at_us, _, _, _ = layout.decode_entry_with_cause(raw)
        cause = {"session_id": ["not", "text"]}
        entries[-1] = [seq, layout.encode_entry(at_us, kind, bad, cause)]
        packed: bytes = msgpack.packb(entries)
        return packed

    archive = _with_member(sink.getvalue(), "journal.msgpack", odd)
    report = await import_session(
        rt.sessions, rt.artifacts, rt.store, io.BytesIO(archive), new_id=True
    )
    assert report.session_id != sid
    assert await rt.sessions.get_state(report.session_id, "k") == 1
