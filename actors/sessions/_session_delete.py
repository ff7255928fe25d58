"""The session actor's delete turn, cascading to the sessions below (a part of
``SessionActor``, kept apart to keep each module small). In a cluster, the sessions below
are leased to this node for the delete, so a node still serving one of them is refused (its
writes expect a lease that moved) or, while it holds it, refuses the delete."""

from __future__ import annotations

from typing import TYPE_CHECKING

from satchel.runtime import ActorContext
from satchel.runtime._errors import SessionHasChildrenError
from satchel.storage import Batch, BlobStore, RecordStore

from .._messages import Delete
from . import _removal as removal
from . import _session_layout as layout
from ._session_records import OwnRecords
from ._session_services import SESSION_KIND, SessionBusyError, SessionLeases, SessionServices


class DeleteTurns:
    """What a session does when it is deleted."""

    if TYPE_CHECKING:
        _id: str
        _sid: bytes
        _records: RecordStore
        _own: OwnRecords
        _blobs: BlobStore
        _services: SessionServices
        _record: layout.SessionRecord | None
        _counters: layout.Counters
        context: ActorContext

        async def _require_session(self) -> layout.SessionRecord: ...

    async def _delete(self, message: Delete) -> None:
        """Delete the session (and with ``cascade`` every session below it) in one batch.

        The caller has passivated the live actors below (``Retire``); one that came back
        since could write after the batch, so the delete is refused and retried instead.
        """
        record = await self._require_session()
        own = self._own
        below = await own.descendants(self._sid) if message.cascade else []
        if not message.cascade and (child := await own.first_child(self._sid)):
            raise SessionHasChildrenError(
                f"session {self._id} has child sessions (such as {layout.text_of(child)}); "
                "delete them first or pass cascade=True"
            )
        await removal.refuse_escaping_sharers(own, doomed := {self._sid, *below})
        claimed = await self._claim_below(below)
        try:
            batch, drops = Batch(), list[removal.Drop]()
            for sid, loaded in zip(below, await own.load(below), strict=True):
                session_id = layout.text_of(sid)
                if self._services.is_live(session_id):
                    raise SessionBusyError(session_id)
                if loaded is not None:
                    drops += await removal.delete_session(
                        self._records, own, batch, sid, *loaded, doomed
                    )
            drops += await removal.delete_session(
                self._records, own, batch, self._sid, record, self._counters, doomed
            )
            leases = self._services.leases
            if leases is not None:
                self._guard_leases(leases, batch, below)
            await self._blobs.commit(batch, drop=drops)
        finally:
            self._let_go_below(claimed)
        for session_id in [*map(layout.text_of, below), self._id]:
            self._services.forget(session_id)
        self._record, self._counters = None, layout.Counters()
        self.context.passivate()

    async def _claim_below(self, below: list[bytes]) -> list[str]:
        """In a cluster: take the leases of the sessions below (a deposed holder elsewhere
        then writes none of them); ``SessionMovedError`` if another node serves one."""
        leases = self._services.leases
        claimed: list[str] = []
        if leases is None:
            return claimed
        try:
            for session_id in map(layout.text_of, below):
                if not leases.holds(SESSION_KIND, session_id):
                    await leases.claim(SESSION_KIND, session_id)
                    claimed.append(session_id)
        except BaseException:
            self._let_go_below(claimed)
            raise
        return claimed

    def _guard_leases(self, leases: SessionLeases, batch: Batch, below: list[bytes]) -> None:
        """The delete expects this node's leases on the sessions below still to hold (one
        another node took over meanwhile wins), and takes their fence records, and this
        session's, with them (a node still writing one of them is refused)."""
        doomed = [layout.text_of(sid) for sid in below]
        for session_id in doomed:
            if leases.holds(SESSION_KIND, session_id):  # (one with no record has no lease)
                leases.guard(batch, session_id)
        for session_id in [*doomed, self._id]:
            leases.drop_fence(batch, session_id)

    def _let_go_below(self, claimed: list[str]) -> None:
        leases = self._services.leases
        if leases is not None:
            for session_id in claimed:
                if not self._services.is_live(session_id):
                    leases.vacated(SESSION_KIND, session_id)
