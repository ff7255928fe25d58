"""Who may do what with another session's artifacts: grants, kept in the index space.

The owning session has every right; another session has what it was granted. A grant covers
a name (every version, present and future) or one version (its id), and gives ``read``,
``write`` (read, store new versions, delete) or ``admin`` (write, share, revoke, read the audit
log). Each grant is two keys: one under the artifact (to decide) and one under the session it
was granted to (to find what that session may read).
"""

from __future__ import annotations

import enum

import attrs

from satchel.runtime._errors import InvalidArgumentError, ValidationError
from satchel.storage import Batch, RecordReads

from .. import _validate as validate
from . import _artifact_index as index
from . import _artifact_layout as layout
from ._artifact_model import ArtifactRecord
from ._artifact_records import ArtifactRecords, GrantFields

#: The scope of a grant that covers every version of a name.
WHOLE_NAME = layout.WHOLE_NAME
# The grants' keys are the artifacts' layout (``_artifact_layout``), named here as well for
# ``check``, which rebuilds them.
name_prefix = layout.grant_name_prefix
grant_key = layout.grant_key
granted_key = layout.granted_key


class Permission(enum.StrEnum):
    """What a grant allows; each includes the ones before it."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Order of strength: read < write < admin."""
        return _RANKS[self]

    def allows(self, needed: Permission) -> bool:
        """Whether this permission includes ``needed``."""
        return self.rank >= needed.rank


_RANKS = {Permission.READ: 1, Permission.WRITE: 2, Permission.ADMIN: 3}
_BY_RANK = {rank: permission for permission, rank in _RANKS.items()}


def permission(value: object) -> Permission:
    """A permission from its name."""
    if isinstance(value, Permission):
        return value
    if type(value) is not str:
        raise InvalidArgumentError(f"a permission must be a string, not {value!r}")
    try:
        return Permission(value)
    except ValueError:
        raise ValidationError(f"unknown permission {value!r}; use read, write or admin") from None


@attrs.frozen
class Grant:
    """One grant as stored: on ``name`` of session ``owner`` (one version if ``scope`` is an
    artifact id, else every version) to session ``target``."""

    owner: bytes
    name: bytes
    scope: bytes
    target: bytes
    permission: Permission
    granted_us: int
    granted_by: bytes  # a session id, or zeros for the host


def put(batch: Batch, grant: Grant) -> None:
    """Add ``grant`` (replacing any on the same scope and target) to ``batch``."""
    value = layout.GRANT_VALUE.pack(grant.permission.rank, grant.granted_us, grant.granted_by)
    batch.put(grant_key(grant.owner, grant.name, grant.scope, grant.target), value)
    batch.put(granted_key(grant.target, grant.owner, grant.name, grant.scope), b"")


def remove(batch: Batch, owner: bytes, name: bytes, scope: bytes, target: bytes) -> None:
    """Add the removal of one grant to ``batch``."""
    batch.delete(grant_key(owner, name, scope, target))
    batch.delete(granted_key(target, owner, name, scope))


def _grant(fields: GrantFields) -> Grant:
    owner, name, scope, target, rank, at, by = fields
    return Grant(owner, name, scope, target, _BY_RANK[rank], at, by)


async def permission_of(
    records: ArtifactRecords, record: ArtifactRecord, caller: bytes
) -> Permission | None:
    """The strongest right session ``caller`` holds on this version (owner: admin)."""
    owner = validate.session_id(record.session_id)[1]
    if owner == caller:
        return Permission.ADMIN
    scopes = (WHOLE_NAME, validate.artifact_id(record.id))
    ranks = await records.grant_ranks(owner, record.name.encode(), scopes, caller)
    return _BY_RANK[max(ranks)] if ranks else None


async def name_permission(
    records: ArtifactRecords, owner: bytes, name: bytes, caller: bytes
) -> Permission | None:
    """The right ``caller`` holds on every version of ``name`` (owner: admin)."""
    if owner == caller:
        return Permission.ADMIN
    rank = await records.whole_name_rank(owner, name, caller)
    return None if rank is None else _BY_RANK[rank]


async def grants_on(records: ArtifactRecords, owner: bytes, name: bytes) -> list[Grant]:
    """Every grant on ``name`` of session ``owner``."""
    return [_grant(fields) for fields in await records.grants_on(owner, name)]


async def all_grants(records: RecordReads) -> list[Grant]:
    """Every grant kept (for ``check``, which holds the port)."""
    return [_grant(fields) for fields in await ArtifactRecords(records).all_grants()]


async def readable_suffixes(records: ArtifactRecords, caller: bytes) -> tuple[bytes, ...]:
    """The index suffixes of every version granted to ``caller``, sorted."""
    found: set[bytes] = set()
    for owner, name, scope in await records.granted_to(caller):
        if scope == WHOLE_NAME:
            versions = await records.versions(owner, name)
            found.update(index.suffix_of(r) for r in versions)
        else:
            record = await records.by_id(scope)
            if record is not None:
                found.add(index.suffix_of(record))
    return tuple(sorted(found))


async def drop_for_versions(
    records: ArtifactRecords,
    batch: Batch,
    owner: bytes,
    name: bytes,
    aids: list[bytes],
    *,
    whole: bool,
) -> None:
    """Remove the grants on these versions (and on the whole name if ``whole``)."""
    for grant in await grants_on(records, owner, name):
        if grant.scope in aids or (whole and grant.scope == WHOLE_NAME):
            remove(batch, owner, name, grant.scope, grant.target)


async def drop_for_session(records: RecordReads, batch: Batch, sid: bytes) -> None:
    """Remove every grant on the artifacts of session ``sid`` and every grant to it (for the
    sessions package's removal, which holds the port)."""
    grants = ArtifactRecords(records)
    for name, scope, target in await grants.grants_given(sid):
        remove(batch, sid, name, scope, target)
    for owner, name, scope in await grants.granted_to(sid):
        remove(batch, owner, name, scope, sid)
