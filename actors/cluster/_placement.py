"""Sessions placed by leases: a node serves a session only while it holds its lease.

The supervisor asks ``claim`` before it activates a session actor: the node takes the lease
in PostgreSQL (``PostgresLeases.acquire``), or the claim fails with ``SessionMovedError``
naming the node that holds it. The actor then writes through ``fence``: every write carries
the lease's epoch, so once the lease has moved its writes are refused whole. When the actor
stops, its lease is released (the next claim, on any node, succeeds at once).

``run`` beats every third of the lease's time: one statement renews every lease the node
holds; an actor whose lease was not renewed (it expired while the node was paused or cut
off, and may have been taken over) is stopped. If the beats fail for a whole lease time,
every lease is taken as lost.
"""

from __future__ import annotations

import logging
import secrets
from typing import final

import anyio
import attrs

from satchel.runtime import Supervisor
from satchel.runtime._errors import (
    SessionMovedError,
    ValidationError,
)
from satchel.storage import Batch, Fence, Lease, NodeInfo, PostgresLeases, RecordStore
from satchel.storage._leases import check_node_id, fence_key, guard

from .. import _validate as validate
from ..sessions import _session_layout as layout
from ..sessions._session import SESSION_KIND

log = logging.getLogger("satchel.cluster")


@attrs.frozen
class Node:
    """One node of a cluster: its id (unique in the cluster), the address its HTTP API
    answers on (``http://host:port``), how long its leases last without a beat, and the
    cluster's token, with which it asks other nodes for the sessions they serve."""

    id: str
    address: str = ""
    lease_ttl_s: float = 10.0
    token: str | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        check_node_id(self.id)
        if not (isinstance(self.lease_ttl_s, int | float) and 0.3 <= self.lease_ttl_s <= 3600):
            raise ValidationError(
                f"lease_ttl_s must be a number from 0.3 to 3600, not {self.lease_ttl_s!r}"
            )
        if not isinstance(self.address, str):
            raise ValidationError(f"a node's address is a str, not {self.address!r}")
        if self.token is not None and not (isinstance(self.token, str) and self.token.strip()):
            raise ValidationError("a node's token is a non-empty str")


@attrs.frozen
class ClusterStatus:
    """One node's view of its cluster: itself, how many sessions it serves, how many leases
    it found lost, and the nodes that beat within a lease time (itself among them)."""

    node: str
    address: str
    lease_ttl_s: float
    sessions_served: int
    leases_lost: int
    nodes: list[NodeInfo]


@final
class SessionPlacement:
    """The ``Placement`` of session actors on this node (see the module docstring)."""

    def __init__(self, leases: PostgresLeases, node: Node) -> None:
        self.leases = leases
        self.node = node
        #: This process as a holder of leases: the node's id and a token of its own, so a
        #: node restarted under its id never takes its old incarnation's leases for its own.
        self.holder = f"{node.id}#{secrets.token_hex(8)}"
        #: Where this node answers (the node's own address, or the one it listens on).
        self.address = node.address
        self._supervisor: Supervisor | None = None
        #: The leases this node holds, by session id.
        self.held: dict[str, Lease] = {}
        # Releases under way: a claim of the same session waits for its release first, or
        # the release would land after the claim and undo it.
        self._releasing: dict[str, anyio.Event] = {}
        #: Leases found lost by a beat (their actors were stopped).
        self.lost = 0

    @classmethod
    async def open(cls, conninfo: str, table: str, node: Node) -> SessionPlacement:
        """The placement of ``node`` on the store's PostgreSQL table ``table``, registered
        there; ``attach`` it to the supervisor, and ``aclose`` it after the supervisor."""
        leases = await PostgresLeases.open(conninfo, table=table)
        placement = cls(leases, node)
        try:
            await leases.register(node.id, placement.holder, node.address, ttl_s=node.lease_ttl_s)
        except BaseException:
            await leases.aclose()
            raise
        return placement

    async def advertise(self, address: str) -> None:
        """Register ``address`` as where this node answers (once it listens)."""
        await self.leases.register(self.node.id, self.holder, address, ttl_s=self.node.lease_ttl_s)
        self.address = address

    def attach(self, supervisor: Supervisor) -> None:
        """Place ``supervisor``'s session actors, and beat in its task group."""
        self._supervisor = supervisor
        supervisor.placement = self
        supervisor.spawn_system_task(self.run)

    def _stop(self, session_id: str) -> None:
        if self._supervisor is not None:
            self._supervisor.evict(SESSION_KIND, session_id)

    def _moved(self, session_id: str, lease: Lease | None) -> None:
        """A write of ``session_id`` found its lease moved: stop serving it."""
        if lease is not None and self.held.get(session_id) is lease:
            self._drop([session_id], {session_id: lease})
        else:
            self._stop(session_id)

    def places(self, kind: str) -> bool:
        return kind == SESSION_KIND

    def holds(self, kind: str, actor_id: str) -> bool:
        return actor_id in self.held

    async def claim(self, kind: str, actor_id: str) -> None:
        releasing = self._releasing.get(actor_id)
        if releasing is not None:
            await releasing.wait()
        lease = await self.leases.acquire(
            actor_id,
            self.holder,
            ttl_s=self.node.lease_ttl_s,
            record=layout.record_key(validate.session_id(actor_id)[1]),
        )
        if not lease.node:
            return  # no such session: its actor answers so, and writes nothing (no lease)
        if not lease.granted:
            found = await self.leases.owner(actor_id)
            where = f" at {found[1]}" if found is not None and found[1] else ""
            raise SessionMovedError(
                f"session {actor_id} is served by node {lease.node_id}{where}; ask there"
            )
        self.held[actor_id] = lease

    def vacated(self, kind: str, actor_id: str) -> None:
        lease = self.held.pop(actor_id, None)
        if lease is None or actor_id in self._releasing:
            return
        self._releasing[actor_id] = anyio.Event()
        if self._supervisor is not None:
            self._supervisor.spawn_system_task(self._release, lease)
        else:
            self._releasing.pop(actor_id).set()

    async def settled(self, kind: str, actor_id: str) -> None:
        releasing = self._releasing.get(actor_id)
        if releasing is not None:
            await releasing.wait()

    async def _release(self, lease: Lease) -> None:
        try:
            # Bounded: stopping the actor and claiming it again wait for this, and the lease
            # runs out by itself anyway.
            with anyio.CancelScope(shield=True), anyio.fail_after(self.node.lease_ttl_s):
                await self.leases.release(lease)
        except (Exception, TimeoutError) as error:  # it runs out; another node waits for that
            log.warning("releasing the lease on %s failed: %r", lease.session, error)
        finally:
            self._releasing.pop(lease.session).set()

    def guard(self, batch: Batch, session_id: str) -> None:
        """Make ``batch`` expect this node's lease on ``session_id`` still to hold."""
        lease = self.held.get(session_id)
        guard(batch, session_id, -1 if lease is None else lease.epoch)

    def drop_fence(self, batch: Batch, session_id: str) -> None:
        """Make ``batch`` delete the fence record of ``session_id`` (it is being deleted:
        a node still writing it is refused, and a new session of that id gets a new one)."""
        batch.delete(fence_key(session_id))

    def fence(self, session_id: str, records: RecordStore) -> RecordStore:
        """``records`` as the holder of ``session_id``'s lease writes them."""
        lease = self.held.get(session_id)
        # Lost between the claim and the actor's start: an epoch no lease has, so every
        # write is refused (raising here would mark the actor failed on this node).
        return Fence(
            records,
            session_id,
            -1 if lease is None else lease.epoch,
            on_moved=lambda: self._moved(session_id, lease),
        )

    async def beat(self) -> None:
        """Renew every lease held; stop the actors whose leases were not renewed."""
        before = dict(self.held)
        renewed = await self.leases.renew(self.holder, list(before), ttl_s=self.node.lease_ttl_s)
        self._drop([s for s, lease in before.items() if s not in renewed], before)

    def _drop(self, sessions: list[str], seen: dict[str, Lease]) -> None:
        for session_id in sessions:
            if self.held.get(session_id) is not seen[session_id]:
                continue  # claimed again meanwhile: a new lease
            del self.held[session_id]
            self.lost += 1
            log.warning("lost the lease on session %s; stopping its actor", session_id)
            self._stop(session_id)

    async def run(self) -> None:
        """Beat forever (every third of the lease time); see the module docstring."""
        ttl = self.node.lease_ttl_s
        last_beat = anyio.current_time()
        while True:
            await anyio.sleep(ttl / 3)
            try:
                # A beat that hangs (a connection that stopped answering) is a beat missed.
                with anyio.fail_after(ttl / 3):
                    await self.beat()
                last_beat = anyio.current_time()
            except (Exception, TimeoutError) as error:
                log.warning("renewing leases failed: %r", error)
                if anyio.current_time() - last_beat >= ttl:
                    # Expired by now, by any clock: another node may serve them.
                    self._drop(list(self.held), dict(self.held))

    async def status(self) -> ClusterStatus:
        """This node and the live nodes of its cluster."""
        ttl = self.node.lease_ttl_s
        return ClusterStatus(
            self.node.id,
            self.address,
            ttl,
            len(self.held),
            self.lost,
            await self.leases.nodes(within_s=ttl),
        )

    async def aclose(self) -> None:
        """Release every lease still held (the actors have stopped) and mark the node
        stopped, in one statement; then close."""
        self.held = {}
        with anyio.CancelScope(shield=True):
            try:
                with anyio.fail_after(self.node.lease_ttl_s):
                    await self.leases.unregister(self.node.id, self.holder)
            except (Exception, TimeoutError) as error:  # they run out by themselves
                log.warning("letting go of the leases failed: %r", error)
            await self.leases.aclose()
