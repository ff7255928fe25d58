"""A runtime as one node of a cluster: its placement of sessions, opened with the runtime."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

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

# The shared reminders of each open placement (``reminder_store_for``), closed with it.
_REMINDERS: weakref.WeakKeyDictionary[SessionPlacement, PostgresReminders] = (
    weakref.WeakKeyDictionary()
)
# What passes the events of each open placement on (tests wait for it to listen).
_BRIDGES: weakref.WeakKeyDictionary[SessionPlacement, ClusterEvents] = weakref.WeakKeyDictionary()
# The event notices of each open placement (``relay_events``), closed with it.
_NOTICES: weakref.WeakKeyDictionary[SessionPlacement, PostgresNotices] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def open_placement(store: str, node: Node | None) -> AsyncIterator[SessionPlacement | None]:
    """The placement of ``node`` on the PostgreSQL store ``store`` (``None`` without a node:
    every session is served here); its leases are released on exit."""
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
    _REMINDERS[placement] = reminders
    notices = _NOTICES[placement] = PostgresNotices(conninfo, f"{table}_events")
    try:
        yield placement
    finally:
        with anyio.CancelScope(shield=True):
            await placement.aclose()
            await reminders.aclose()
            await notices.aclose()


def reminder_store_for(placement: SessionPlacement | None, records: RecordStore) -> ReminderStore:
    """Where the runtime keeps its reminders: in its records on one node; on a cluster
    node, in the table the nodes share (the records' reminders move there)."""
    if placement is None:
        return StoreReminders(records)
    shared = _REMINDERS[placement]
    shared.legacy = StoreReminders(records)
    return shared


def relay_events(
    placement: SessionPlacement, bus: EventBus, records: RecordReads, supervisor: Supervisor
) -> ClusterEvents:
    """Pass the entries written on this node on to the other nodes, and theirs to the
    subscribers here (``rt.events``)."""
    bridge = _BRIDGES[placement] = ClusterEvents(
        _NOTICES[placement], bus, records, placement.holder
    )
    bus.relay_to(bridge.note)
    supervisor.spawn_system_task(bridge.send_forever)
    supervisor.spawn_system_task(bridge.listen_forever)
    return bridge
