"""Who may do what with another session's artifacts: grants, kept in the index space.

The owning session has every right; another session has what it was granted. A grant covers
a name (every version, present and future) or one version (its id), and gives ``read``,
``write`` (read, store new versions, delete) or ``admin`` (write, share, revoke, read the audit
log). Each grant is two keys: one under the artifact (to decide) and one under the session it
was granted to (to find what that session may read).
"""

from __future__ import annotations

import enum
import struct

import attrs

from satchel.runtime._errors import InvalidArgumentError, ValidationError
from satchel.storage import Batch, RecordReads, prefix_pairs
from satchel.storage import _keys as keys

from .. import _validate as validate
from . import _artifact_index as index
from . import _artifact_layout as layout
from ._artifact_model import ArtifactRecord

#: The scope of a grant that covers every version of a name.
WHOLE_NAME = bytes(16)
_ID = 16
_VALUE = struct.Struct(">BQ16s")


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


def name_prefix(owner: bytes, name: bytes) -> bytes:
    """Every grant on ``name`` (any scope) of session ``owner``."""
    return keys.ARTIFACT_GRANT + owner + name + b"\x00"


def grant_key(owner: bytes, name: bytes, scope: bytes, target: bytes) -> bytes:
    """Where one grant is kept, under the artifact."""
    return name_prefix(owner, name) + scope + target


def granted_key(target: bytes, owner: bytes, name: bytes, scope: bytes) -> bytes:
    """Where one grant is kept, under the session it was granted to."""
    return keys.ARTIFACT_GRANTED + target + owner + name + b"\x00" + scope


def put(batch: Batch, grant: Grant) -> None:
    """Add ``grant`` (replacing any on the same scope and target) to ``batch``."""
    value = _VALUE.pack(grant.permission.rank, grant.granted_us, grant.granted_by)
    batch.put(grant_key(grant.owner, grant.name, grant.scope, grant.target), value)
    batch.put(granted_key(grant.target, grant.owner, grant.name, grant.scope), b"")


def remove(batch: Batch, owner: bytes, name: bytes, scope: bytes, target: bytes) -> None:
    """Add the removal of one grant to ``batch``."""
    batch.delete(grant_key(owner, name, scope, target))
    batch.delete(granted_key(target, owner, name, scope))


async def permission_of(
    records: RecordReads, record: ArtifactRecord, caller: bytes
) -> Permission | None:
    """The strongest right session ``caller`` holds on this version (owner: admin)."""
    owner = validate.session_id(record.session_id)[1]
    if owner == caller:
        return Permission.ADMIN
    name = record.name.encode()
    aid = validate.artifact_id(record.id)
    found = await records.get_many(
        [grant_key(owner, name, WHOLE_NAME, caller), grant_key(owner, name, aid, caller)]
    )
    ranks = [_VALUE.unpack(v)[0] for v in found if v is not None]
    return _BY_RANK[max(ranks)] if ranks else None


async def name_permission(
    records: RecordReads, owner: bytes, name: bytes, caller: bytes
) -> Permission | None:
    """The right ``caller`` holds on every version of ``name`` (owner: admin)."""
    if owner == caller:
        return Permission.ADMIN
    raw = await records.get(grant_key(owner, name, WHOLE_NAME, caller))
    return None if raw is None else _BY_RANK[_VALUE.unpack(raw)[0]]


async def grants_on(records: RecordReads, owner: bytes, name: bytes) -> list[Grant]:
    """Every grant on ``name`` of session ``owner``."""
    prefix = name_prefix(owner, name)
    found = []
    for key, value in await prefix_pairs(records, prefix):
        rank, at, by = _VALUE.unpack(value)
        rest = key[len(prefix) :]
        found.append(Grant(owner, name, rest[:_ID], rest[_ID:], _BY_RANK[rank], at, by))
    return found


async def all_grants(records: RecordReads) -> list[Grant]:
    """Every grant kept (for ``check``)."""
    found = []
    for key, value in await prefix_pairs(records, keys.ARTIFACT_GRANT):
        rest = key[len(keys.ARTIFACT_GRANT) :]
        rank, at, by = _VALUE.unpack(value)
        owner, name = rest[:_ID], rest[_ID : -2 * _ID - 1]
        scope, target = rest[-2 * _ID : -_ID], rest[-_ID:]
        found.append(Grant(owner, name, scope, target, _BY_RANK[rank], at, by))
    return found


async def has_grant_in(records: RecordReads, caller: bytes, owner: bytes) -> bool:
    """Whether ``caller`` holds any grant on an artifact of session ``owner``."""
    return bool(await prefix_pairs(records, keys.ARTIFACT_GRANTED + caller + owner, limit=1))


async def readable_suffixes(records: RecordReads, caller: bytes) -> tuple[bytes, ...]:
    """The index suffixes of every version granted to ``caller``, sorted."""
    prefix = keys.ARTIFACT_GRANTED + caller
    found: set[bytes] = set()
    for key, _ in await prefix_pairs(records, prefix):
        rest = key[len(prefix) :]
        owner, name, scope = rest[:_ID], rest[_ID : -_ID - 1], rest[-_ID:]
        if scope == WHOLE_NAME:
            versions = await layout.versions(records, owner, name)
            found.update(index.suffix_of(r) for r in versions)
        else:
            record = await layout.by_id(records, scope)
            if record is not None:
                found.add(index.suffix_of(record))
    return tuple(sorted(found))


async def drop_for_versions(
    records: RecordReads, batch: Batch, owner: bytes, name: bytes, aids: list[bytes], *, whole: bool
) -> None:
    """Remove the grants on these versions (and on the whole name if ``whole``)."""
    for grant in await grants_on(records, owner, name):
        if grant.scope in aids or (whole and grant.scope == WHOLE_NAME):
            remove(batch, owner, name, grant.scope, grant.target)


async def drop_for_session(records: RecordReads, batch: Batch, sid: bytes) -> None:
    """Remove every grant on the artifacts of session ``sid`` and every grant to it."""
    owned = keys.ARTIFACT_GRANT + sid
    for key, _ in await prefix_pairs(records, owned):
        rest = key[len(owned) :]
        name, scope, target = rest[: -2 * _ID - 1], rest[-2 * _ID : -_ID], rest[-_ID:]
        remove(batch, sid, name, scope, target)
    held = keys.ARTIFACT_GRANTED + sid
    for key, _ in await prefix_pairs(records, held):
        rest = key[len(held) :]
        owner, name, scope = rest[:_ID], rest[_ID : -_ID - 1], rest[-_ID:]
        remove(batch, owner, name, scope, sid)
