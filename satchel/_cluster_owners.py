"""Which node serves a session, as a cluster node sees it: itself, another node (by address),
or none (then the session is served where it is asked for)."""

from __future__ import annotations

import anyio

from satchel.actors.cluster import SessionPlacement
from satchel.actors.sessions._session import SESSION_KIND

#: How many sessions' nodes a node remembers.
_OWNERS_KEPT = 10_000


class Owners:
    """The nodes serving sessions, looked up in the lease table and remembered a while."""

    def __init__(self, placement: SessionPlacement) -> None:
        self.placement = placement
        #: Session -> (its node's address, until when to trust that), oldest first.
        self._known: dict[str, tuple[str, float]] = {}
        self._keep_s = placement.node.lease_ttl_s / 3

    async def elsewhere(self, session_id: str) -> str | None:
        """The address of the node serving ``session_id`` if another node serves it, else
        ``None`` (this node serves it, or no node does, or the one that does has no address)."""
        placement = self.placement
        if placement.holds(SESSION_KIND, session_id):
            return None
        known = self._known.get(session_id)
        if known is not None and known[1] > anyio.current_time():
            return known[0]
        found = await placement.leases.owner(session_id)
        if found is None:
            return None
        lease, address = found
        if lease.node == placement.holder or not address:
            return None
        self._remember(session_id, address)
        return address

    def forget(self, session_id: str) -> None:
        """Look ``session_id`` up again next time (its node did not serve it after all)."""
        self._known.pop(session_id, None)

    def _remember(self, session_id: str, address: str) -> None:
        """Keep where a session is served for a third of a lease's time: later requests then
        skip the lookup. (A stale entry costs one SessionMoved answer, which drops it.)"""
        if len(self._known) >= _OWNERS_KEPT:
            self._known.pop(next(iter(self._known)))
        self._known[session_id] = (address, anyio.current_time() + self._keep_s)
