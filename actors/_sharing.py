"""What the owning session's actor decides when another session writes to, shares or revokes
one of its artifacts: each decision is audited, in the batch of the change it allows, or in a
batch of its own when it refuses."""

from __future__ import annotations

from typing import Any

import attrs
from satchel.storage import Batch, KeyValueStore

from satchel._errors import (
    AccessDeniedError,
    ArtifactNotFoundError,
    SessionNotFoundError,
    ValidationError,
)

from . import _access as access
from . import _artifact_layout as layout
from . import _layout as session_layout
from . import _validate as validate
from ._artifact_model import ArtifactRecord
from ._audit import AuditLog
from ._messages import RevokeArtifact, ShareArtifact


@attrs.frozen
class Owner:
    """The session whose artifacts are decided on, and where decisions are written."""

    kv: KeyValueStore
    audit: AuditLog
    sid: bytes
    session_id: str

    def is_other(self, caller: str | None) -> bool:
        """Whether ``caller`` is a session other than the owner (the host is not)."""
        return caller is not None and caller != self.session_id

    def refuse(
        self, caller: str, action: str, name: str, artifact_id: str | None, now: int
    ) -> None:
        """Write the refusal to the audit log and raise ``AccessDenied``."""
        denied = Batch()
        self.audit.append(
            denied,
            self.sid,
            at_us=now,
            caller=caller,
            action=action,
            granted=False,
            name=name,
            artifact_id=artifact_id,
        )
        self.kv.write(denied)
        what = name if artifact_id is None else f"{artifact_id} ({name!r})"
        raise AccessDeniedError(
            f"session {caller} may not {action} artifact {what} of session {self.session_id}"
        )

    def allow(
        self, batch: Batch, caller: str, action: str, name: str, artifact_id: str | None, now: int
    ) -> None:
        """Audit an allowed decision in the batch of the change."""
        self.audit.append(
            batch,
            self.sid,
            at_us=now,
            caller=caller,
            action=action,
            granted=True,
            name=name,
            artifact_id=artifact_id,
        )


def check_store(owner: Owner, batch: Batch, caller: str | None, name: str, now: int) -> None:
    """Another session may store a new version of a name it holds ``write`` on."""
    if not owner.is_other(caller):
        return
    assert caller is not None
    held = access.name_permission(
        owner.kv, owner.sid, name.encode(), session_layout.bytes_of(caller)
    )
    if held is None or not held.allows(access.Permission.WRITE):
        owner.refuse(caller, "write", name, None, now)
    owner.allow(batch, caller, "write", name, None, now)


def check_delete(
    owner: Owner, batch: Batch, caller: str | None, records: list[ArtifactRecord], now: int
) -> None:
    """Another session may delete versions it holds ``write`` on."""
    if not owner.is_other(caller):
        return
    assert caller is not None
    caller_sid = session_layout.bytes_of(caller)
    for record in records:
        held = access.permission_of(owner.kv, record, caller_sid)
        if held is None or not held.allows(access.Permission.WRITE):
            owner.refuse(caller, "delete", record.name, record.id, now)
    for record in records:
        owner.allow(batch, caller, "delete", record.name, record.id, now)


def _subject(
    owner: Owner, message: ShareArtifact | RevokeArtifact
) -> tuple[str, ArtifactRecord | None]:
    """The name, and the version if one is named, that a share or revoke is about."""
    if message.artifact_id is not None:
        record = layout.by_id(owner.kv, validate.artifact_id(message.artifact_id))
        if record is None or record.session_id != owner.session_id:
            raise ArtifactNotFoundError(
                f"no artifact {message.artifact_id} in session {owner.session_id}"
            )
        return record.name, record
    assert message.name is not None
    if owner.kv.get(layout.name_key(owner.sid, message.name.encode())) is None:
        raise ArtifactNotFoundError(f"no artifact {message.name!r} in session {owner.session_id}")
    return message.name, None


def _target(owner: Owner, target_session_id: str) -> bytes:
    target_id, target = validate.session_id(target_session_id)
    if target == owner.sid:
        raise ValidationError(f"session {target_id} owns the artifact; it needs no grant")
    if owner.kv.get(session_layout.record_key(target)) is None:
        raise SessionNotFoundError(f"no session {target_id}")
    return target


def _check_admin(
    owner: Owner,
    caller: str | None,
    action: str,
    name: str,
    record: ArtifactRecord | None,
    now: int,
) -> None:
    if not owner.is_other(caller):
        return
    assert caller is not None
    caller_sid = session_layout.bytes_of(caller)
    if record is None:
        held = access.name_permission(owner.kv, owner.sid, name.encode(), caller_sid)
    else:
        held = access.permission_of(owner.kv, record, caller_sid)
    if held is None or not held.allows(access.Permission.ADMIN):
        owner.refuse(caller, action, name, None if record is None else record.id, now)


def share_batch(owner: Owner, message: ShareArtifact, now: int) -> tuple[Batch, dict[str, Any]]:
    """The batch granting a permission (audited) and its journal data."""
    name, record = _subject(owner, message)
    target = _target(owner, message.target_session_id)
    granted = access.permission(message.permission)
    _check_admin(owner, message.caller, "share", name, record, now)
    scope = access.WHOLE_NAME if record is None else validate.artifact_id(record.id)
    by = bytes(16) if message.caller is None else session_layout.bytes_of(message.caller)
    batch = Batch()
    access.put(batch, access.Grant(owner.sid, name.encode(), scope, target, granted, now, by))
    target_id = session_layout.text_of(target)
    artifact_id = None if record is None else record.id
    owner.audit.append(
        batch,
        owner.sid,
        at_us=now,
        caller=message.caller,
        action="share",
        granted=True,
        name=name,
        artifact_id=artifact_id,
        target_session_id=target_id,
        permission=granted.value,
    )
    data = {"name": name, "id": artifact_id, "target": target_id, "permission": granted.value}
    return batch, data


def revoke_batch(
    owner: Owner, message: RevokeArtifact, now: int
) -> tuple[Batch, dict[str, Any]] | None:
    """The batch removing a grant (audited) and its journal data; ``None`` if there is none."""
    name, record = _subject(owner, message)
    target = _target(owner, message.target_session_id)
    _check_admin(owner, message.caller, "revoke", name, record, now)
    scope = access.WHOLE_NAME if record is None else validate.artifact_id(record.id)
    if owner.kv.get(access.grant_key(owner.sid, name.encode(), scope, target)) is None:
        return None
    batch = Batch()
    access.remove(batch, owner.sid, name.encode(), scope, target)
    target_id = session_layout.text_of(target)
    artifact_id = None if record is None else record.id
    owner.audit.append(
        batch,
        owner.sid,
        at_us=now,
        caller=message.caller,
        action="revoke",
        granted=True,
        name=name,
        artifact_id=artifact_id,
        target_session_id=target_id,
    )
    return batch, {"name": name, "id": artifact_id, "target": target_id}
