"""The audit log of shared artifacts: every access decision another session caused, and every
share and revoke, kept per artifact name and bounded to the newest ``max_entries``.

Entries are numbered per name. The numbers in use are remembered for recently audited names
and otherwise read back from the first and last key, so no counter key is written: two
batches that each append an entry never overwrite one another's count.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from datetime import datetime
from typing import Any

import attrs

from satchel.runtime._errors import InvalidArgumentError, ValidationError, WriteConflictError
from satchel.storage import ABSENT, Batch, RecordCodec, RecordStore

from .. import _validate as validate
from . import _artifact_layout as layout
from ._artifact_records import ArtifactRecords

DEFAULT_MAX_ENTRIES = 1000
_SEQ = struct.Struct(">Q")
_REMEMBERED = 4096


@attrs.frozen
class AuditEntry:
    """One access decision: who (a session id, or ``None`` for the host) tried what on which
    version, and whether it was allowed."""

    at: datetime
    session_id: str | None
    action: str
    granted: bool
    artifact_id: str | None
    name: str
    target_session_id: str | None = None
    permission: str | None = None


@attrs.frozen
class _Stored:
    at_us: int
    session_id: str | None
    action: str
    granted: bool
    artifact_id: str | None
    name: str
    target_session_id: str | None
    permission: str | None


_CODEC = RecordCodec(_Stored, kind="audit", version=1)


def checked_max_entries(value: object) -> int:
    """The ``audit_max_entries`` option, checked."""
    if type(value) is not int:
        raise InvalidArgumentError(f"audit_max_entries must be an integer, not {value!r}")
    if value < 1:
        raise ValidationError(f"audit_max_entries must be at least 1, not {value}")
    return value


# The audit logs' keys are the artifacts' layout (``_artifact_layout``), named here as well
# for the batches that delete logs (a name's, a session's).
prefix_of = layout.audit_prefix
session_prefix = layout.audit_session_prefix


#: How many times an entry is numbered again after another runtime took its number.
_ATTEMPTS = 8


class AuditLog:
    """Appends entries into batches and reads them back, oldest first."""

    def __init__(self, records: RecordStore, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._records = records
        self._reads = ArtifactRecords(records)
        self.max_entries = checked_max_entries(max_entries)
        self._spans: OrderedDict[bytes, list[int]] = OrderedDict()  # prefix -> [first, next]

    async def append(
        self,
        batch: Batch,
        owner: bytes,
        *,
        at_us: int,
        caller: str | None,
        action: str,
        granted: bool,
        name: str,
        artifact_id: str | None = None,
        target_session_id: str | None = None,
        permission: str | None = None,
    ) -> None:
        """Add one entry to ``batch``, and the removal of those past the bound."""
        prefix = prefix_of(owner, name.encode())
        span = await self._span(prefix, owner, name.encode())
        seq = span[1]
        span[1] += 1
        stored = _Stored(
            at_us, caller, action, granted, artifact_id, name, target_session_id, permission
        )
        # Expected absent: on a store runtimes share, another one may have taken the number
        # (its entry must not be overwritten; ``write`` asks again).
        batch.put(prefix + _SEQ.pack(seq), _CODEC.encode(stored), expect=ABSENT)
        keep_from = span[1] - self.max_entries
        if keep_from > span[0]:
            # From the first number, not the first remembered: a batch that was never
            # written leaves nothing behind that a later trim would miss.
            batch.delete_range(prefix + _SEQ.pack(0), prefix + _SEQ.pack(keep_from))
            span[0] = keep_from

    async def write(
        self, owner: bytes, *, records: RecordStore | None = None, **fields: Any
    ) -> None:
        """Append one entry in a batch of its own (to ``records``, the log's by default),
        asking again if another runtime took its number first."""
        for attempt in range(1, _ATTEMPTS + 1):
            batch = Batch()
            await self.append(batch, owner, **fields)
            try:
                await (records or self._records).write(batch)
                return
            except WriteConflictError:
                self.forget(owner, fields["name"])
                if attempt == _ATTEMPTS:
                    raise

    def forget(self, owner: bytes, name: str | None) -> None:
        """Read where the log of ``name`` (of every name of ``owner``, if ``None``) ends
        again: another runtime appended to it."""
        if name is not None:
            self._spans.pop(prefix_of(owner, name.encode()), None)
            return
        mine = session_prefix(owner)
        for prefix in [p for p in self._spans if p.startswith(mine)]:
            del self._spans[prefix]

    async def read(
        self, owner: bytes, name: str, *, offset: int = 0, limit: int | None = None
    ) -> list[AuditEntry]:
        """One name's entries, oldest first."""
        wanted = None if limit is None else max(offset, 0) + max(limit, 0)
        found = [] if wanted == 0 else await self._reads.audit_entries(owner, name.encode(), wanted)
        entries: list[AuditEntry] = []
        for index, raw in enumerate(found):
            if index < offset:
                continue
            if limit is not None and len(entries) >= limit:
                break
            s = _CODEC.decode(raw)
            entries.append(
                AuditEntry(
                    validate.stored_datetime(s.at_us, "an audit entry"),
                    s.session_id,
                    s.action,
                    s.granted,
                    s.artifact_id,
                    s.name,
                    s.target_session_id,
                    s.permission,
                )
            )
        return entries

    async def _span(self, prefix: bytes, owner: bytes, name: bytes) -> list[int]:
        span = self._spans.get(prefix)
        if span is not None:
            self._spans.move_to_end(prefix)
            return span
        numbers = await self._reads.audit_numbers(owner, name)
        span = [0, 0] if numbers is None else [numbers[0], numbers[1] + 1]
        self._spans[prefix] = span
        if len(self._spans) > _REMEMBERED:
            self._spans.popitem(last=False)
        return span
