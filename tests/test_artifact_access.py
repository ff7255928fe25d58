"""Artifact access control: grants, what each permission allows, persistence, audit log."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from satchel import (
    AccessDeniedError,
    ArtifactNotFoundError,
    InvalidArgumentError,
    Runtime,
    SessionNotFoundError,
    ValidationError,
    open_runtime,
)


async def three(rt: Runtime) -> tuple[str, str, str]:
    """An owner with one artifact ``doc`` (two versions), and two other sessions."""
    owner, other, third = [await rt.sessions.create(name=n) for n in ("o", "b", "c")]
    await rt.artifacts.store(owner, "agent_output", "doc", b"v1", None)
    await rt.artifacts.store(owner, "agent_output", "doc", b"v2", None)
    return owner, other, third


async def test_without_a_grant_every_read_is_denied(rt: Runtime) -> None:
    """Another session gets AccessDenied for an existing artifact and ArtifactNotFound for
    a missing one; the owner and the host read freely."""
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
    with pytest.raises(ArtifactNotFoundError):
        await stranger.get(owner, "missing")
    with pytest.raises(SessionNotFoundError):
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
        reader.store(owner, "agent_output", "doc", b"v3"),
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
    ref = await writer.store(owner, "tool_result", "doc", b"v3")
    assert (ref.session_id, ref.version) == (owner, 3)
    assert (await rt.artifacts.info(owner, ref.id)).created_by == other
    assert (await rt.sessions.get(owner)).artifact_count == 3
    with pytest.raises(AccessDeniedError):
        await writer.store(owner, "tool_result", "new-name", b"x")
    with pytest.raises(AccessDeniedError):
        await writer.share(owner, "doc", third, "read")
    assert await writer.delete(owner, "doc", 1) == 1
    assert [a.version for a in await rt.artifacts.versions(owner, "doc")] == [2, 3]
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
    await rt.artifacts.store(owner, "agent_output", "doc", b"again", None)
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


async def test_audit_log_is_bounded(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
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
