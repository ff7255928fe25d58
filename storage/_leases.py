"""Nodes and session leases in PostgreSQL: who may write a session, fenced by an epoch.

A cluster's nodes share one PostgreSQL store. Each node registers (id, address, heartbeat) in
``<table>_nodes``; a session is active on the node holding its lease in ``<table>_leases``
(session, node, epoch, expiry). Every time, expiry is judged by the database's clock, never a
node's.

Taking a lease that is free, expired or released gives it a new epoch, one more than the last
(a session's epochs only grow: a released lease keeps its row), and in the same transaction
writes that epoch into the session's fence record in the records table. Every write of the
session's owner carries the condition that the fence record still holds its epoch
(``Fence``), so once the lease has moved, a deposed owner's writes fail with
``SessionMovedError`` and write nothing: a node paused past its lease cannot write over its
successor, whatever its clock says.

A node renews all its leases in one statement (``renew``); the sessions not renewed (their
lease expired or moved) are the ones it must stop serving.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, final

import attrs
import sniffio

from satchel.runtime._errors import (
    InvalidArgumentError,
    SessionMovedError,
    StoreClosedError,
    StoreLockedError,
    ValidationError,
    WriteConflictError,
)

from . import _keys
from ._kv import INDEX, Batch, Equals, Space
from ._pg_connections import Connections
from ._ports import RecordStore, Transaction
from ._postgres import _translate

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,40}")
_NODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {t}_nodes (
    node text PRIMARY KEY, holder text NOT NULL, address text NOT NULL,
    heartbeat timestamptz NOT NULL, started timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {t}_leases (
    session text PRIMARY KEY, node text NOT NULL, epoch bigint NOT NULL,
    expires timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS {t}_leases_node ON {t}_leases (node);
CREATE OR REPLACE FUNCTION {t}_acquire(s text, n text, ttl_ms int, fence bytea, what bytea)
RETURNS TABLE (owner text, epoch bigint, granted boolean) LANGUAGE plpgsql AS $$
DECLARE
    row {t}_leases%ROWTYPE;
BEGIN
    IF what IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {t} WHERE space = 0 AND key = what) THEN
        RETURN QUERY SELECT ''::text, 0::bigint, false;  -- nothing to lease
        RETURN;
    END IF;
    INSERT INTO {t}_leases VALUES (s, n, 0, '-infinity') ON CONFLICT (session) DO NOTHING;
    SELECT * INTO row FROM {t}_leases WHERE session = s FOR UPDATE;
    IF row.node = n AND row.expires > now() THEN
        UPDATE {t}_leases SET expires = now() + ttl_ms * interval '1 millisecond'
            WHERE session = s;
        RETURN QUERY SELECT n, row.epoch, true;
    ELSIF row.expires <= now() THEN
        UPDATE {t}_leases
            SET node = n, epoch = row.epoch + 1,
                expires = now() + ttl_ms * interval '1 millisecond'
            WHERE session = s;
        INSERT INTO {t} VALUES (0, fence, int8send(row.epoch + 1))
            ON CONFLICT (space, key) DO UPDATE SET value = excluded.value;
        RETURN QUERY SELECT n, row.epoch + 1, true;
    ELSE
        RETURN QUERY SELECT row.node, row.epoch, false;
    END IF;
END
$$;
"""


@attrs.frozen
class Lease:
    """A session's lease as ``acquire`` found it: held by ``node`` (a node's incarnation,
    ``id#token``) at ``epoch``; ``granted`` when the asker holds it now."""

    session: str
    node: str
    epoch: int
    granted: bool

    @property
    def node_id(self) -> str:
        """The id of the node holding the lease (without its incarnation)."""
        return self.node.partition("#")[0]


@attrs.frozen
class NodeInfo:
    """A registered node: its id, the address it serves on, and how long ago (by the
    database's clock) it last beat."""

    node: str
    address: str
    silent_s: float


def fence_key(session: str) -> bytes:
    """The record holding the epoch of the lease on ``session``."""
    return _keys.FENCE + session.encode()


def _epoch_bytes(epoch: int) -> bytes:
    return epoch.to_bytes(8, "big", signed=True)


def guard(batch: Batch, session: str, epoch: int) -> None:
    """Make ``batch`` expect the lease on ``session`` still to be at ``epoch``: a put of the
    value its fence record holds, which the condition rides on (conditions go with an
    operation)."""
    value = _epoch_bytes(epoch)
    batch.put(fence_key(session), value, expect=Equals(value))


@final
class PostgresLeases:
    """The node registry and session leases beside a ``PostgresRecords`` table (see the
    module docstring). Open with ``open``; close with ``aclose``."""

    def __init__(self, connections: Connections, table: str) -> None:
        self._connections = connections
        self._closed = False
        self.table = table

    @classmethod
    async def open(cls, conninfo: str, *, table: str = "satchel_records") -> PostgresLeases:
        """Connect to ``conninfo``, creating the tables and function if they are missing
        (the records table ``table`` must exist: open its ``PostgresRecords`` first)."""
        if not _NAME.fullmatch(table):
            raise InvalidArgumentError(f"table must be a lower-case SQL name, not {table!r}")
        threaded = sniffio.current_async_library() != "asyncio"
        # Every activation on a node claims, and every request for a session served
        # elsewhere looks its owner up: as many connections as the records have.
        leases = cls(Connections(conninfo, 8, threaded), table)
        lock = f"SELECT pg_advisory_xact_lock(hashtext('{table}_leases'));"
        try:
            await leases._run(f"BEGIN; {lock} {_SCHEMA.format(t=table)} COMMIT;", None)
        except BaseException:
            await leases.aclose()
            raise
        return leases

    async def _run(self, query: str, params: Sequence[Any] | None) -> list[tuple[Any, ...]]:
        if self._closed:
            raise StoreClosedError("the lease table's connection is closed")
        try:
            return await self._connections.run(query, params, fetch=params is not None)
        except Exception as error:
            raise _translate(error) from error

    async def register(self, node: str, holder: str, address: str, *, ttl_s: float) -> None:
        """Record node ``node`` as this process (``holder``: its incarnation, which holds
        its leases), serving at ``address``, beating now. ``StoreLockedError`` if another
        process registered that id and beat within ``ttl_s``: two live processes with one
        node id would both think they hold its leases."""
        check_node_id(node)
        _check_holder(holder)
        t = self.table
        rows = await self._run(
            f"INSERT INTO {t}_nodes VALUES (%s, %s, %s, now(), now()) "
            "ON CONFLICT (node) DO UPDATE SET holder = excluded.holder, "
            "address = excluded.address, heartbeat = now(), "
            f"started = CASE WHEN {t}_nodes.holder = excluded.holder THEN {t}_nodes.started "
            "ELSE now() END "
            f"WHERE {t}_nodes.holder = excluded.holder "
            f"OR {t}_nodes.heartbeat < now() - %s * interval '1 millisecond' RETURNING node",
            (node, holder, address, _ttl_ms(ttl_s)),
        )
        if not rows:
            raise StoreLockedError(
                f"node id {node!r} is in use by a live node (it beat less than {ttl_s} s ago); "
                "give this node another id, or wait for that one to stop"
            )

    async def nodes(self, *, within_s: float) -> list[NodeInfo]:
        """The nodes that beat in the last ``within_s`` seconds, by id."""
        rows = await self._run(
            f"SELECT node, address, extract(epoch FROM now() - heartbeat)::float8 "
            f"FROM {self.table}_nodes WHERE heartbeat > now() - %s * interval '1 second' "
            "ORDER BY node",
            (within_s,),
        )
        return [NodeInfo(node, address, silent) for node, address, silent in rows]

    async def acquire(
        self, session: str, node: str, *, ttl_s: float, record: bytes | None = None
    ) -> Lease:
        """Take (or extend) the lease on ``session`` for ``node`` (a node's incarnation),
        unless another holds it unexpired: the lease as it stands then. With ``record`` (the
        key of the session's record), a session not stored gets no lease: not granted, held
        by no node (``node == ""``), and nothing is written."""
        _check_holder(node)
        rows = await self._run(
            f"SELECT * FROM {self.table}_acquire(%s, %s, %s, %s, %s)",
            (session, node, _ttl_ms(ttl_s), fence_key(session), record),
        )
        owner, epoch, granted = rows[0]
        return Lease(session, owner, epoch, granted)

    async def renew(
        self, node: str, sessions: Sequence[str] | None = None, *, ttl_s: float
    ) -> set[str]:
        """Extend the unexpired leases ``node`` (an incarnation) holds on ``sessions`` (all
        of them if ``None``), and its heartbeat, in one statement; the sessions whose leases
        it still holds. A lease it holds but does not name (left by a claim cut short) is
        not extended: it runs out."""
        _check_holder(node)
        t = self.table
        named = "" if sessions is None else " AND session = ANY(%s)"
        params: tuple[Any, ...] = (node, _ttl_ms(ttl_s), node)
        if sessions is not None:
            params += (list(sessions),)
        rows = await self._run(
            f"WITH beat AS (UPDATE {t}_nodes SET heartbeat = now() WHERE holder = %s) "
            f"UPDATE {t}_leases SET expires = now() + %s * interval '1 millisecond' "
            f"WHERE node = %s AND expires > now(){named} RETURNING session",
            params,
        )
        return {session for (session,) in rows}

    async def unregister(self, node: str, holder: str) -> None:
        """Release every lease of ``holder``, and mark node ``node`` silent if ``holder`` is
        still its incarnation, in one statement: stopped cleanly, its sessions may be served
        elsewhere, and its id serve again, at once."""
        t = self.table
        await self._run(
            f"WITH freed AS (UPDATE {t}_leases SET expires = '-infinity' WHERE node = %s) "
            f"UPDATE {t}_nodes SET heartbeat = '-infinity' "
            "WHERE node = %s AND holder = %s RETURNING node",
            (holder, node, holder),
        )

    async def release(self, lease: Lease) -> None:
        """Give up ``lease`` (if it is still the holder's): the next acquire, on any node,
        takes the session at once, with a new epoch."""
        await self._run(
            f"UPDATE {self.table}_leases SET expires = '-infinity' "
            "WHERE session = %s AND node = %s AND epoch = %s RETURNING session",
            (lease.session, lease.node, lease.epoch),
        )

    async def owner(self, session: str) -> tuple[Lease, str] | None:
        """The unexpired lease on ``session`` and its node's address, or ``None``."""
        t = self.table
        rows = await self._run(
            f"SELECT l.node, l.epoch, n.address FROM {t}_leases l JOIN {t}_nodes n "
            "ON n.holder = l.node WHERE l.session = %s AND l.expires > now()",
            (session,),
        )
        if not rows:
            return None
        node, epoch, address = rows[0]
        return Lease(session, node, epoch, False), address

    async def drop(self) -> None:
        """Drop the node and lease tables and the acquire function (tests, tear-down)."""
        t = self.table
        await self._run(
            f"DROP FUNCTION IF EXISTS {t}_acquire(text, text, int, bytea, bytea); "
            f"DROP TABLE IF EXISTS {t}_leases; DROP TABLE IF EXISTS {t}_nodes;",
            None,
        )

    async def aclose(self) -> None:
        """Close the connections."""
        if not self._closed:
            self._closed = True
            await self._connections.aclose()


def check_node_id(node: object) -> None:
    """Refuse (``ValidationError``) what cannot be a node id."""
    if type(node) is not str or not _NODE.fullmatch(node):
        raise ValidationError(f"a node id is 1 to 64 letters, digits and _ . : -, not {node!r}")


def _check_holder(holder: str) -> None:
    """A node's incarnation: its id, or its id and ``#`` and a token."""
    node, _, token = holder.partition("#") if type(holder) is str else ("", "", "")
    check_node_id(node)
    if "#" in holder and not token.isalnum():
        raise ValidationError(f"a node's incarnation is id#token, not {holder!r}")


def _ttl_ms(ttl_s: float) -> int:
    if not 0 < ttl_s <= 3600:
        raise ValidationError(f"a lease lasts more than 0 and at most 3600 s, not {ttl_s}")
    return max(1, round(ttl_s * 1000))


@final
class Fence:
    """A session's records as its lease holder writes them: every write carries the
    condition that the session's fence record still holds the lease's epoch, so a write
    after the lease moved fails with ``SessionMovedError`` and writes nothing (and
    ``on_moved`` is called). Reads pass through."""

    __slots__ = ("_key", "_on_moved", "_value", "epoch", "records", "session")

    def __init__(
        self,
        records: RecordStore,
        session: str,
        epoch: int,
        on_moved: Callable[[], None] | None = None,
    ) -> None:
        self.records = records
        self.session = session
        self.epoch = epoch
        #: Called when a write finds the lease moved (the holder stops serving the session).
        self._on_moved = on_moved
        self._key = fence_key(session)
        self._value = _epoch_bytes(epoch)

    def transaction(self) -> Transaction:
        return Transaction(self)

    async def get(self, key: bytes, space: Space = INDEX) -> bytes | None:
        return await self.records.get(key, space)

    async def get_many(self, keys: Sequence[bytes], space: Space = INDEX) -> list[bytes | None]:
        return await self.records.get_many(keys, space)

    async def scan(
        self,
        lower: bytes,
        upper: bytes,
        *,
        space: Space = INDEX,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        return await self.records.scan(lower, upper, space=space, reverse=reverse, limit=limit)

    async def aclose(self) -> None:
        """Nothing: the records are the runtime's, closed with it."""

    async def write(self, batch: Batch, *, sync: bool | None = None) -> None:
        """Write ``batch`` if the lease is still this holder's."""
        fenced = Batch()
        guard(fenced, self.session, self.epoch)  # first: the batch's own operations follow
        fenced.extend(batch)
        try:
            await self.records.write(fenced, sync=sync)
        except WriteConflictError as conflict:
            if await self.records.get(self._key) != self._value:
                if self._on_moved is not None:
                    self._on_moved()
                raise SessionMovedError(
                    f"session {self.session} is now served by another node (its lease moved "
                    f"from epoch {self.epoch}); nothing of the write was written"
                ) from conflict
            raise
