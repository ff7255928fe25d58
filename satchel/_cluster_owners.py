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
        #: Session -> (its node's address, "" for none, until when to trust that), oldest
        #: first.
        self._known: dict[str, tuple[str, float]] = {}
        self._keep_s = placement.node.lease_ttl_s / 3

    async def elsewhere(self, session_id: str, *, remember_none: bool = False) -> str | None:
        """The address of the node serving ``session_id`` if another node serves it, else
        ``None`` (this node serves it, or no node does, or the one that does has no address).

        With ``remember_none``, that no other node serves it is remembered too (a caller
        that does so must ``forget`` the session when serving it here fails with
        ``SessionMovedError``): reads that do not make the session live then skip the
        lookup."""
        placement = self.placement
        if placement.holds(SESSION_KIND, session_id):
            return None
        known = self._known.get(session_id)
        if known is not None and known[1] > anyio.current_time():
            return known[0] or None
        found = await placement.leases.owner(session_id)
        address = ""
        if found is not None and found[0].node != placement.holder:
            address = found[1]
        if address or remember_none:
            self._remember(session_id, address)
        return address or None

    def forget(self, session_id: str) -> None:
        """Look ``session_id`` up again next time (its node did not serve it after all)."""
        self._known.pop(session_id, None)

    def _remember(self, session_id: str, address: str) -> None:
        """Keep where a session is served for a third of a lease's time: later requests then
        skip the lookup. (A stale entry costs one SessionMoved answer, which drops it.)"""
        if len(self._known) >= _OWNERS_KEPT:
            self._known.pop(next(iter(self._known)))
        self._known[session_id] = (address, anyio.current_time() + self._keep_s)
