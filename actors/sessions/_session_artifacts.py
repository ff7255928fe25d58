"""The session actor's artifact turns: store, delete, share and revoke (a part of
``SessionActor``, kept apart to keep each module small).

A store plans from the name's head as the actor keeps it (``_artifact_heads``), written on
the condition that it is still so: on PostgreSQL a store of a new version is then one round
trip, the commit. A stale head fails the commit whole; the actor forgets what it kept and
plans the store again from a read.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from satchel.runtime._errors import WriteConflictError
from satchel.storage import Batch, BlobStore, RecordStore

from .._lifecycle import ACTIVE
from .._messages import DeleteArtifact, RevokeArtifact, ShareArtifact, StoreArtifact
from ..artifacts import _artifact_writes as artifact_writes
from ..artifacts import _sharing as sharing
from ..artifacts._artifact_heads import NameHeads
from ..artifacts._artifact_model import ArtifactRef
from . import _session_layout as layout
from ._budgets import count_operation
from ._session_services import SessionServices
from ._turn_writes import TurnWrites

#: How many times a share or revoke is numbered again in the audit log.
_AUDIT_ATTEMPTS = 8


class ArtifactTurns:
    """What a session does with its artifacts."""

    if TYPE_CHECKING:
        _id: str
        _sid: bytes
        _records: RecordStore
        _blobs: BlobStore
        _services: SessionServices
        _counters: layout.Counters
        _hook_records: list[dict[str, Any]]
        _as_owner: sharing.Owner | None
        _record: layout.SessionRecord | None
        _heads: NameHeads
        _writes: TurnWrites

        def _now_us(self) -> int: ...

        async def _require_session(self) -> layout.SessionRecord: ...

        async def _require_active(self) -> layout.SessionRecord: ...

        async def _commit(
            self,
            batch: Batch,
            kind: str,
            data: dict[str, Any],
            *,
            operation: bool,
            record: layout.SessionRecord | None = None,
            now: int | None = None,
            artifacts: int = 0,
            size: int = 0,
            write: Callable[[Batch], Awaitable[None]] | None = None,
        ) -> None: ...

    async def _store_artifact(self, message: StoreArtifact) -> ArtifactRef:
        """Commit content the caller staged (the caller discards it if this refuses)."""
        record = self._record
        if record is None or record.status is not ACTIVE:
            record = await self._require_active()  # loads it, or raises
        config = record.config
        now = self._now_us()
        if message.caller is not None and message.caller != self._id:  # another session
            await sharing.check_store(self._owner(), message.caller, message.name, now)
        staged = message.staged
        size = len(message.content or b"") if staged is None else staged.ref.size
        artifact_writes.check_quota(self._id, config, self._counters, size)
        if staged is None:
            content = message.content or b""
            staged = self._blobs.put_small(content) or await self._blobs.put_inline(content)
        hooks = [*message.hook_records, *self._hook_records]
        name, heads, blobs = message.name.encode(), self._heads, self._blobs
        # A write that fails whole held back writes of the turn with it: planned from a read.
        keep = not self._writes.holding
        while True:
            named = heads.kept(name) if keep else None
            if named is None:
                named = await heads.state(self._records, name, keep=keep)
            batch = Batch()
            ref, data, owner, head = artifact_writes.store_batch(
                self._sid, self._id, message, staged, now, batch, named
            )
            self._hook_records = hooks
            try:
                await self._commit(
                    batch,
                    "artifact_stored",
                    data,
                    operation=True,
                    now=now,
                    artifacts=1,
                    size=staged.ref.size,
                    write=functools.partial(blobs.commit, add=[(staged, owner)]),
                )
            except WriteConflictError:
                heads.forget()
                if not named.kept:
                    raise
                keep = False  # the head kept was stale: read it
                continue
            except BaseException:
                heads.forget()  # it may have been written
                raise
            heads.stored(name, head)
            return ref

    async def _delete_artifact(self, message: DeleteArtifact) -> int:
        config = (await self._require_active()).config
        doomed = await artifact_writes.doomed(self._records, self._sid, self._id, message)
        now = self._now_us()
        await sharing.check_delete(self._owner(), message.caller, doomed, now)
        batch = Batch()
        if config.max_operations is not None:
            count_operation(self._id, self._counters, config.max_operations)
        caller = None if message.caller == self._id else message.caller
        drops, data = await artifact_writes.delete_batch(
            self._records, self._sid, doomed, batch, caller
        )
        blobs = self._blobs
        try:
            await self._commit(
                batch,
                "artifact_deleted",
                data,
                operation=True,
                now=now,
                artifacts=-len(doomed),
                size=-sum(r.size for r in doomed),
                write=lambda b: blobs.commit(b, drop=drops),
            )
        except BaseException:
            self._heads.forget()  # it may have been written
            raise
        self._heads.deleted(doomed[0].name.encode(), batch)
        return len(doomed)

    async def _share_artifact(self, message: ShareArtifact) -> None:
        """Grants are kept in any status: a finished session's results can still be shared."""
        await self._require_session()
        for attempt in range(1, _AUDIT_ATTEMPTS + 1):
            now = self._now_us()
            batch, data = await sharing.share_batch(self._owner(), message, now)
            try:
                await self._commit(batch, "artifact_shared", data, operation=False, now=now)
                return
            except WriteConflictError:
                if attempt == _AUDIT_ATTEMPTS:
                    raise
                self._renumber_audit(message.name)

    async def _revoke_artifact(self, message: RevokeArtifact) -> bool:
        await self._require_session()
        for attempt in range(1, _AUDIT_ATTEMPTS + 1):
            now = self._now_us()
            batch, data = await sharing.revoke_batch(self._owner(), message, now)
            try:
                if data is None:
                    await self._records.write(batch)  # nothing to revoke: the decision only
                    return False
                await self._commit(batch, "artifact_revoked", data, operation=False, now=now)
                return True
            except WriteConflictError:
                if attempt == _AUDIT_ATTEMPTS:
                    raise
                self._renumber_audit(message.name)
        raise AssertionError("unreachable")

    def _renumber_audit(self, name: str | None) -> None:
        """A share or revoke met an audit entry of another runtime at the number it took
        (runtimes sharing a store number a log's entries each): read where it ends again."""
        self._services.audit.forget(self._sid, name)

    def _owner(self) -> sharing.Owner:
        if self._as_owner is None:
            self._as_owner = sharing.Owner(self._records, self._services.audit, self._sid, self._id)
        return self._as_owner
