"""Artifact access control: grants, what each permission allows, persistence, audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from satchel import (
    AccessDeniedError,
    ArtifactNotFoundError,
    IntegrityError,
    InvalidArgumentError,
    QuotaExceededError,
    Runtime,
    SessionNotFoundError,
    ValidationError,
    open_runtime,
)
from satchel.storage import Batch


async def three(rt: Runtime) -> tuple[str, str, str]:
    """An owner with one artifact ``doc`` (two versions), and two other sessions."""
    owner, other, third = [await rt.sessions.create(name=n) for n in ("o", "b", "c")]
    await rt.artifacts.store(owner, "doc", b"v1", type="agent_output", metadata=None)
    await rt.artifacts.store(owner, "doc", b"v2", type="agent_output", metadata=None)
    return owner, other, third


async def test_without_a_grant_every_read_is_denied(rt: Runtime) -> None:
    """Another session with no grant in the owner gets AccessDenied for an existing artifact,
    a missing one and a missing session alike (it learns nothing of what exists there); the
    owner and the host read freely."""
    owner, other, _ = await three(rt)
    stranger = rt.artifacts.as_session(other)
    for call in (
        stranger.get(owner, "doc"),
        stranger.info(owner, "doc", 1),
        stranger.versions(owner, "doc"),
        stranger.list(owner),
        stranger.audit_log(owner, "doc"),
    ):
        with pytest.raises(AccessDeniedError):
            await call
    with pytest.raises(AccessDeniedError):
        async for _ in stranger.stream(owner, "doc"):
            pass
    with pytest.raises(AccessDeniedError):
        await stranger.get(owner, "missing")
    with pytest.raises(AccessDeniedError):
        await stranger.versions(owner, "missing")
    with pytest.raises(AccessDeniedError):
        await stranger.get("00000000-0000-4000-8000-000000000000", "doc")
    assert (await rt.artifacts.as_session(owner).get(None, "doc")).content == b"v2"
    assert (await rt.artifacts.get(owner, "doc")).content == b"v2"


async def test_read_grant_allows_reading_only(rt: Runtime) -> None:
    """``read`` opens every version of the name to reading, and nothing more."""
    owner, other, third = await three(rt)
    await rt.session(owner).share_artifact("doc", other, "read")
    reader = rt.session(other).artifacts
    assert (await reader.get(owner, "doc", 1)).content == b"v1"
    assert b"".join([c async for c in reader.stream(owner, "doc")]) == b"v2"
    assert [a.version for a in await reader.versions(owner, "doc")] == [1, 2]
    assert [a.name for a in await reader.list(owner)] == ["doc"]
    for call in (
        reader.store(owner, "doc", b"v3", type="agent_output"),
        reader.delete(owner, "doc"),
        reader.share(owner, "doc", third, "read"),
        reader.revoke(owner, "doc", third),
        reader.audit_log(owner, "doc"),
    ):
        with pytest.raises(AccessDeniedError):
            await call
    assert len(await rt.artifacts.versions(owner, "doc")) == 2


async def test_write_grant_stores_versions_and_deletes(rt: Runtime) -> None:
    """``write`` stores new versions into the owner's session (charged to it) and deletes,
    but may not create new names there or share."""
    owner, other, third = await three(rt)
    await rt.artifacts.share(owner, "doc", other, "write")
    writer = rt.session(other).artifacts
    ref = await writer.store(owner, "doc", b"v3", type="tool_result")
    assert (ref.session_id, ref.version) == (owner, 3)
    assert (await rt.artifacts.info(owner, ref.id)).created_by == other
    assert (await rt.sessions.get(owner)).artifact_count == 3
    with pytest.raises(AccessDeniedError):
        await writer.store(owner, "new-name", b"x", type="tool_result")
    with pytest.raises(AccessDeniedError):
        await writer.share(owner, "doc", third, "read")
    assert await writer.delete(owner, "doc", 1) == 1
    assert [a.version for a in await rt.artifacts.versions(owner, "doc")] == [2, 3]
    # The owner's journal names who deleted (the audit log goes with a deleted name).
    assert (await rt.sessions.timeline(owner))[-1].data["caller"] == other
    assert (await rt.sessions.check()).clean


async def test_admin_grant_shares_revokes_and_reads_the_audit_log(rt: Runtime) -> None:
    """``admin`` may pass grants on, take them back and read the audit log."""
    owner, other, third = await three(rt)
    await rt.artifacts.share(owner, "doc", other, "admin")
    admin = rt.session(other).artifacts
    await admin.share(owner, "doc", third, "read")
    assert (await rt.session(third).artifacts.get(owner, "doc")).content == b"v2"
    assert await admin.revoke(owner, "doc", third) is True
    assert await admin.revoke(owner, "doc", third) is False
    with pytest.raises(AccessDeniedError):
        await rt.session(third).artifacts.get(owner, "doc")
    actions = [(e.action, e.session_id, e.granted) for e in await admin.audit_log(owner, "doc")]
    assert actions == [
        ("share", None, True),
        ("share", other, True),
        ("read", third, True),
        ("revoke", other, True),
        ("revoke", other, True),  # nothing left to revoke: the decision is still recorded
        ("read", third, False),
        ("audit", other, True),
    ]


async def test_version_grant_covers_that_version_only(rt: Runtime) -> None:
    """A grant on an id opens that version; the other versions stay closed."""
    owner, other, _ = await three(rt)
    v1 = (await rt.artifacts.versions(owner, "doc"))[0]
    await rt.artifacts.share(owner, v1.id, other, "read")
    reader = rt.session(other).artifacts
    assert (await reader.get(owner, v1.id)).content == b"v1"
    with pytest.raises(AccessDeniedError):
        await reader.get(owner, "doc")  # the latest, version 2
    assert [a.version for a in await reader.versions(owner, "doc")] == [1]
    assert await reader.list(owner) == []  # the listed version is the latest
    assert [a.id for a in await reader.query(all_versions=True)] == [v1.id]


async def test_grants_survive_a_restart(tmp_path: Path) -> None:
    """Grants and the audit log are on disk: a reopened runtime decides the same way."""
    async with open_runtime(tmp_path) as rt:
        owner, other, third = await three(rt)
        await rt.artifacts.share(owner, "doc", other, "read")
        await rt.session(other).artifacts.get(owner, "doc")
    async with open_runtime(tmp_path) as rt:
        assert (await rt.session(other).artifacts.get(owner, "doc")).content == b"v2"
        with pytest.raises(AccessDeniedError):
            await rt.session(third).artifacts.get(owner, "doc")
        log = await rt.artifacts.audit_log(owner, "doc")
        assert [(e.action, e.granted) for e in log] == [
            ("share", True),
            ("read", True),
            ("read", True),
            ("read", False),
        ]
        assert await rt.artifacts.revoke(owner, "doc", other)
    async with open_runtime(tmp_path) as rt:
        with pytest.raises(AccessDeniedError):
            await rt.session(other).artifacts.get(owner, "doc")


async def test_grants_die_with_their_artifact_and_sessions(rt: Runtime) -> None:
    """Deleting a name, the granted session or the owner removes the grants; a name stored
    again does not inherit them."""
    owner, other, third = await three(rt)
    await rt.artifacts.share(owner, "doc", other, "read")
    await rt.artifacts.share(owner, "doc", third, "read")
    await rt.artifacts.delete(owner, "doc")
    await rt.artifacts.store(owner, "doc", b"again", type="agent_output", metadata=None)
    with pytest.raises(AccessDeniedError):
        await rt.session(other).artifacts.get(owner, "doc")
    await rt.artifacts.share(owner, "doc", other, "read")
    await rt.sessions.delete(other)
    assert (await rt.sessions.check()).clean
    await rt.artifacts.share(owner, "doc", third, "read")
    await rt.sessions.delete(owner)
    assert await rt.session(third).artifacts.query() == []
    report = await rt.sessions.check()
    assert report.clean, report.problems
    assert list(rt.store.kv.scan(b"agr\x00", b"agu")) == []
    assert list(rt.store.kv.scan(b"aud\x00", b"aud\x01")) == []


async def test_sharing_is_checked(rt: Runtime) -> None:
    """Unknown permissions, artifacts and sessions, and sharing with oneself, are refused."""
    owner, other, _ = await three(rt)
    with pytest.raises(ValidationError):
        await rt.artifacts.share(owner, "doc", other, "delete")
    with pytest.raises(InvalidArgumentError):
        await rt.artifacts.share(owner, "doc", other, 3)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await rt.artifacts.share(owner, "doc", owner, "read")
    with pytest.raises(ArtifactNotFoundError):
        await rt.artifacts.share(owner, "nothing", other, "read")
    with pytest.raises(SessionNotFoundError):
        await rt.artifacts.share(owner, "doc", "00000000-0000-4000-8000-000000000000", "read")
    with pytest.raises(InvalidArgumentError):
        await rt.artifacts.share(None, "doc", other, "read")  # the host has no session


async def test_finished_sessions_can_share(rt: Runtime) -> None:
    """Grants are not writes to the session: a completed session's results can be shared."""
    owner, other, _ = await three(rt)
    await rt.sessions.complete(owner)
    await rt.artifacts.share(owner, "doc", other, "read")
    assert (await rt.session(other).artifacts.get(owner, "doc")).content == b"v2"
    kinds = [e.kind for e in await rt.session(owner).timeline()]
    assert kinds[-1] == "artifact_shared"


async def test_audit_log_is_bounded(tmp_path: Path, autojump_clock: None) -> None:
    """Past ``audit_max_entries`` the oldest entries go, also across a restart."""
    async with open_runtime(tmp_path, audit_max_entries=5) as rt:
        owner, other, _ = await three(rt)
        await rt.artifacts.share(owner, "doc", other, "read")
        for _ in range(7):
            await rt.session(other).artifacts.info(owner, "doc")
    async with open_runtime(tmp_path, audit_max_entries=5) as rt:
        for _ in range(3):
            await rt.session(other).artifacts.info(owner, "doc")
        log = await rt.artifacts.audit_log(owner, "doc")
        assert [e.action for e in log] == ["read"] * 5
        assert log == sorted(log, key=lambda e: e.at)
        assert len(list(rt.store.kv.scan(b"aud\x00", b"aud\x01"))) == 5
        assert [e.action for e in await rt.artifacts.audit_log(owner, "doc", offset=3)] == [
            "read"
        ] * 2
    with pytest.raises(ValidationError):
        async with open_runtime(tmp_path, audit_max_entries=0):
            pass


async def test_a_version_grant_does_not_open_the_names_audit_log(rt: Runtime) -> None:
    """``admin`` on one version shares that version, but the log covers the whole name."""
    owner, other, third = await three(rt)
    v2 = (await rt.artifacts.versions(owner, "doc"))[1]
    await rt.artifacts.share(owner, v2.id, other, "admin")
    admin = rt.session(other).artifacts
    await admin.share(owner, v2.id, third, "read")
    with pytest.raises(AccessDeniedError):
        await admin.share(owner, "doc", third, "read")
    with pytest.raises(AccessDeniedError):
        await admin.audit_log(owner, "doc")


async def test_no_audit_data_for_names_that_do_not_exist(rt: Runtime) -> None:
    """A store into another session under a missing name is refused without writing any
    audit entry, streamed or not, and stages nothing."""
    owner, other, _ = await three(rt)
    stranger = rt.session(other).artifacts

    async def stream() -> AsyncIterator[bytes]:
        yield b"x" * (100 * 1024)

    for n in range(5):
        with pytest.raises(AccessDeniedError):
            await stranger.store(owner, f"new-{n}", b"x", type="tool_result")
        with pytest.raises(AccessDeniedError):
            await stranger.store(owner, f"big-{n}", stream(), type="tool_result")
    with pytest.raises(AccessDeniedError):
        await stranger.store(owner, "doc", stream(), type="tool_result")  # exists, no grant
    assert [(e.action, e.granted) for e in await rt.artifacts.audit_log(owner, "doc")] == [
        ("write", False)
    ]
    assert len(list(rt.store.kv.scan(b"aud\x00", b"aud\x01"))) == 1
    assert rt.store.blobs.uploads_in_flight == frozenset()
    assert (await rt.sessions.check()).clean


async def test_a_deleted_name_takes_its_audit_log_along(rt: Runtime) -> None:
    """An artifact stored again under a deleted name starts with an empty audit log."""
    owner, other, _ = await three(rt)
    await rt.artifacts.share(owner, "doc", other, "read")
    await rt.session(other).artifacts.get(owner, "doc")
    await rt.artifacts.delete(owner, "doc")
    await rt.artifacts.store(owner, "doc", b"new", type="agent_output", metadata=None)
    assert await rt.artifacts.audit_log(owner, "doc") == []
    assert (await rt.sessions.check()).clean


async def test_grantees_cannot_grant_themselves(rt: Runtime) -> None:
    """An admin cannot give itself a grant that would outlive its own; revoking a name
    removes the target's version grants too."""
    owner, other, _ = await three(rt)
    v1 = (await rt.artifacts.versions(owner, "doc"))[0]
    await rt.artifacts.share(owner, "doc", other, "admin")
    admin = rt.session(other).artifacts
    with pytest.raises(ValidationError):
        await admin.share(owner, v1.id, other, "admin")
    await rt.artifacts.share(owner, v1.id, other, "write")
    assert await rt.artifacts.revoke(owner, "doc", other)
    with pytest.raises(AccessDeniedError):
        await admin.get(owner, v1.id)
    assert list(rt.store.kv.scan(b"agr\x00", b"agu")) == []


async def test_versions_of_an_unreadable_name_are_denied(rt: Runtime) -> None:
    """With a grant on one name, another name's versions are denied, not empty."""
    owner, other, _ = await three(rt)
    await rt.artifacts.store(owner, "public", b"p", type="agent_output", metadata=None)
    await rt.artifacts.share(owner, "public", other, "read")
    reader = rt.session(other).artifacts
    assert [a.name for a in await reader.versions(owner, "public")] == ["public"]
    with pytest.raises(AccessDeniedError):
        await reader.versions(owner, "doc")
    assert [a.name for a in await reader.list(owner)] == ["public"]


async def test_strangers_learn_nothing_from_share(rt: Runtime) -> None:
    """A session without admin gets AccessDenied (audited) whatever the target."""
    owner, other, _ = await three(rt)
    stranger = rt.session(other).artifacts
    for target in (owner, other, "00000000-0000-4000-8000-000000000000"):
        with pytest.raises(AccessDeniedError):
            await stranger.share(owner, "doc", target, "read")
    log = await rt.artifacts.audit_log(owner, "doc")
    assert [(e.action, e.granted) for e in log] == [("share", False)] * 3


async def test_audit_bound_holds_when_a_write_fails(tmp_path: Path, autojump_clock: None) -> None:
    """A granted write that then fails on a quota is audited and the bound still holds."""
    async with open_runtime(tmp_path, audit_max_entries=2) as rt:
        owner = await rt.sessions.create(config={"max_artifacts": 2})
        other = await rt.sessions.create()
        await rt.artifacts.store(owner, "doc", b"v1", type="agent_output", metadata=None)
        await rt.artifacts.store(owner, "doc", b"v2", type="agent_output", metadata=None)
        await rt.artifacts.share(owner, "doc", other, "write")
        for _ in range(3):
            with pytest.raises(QuotaExceededError):
                await rt.session(other).artifacts.store(owner, "doc", b"v3", type="tool_result")
        log = await rt.artifacts.audit_log(owner, "doc")
        assert [(e.action, e.granted) for e in log] == [("write", True)] * 2
        assert len(list(rt.store.kv.scan(b"aud\x00", b"aud\x01"))) == 2


async def test_names_shaped_like_ids_are_refused(rt: Runtime) -> None:
    """A name that reads as an artifact id could never be reached by name."""
    owner, _, _ = await three(rt)
    with pytest.raises(ValidationError):
        await rt.artifacts.store(owner, "art_" + "0" * 32, b"x", type="agent_output", metadata=None)
    await rt.artifacts.store(owner, "art_" + "0" * 31, b"x", type="agent_output", metadata=None)


async def test_check_repairs_grants_and_audit_logs(rt: Runtime) -> None:
    """A grant whose artifact is gone and whose reverse entry is lost, and an audit log of
    a missing name, are repaired in one ``check(fix=True)``."""
    owner, other, _ = await three(rt)
    await rt.artifacts.share(owner, "doc", other, "read")
    await rt.session(other).artifacts.get(owner, "doc")
    kv = rt.store.kv
    batch = Batch()
    for key, _ in kv.scan(b"agt\x00", b"agt\x01"):
        batch.delete(key)
    for key, _ in kv.scan(b"anm\x00", b"anm\x01"):
        batch.delete(key)
    kv.write(batch)
    report = await rt.sessions.check(fix=True)
    assert report.fixed and report.problems
    after = await rt.sessions.check()
    assert not any("grant" in p or "audit" in p for p in after.problems), after.problems


async def test_handle_methods_share_query_revoke_and_audit(rt: Runtime) -> None:
    """The session handle's sharing methods act on its own artifacts, and its query shows
    what it may read."""
    owner, other, _ = await three(rt)
    owning, reading = rt.session(owner), rt.session(other)
    assert await reading.query_artifacts() == []
    await owning.share_artifact("doc", other, "read")
    assert [a.version for a in await reading.query_artifacts(all_versions=True)] == [1, 2]
    assert await owning.revoke_artifact("doc", other)
    assert await reading.query_artifacts() == []
    assert [e.action for e in await owning.artifact_audit_log("doc")] == ["share", "revoke"]


async def test_an_audit_entry_with_a_time_no_date_holds_reads_as_integrity_error(
    rt: Runtime,
) -> None:
    """An audit entry whose stored time no date can hold (past the year 9999: a damaged
    record) makes the audit log raise IntegrityError, not OverflowError."""
    from satchel.actors.artifacts._audit import AuditLog
    from satchel.actors.sessions import _session_layout as layout

    owner, other, _ = await three(rt)
    await AuditLog(rt.store.records).write(
        layout.bytes_of(owner), at_us=2**62, caller=other, action="read", granted=False, name="doc"
    )
    with pytest.raises(IntegrityError, match="audit entry"):
        await rt.artifacts.audit_log(owner, "doc")
