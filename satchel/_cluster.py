"""A runtime as one node of a cluster: its placement of sessions, opened with the runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import attrs

from satchel._cluster_owners import Owners
from satchel._http_peers import Peers
from satchel._session_calls import RemoteSessions
from satchel.actors.cluster import Node, SessionPlacement
from satchel.actors.cluster._events import ClusterEvents
from satchel.actors.hooks._events import EventBus
from satchel.actors.sessions._deadlines import DEADLINES_KIND
from satchel.runtime import ReminderStore, Supervisor
from satchel.runtime._errors import InvalidArgumentError, ValidationError
from satchel.storage import (
    PostgresReminders,
    RecordReads,
    RecordStore,
    StoreReminders,
    is_networked,
)
from satchel.storage._open_ports import split_table
from satchel.storage._pg_notices import PostgresNotices

#: Kinds whose actors each node runs for itself (the deadline sweeper sweeps for the
#: sessions its node serves): their reminders are the node's own, not the cluster's.
NODE_LOCAL_KINDS = (DEADLINES_KIND,)


@attrs.define
class ClusterNode:
    """What a runtime needs to be one node of a cluster, opened together (``open_node``)."""

    #: Where sessions are served (leases, fencing, the heartbeat).
    placement: SessionPlacement
    #: The reminders the nodes share.
    reminders: PostgresReminders
    #: The notices the nodes pass their entries by.
    notices: PostgresNotices
    #: Set by ``relay_events``: what passes entries between the nodes.
    events: ClusterEvents | None = None
    #: Connections to the other nodes, for handles' calls of sessions served there.
    peers: Peers = attrs.field(factory=Peers)

    def session_calls(self) -> RemoteSessions:
        """Where ``rt.session(id)`` handles' calls run: here, or at the session's node."""
        owners = Owners(self.placement)
        return RemoteSessions(owners, self.peers, self.placement.node.token)

    def reminder_store(self, records: RecordStore) -> ReminderStore:
        """The shared reminders, into which those kept in ``records`` move."""
        self.reminders.legacy = StoreReminders(records)
        return self.reminders

    def relay_events(self, bus: EventBus, records: RecordReads, supervisor: Supervisor) -> None:
        """Pass the entries written on this node on to the other nodes, and theirs to the
        subscribers here (``rt.events``)."""
        self.events = ClusterEvents(self.notices, bus, records, self.placement.holder)
        bus.relay_to(self.events.note)
        supervisor.spawn_system_task(self.events.send_forever)
        supervisor.spawn_system_task(self.events.listen_forever)


@asynccontextmanager
async def open_node(store: str, node: Node | None) -> AsyncIterator[ClusterNode | None]:
    """``node`` on the PostgreSQL store ``store`` (``None`` without a node: every session is
    served here); its leases are released on exit."""
    if node is None:
        yield None
        return
    if not isinstance(node, Node):
        raise InvalidArgumentError(f"node must be a satchel.Node, not {type(node).__name__}")
    if not is_networked(store):
        raise ValidationError("a cluster node (node=) runs on a postgresql:// store only")
    conninfo, table = split_table(store)
    placement = await SessionPlacement.open(conninfo, table, node)
    try:
        # A period taken by a node that dies fires elsewhere after a lease time, as its
        # sessions move.
        reminders = await PostgresReminders.open(
            conninfo,
            table=table,
            node=node.id,
            mark_s=node.lease_ttl_s,
            local_kinds=NODE_LOCAL_KINDS,
        )
    except BaseException:
        with anyio.CancelScope(shield=True):
            await placement.aclose()
        raise
    notices = PostgresNotices(conninfo, f"{table}_events")
    try:
        cluster = ClusterNode(placement, reminders, notices)
        yield cluster
    finally:
        with anyio.CancelScope(shield=True):
            await placement.aclose()
            await reminders.aclose()
            await notices.aclose()
            await cluster.peers.aclose()
