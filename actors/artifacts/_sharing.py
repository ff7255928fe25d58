"""What the owning session's actor decides when another session writes to, shares or revokes
one of its artifacts.

Every decision on an existing artifact is audited as it is made, in a batch of its own: a
write that is allowed and then fails for another reason (a quota, say) still shows in the log
as allowed, which is what was decided. Shares and revokes are audited in the batch of the
change itself. A name that does not exist has no audit log: asking for it is refused without
an entry, so no session can grow another's audit data for names that are not there.
"""

from __future__ import annotations

from typing import Any

import attrs

from satchel.runtime._errors import (
    AccessDeniedError,
    ArtifactNotFoundError,
    SessionNotFoundError,
    ValidationError,
)
from satchel.storage import Batch, RecordStore

from .. import _validate as validate
from .._messages import RevokeArtifact, ShareArtifact
from ..sessions import _session_layout as session_layout
from ..sessions._session_records import SessionRecords
from . import _access as access
from ._artifact_model import ArtifactRecord
from ._artifact_records import ArtifactRecords
from ._audit import AuditLog


@attrs.frozen
class Owner:
    """The session whose artifacts are decided on, and where decisions are written."""

    records: RecordStore
    audit: AuditLog
    sid: bytes
    session_id: str
    #: What decisions read, through ``records``.
    artifacts: ArtifactRecords = attrs.field(
        init=False,
        default=attrs.Factory(lambda owner: ArtifactRecords(owner.records), takes_self=True),
    )

    def is_other(self, caller: str | None) -> bool:
        """Whether ``caller`` is a session other than the owner (the host is not)."""
        return caller is not None and caller != self.session_id

    async def decide(
        self,
        caller: str,
        action: str,
        name: str,
        artifact_id: str | None,
        held: access.Permission | None,
        needed: access.Permission,
        now: int,
    ) -> None:
        """Audit one decision; raise ``AccessDenied`` if ``held`` does not include ``needed``."""
        allowed = held is not None and held.allows(needed)
        await self.audit.write(
            self.sid,
            records=self.records,
            at_us=now,
            caller=caller,
            action=action,
            granted=allowed,
            name=name,
            artifact_id=artifact_id,
        )
        if not allowed:
            what = name if artifact_id is None else f"{artifact_id} ({name!r})"
            raise AccessDeniedError(
                f"session {caller} may not {action} artifact {what} of session {self.session_id}"
            )


async def check_store(owner: Owner, caller: str | None, name: str, now: int) -> None:
    """Another session may store a new version of an existing name it holds ``write`` on."""
    if not owner.is_other(caller):
        return
    assert caller is not None
    if not await owner.artifacts.name_exists(owner.sid, name.encode()):
        raise AccessDeniedError(
            f"session {caller} may not create artifact {name!r} in session {owner.session_id}"
        )
    held = await access.name_permission(
        owner.artifacts, owner.sid, name.encode(), session_layout.bytes_of(caller)
    )
    await owner.decide(caller, "write", name, None, held, access.Permission.WRITE, now)


async def check_delete(
    owner: Owner, caller: str | None, records: list[ArtifactRecord], now: int
) -> None:
    """Another session may delete versions it holds ``write`` on (all of them, or none go)."""
    if not owner.is_other(caller):
        return
    assert caller is not None
    caller_sid = session_layout.bytes_of(caller)
    for record in records:
        held = await access.permission_of(owner.artifacts, record, caller_sid)
        await owner.decide(
            caller, "delete", record.name, record.id, held, access.Permission.WRITE, now
        )


async def _subject(
    owner: Owner, message: ShareArtifact | RevokeArtifact
) -> tuple[str, ArtifactRecord | None]:
    """The name, and the version if one is named, that a share or revoke is about."""
    if message.artifact_id is not None:
        record = await owner.artifacts.by_id(validate.artifact_id(message.artifact_id))
        if record is None or record.session_id != owner.session_id:
            raise ArtifactNotFoundError(
                f"Artifact not found: {message.artifact_id} in session {owner.session_id}"
            )
        return record.name, record
    assert message.name is not None
    if not await owner.artifacts.name_exists(owner.sid, message.name.encode()):
        raise ArtifactNotFoundError(
            f"Artifact not found: {message.name!r} in session {owner.session_id}"
        )
    return message.name, None


async def _check_admin(
    owner: Owner,
    caller: str | None,
    action: str,
    name: str,
    record: ArtifactRecord | None,
    now: int,
) -> None:
    """Only the owner, the host, or a session holding ``admin`` shares and revokes; a grantee
    never grants to itself (it could outlive the grant it came from)."""
    if not owner.is_other(caller):
        return
    assert caller is not None
    caller_sid = session_layout.bytes_of(caller)
    if record is None:
        held = await access.name_permission(owner.artifacts, owner.sid, name.encode(), caller_sid)
    else:
        held = await access.permission_of(owner.artifacts, record, caller_sid)
    if held is None or not held.allows(access.Permission.ADMIN):
        artifact_id = None if record is None else record.id
        await owner.decide(caller, action, name, artifact_id, held, access.Permission.ADMIN, now)


async def _target(owner: Owner, caller: str | None, target_session_id: str) -> bytes:
    target_id, target = validate.session_id(target_session_id)
    if target == owner.sid:
        raise ValidationError(f"session {target_id} owns the artifact; it needs no grant")
    if caller is not None and target_id == caller:
        raise ValidationError(f"session {caller} cannot change its own grants")
    if not await SessionRecords(owner.records).has_record(target):
        raise SessionNotFoundError(f"Session not found: {target_id}")
    return target


async def share_batch(
    owner: Owner, message: ShareArtifact, now: int
) -> tuple[Batch, dict[str, Any]]:
    """The batch granting a permission (audited) and its journal data."""
    name, record = await _subject(owner, message)
    await _check_admin(owner, message.caller, "share", name, record, now)
    target = await _target(owner, message.caller, message.target_session_id)
    granted = access.permission(message.permission)
    scope = access.WHOLE_NAME if record is None else validate.artifact_id(record.id)
    by = bytes(16) if message.caller is None else session_layout.bytes_of(message.caller)
    batch = Batch()
    access.put(batch, access.Grant(owner.sid, name.encode(), scope, target, granted, now, by))
    target_id = session_layout.text_of(target)
    artifact_id = None if record is None else record.id
    await _audit_change(
        owner, batch, message, "share", name, artifact_id, target_id, granted.value, now
    )
    data = {"name": name, "id": artifact_id, "target": target_id, "permission": granted.value}
    return batch, data


async def _audit_change(
    owner: Owner,
    batch: Batch,
    message: ShareArtifact | RevokeArtifact,
    action: str,
    name: str,
    artifact_id: str | None,
    target_id: str,
    permission: str | None,
    now: int,
) -> None:
    """Audit a share or revoke in the batch that makes it."""
    await owner.audit.append(
        batch,
        owner.sid,
        at_us=now,
        caller=message.caller,
        action=action,
        granted=True,
        name=name,
        artifact_id=artifact_id,
        target_session_id=target_id,
        permission=permission,
    )


async def revoke_batch(
    owner: Owner, message: RevokeArtifact, now: int
) -> tuple[Batch, dict[str, Any] | None]:
    """The batch removing grants (audited), and its journal data (``None`` if there were
    none). Revoking a name removes the target's grants on the name and on each version."""
    name, record = await _subject(owner, message)
    await _check_admin(owner, message.caller, "revoke", name, record, now)
    target = await _target(owner, message.caller, message.target_session_id)
    batch = Batch()
    removed = 0
    for grant in await access.grants_on(owner.artifacts, owner.sid, name.encode()):
        if grant.target != target:
            continue
        if record is None or grant.scope == validate.artifact_id(record.id):
            access.remove(batch, owner.sid, grant.name, grant.scope, target)
            removed += 1
    target_id = session_layout.text_of(target)
    artifact_id = None if record is None else record.id
    await _audit_change(owner, batch, message, "revoke", name, artifact_id, target_id, None, now)
    data = {"name": name, "id": artifact_id, "target": target_id, "grants": removed}
    return batch, data if removed else None
