"""The kernel's reminders in PostgreSQL, shared by the nodes of a cluster.

One row per reminder in ``<table>_reminders``, beside the node and lease tables. Nodes do not
load them: each polls (``take_due``) with one statement that marks the due reminders no one
holds as taken by it until now + ``mark_s`` (``FOR UPDATE SKIP LOCKED``: two nodes never
take one row), by the database's clock, and renews the marks of those it still fires. Once
fired, a one-shot reminder is deleted and a repeating one moved to its next period
(``finish``). Each row has a ``period`` that every save and every finish bumps: a finish
applies only to the period it took, so a period fires once across the cluster — again only
if its taker died (its mark expires) before finishing it.

A reminder of a node-local kind (``local_kinds``: the deadline sweeper, which each node runs
for the sessions it serves) is the node's own: its row carries the node's id, and only that
node takes it, so the nodes' reminders of one key never overwrite each other.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from typing import Any, final

import sniffio

from satchel.runtime import Reminder, ReminderStore, TakenReminder
from satchel.runtime._errors import (
    InvalidArgumentError,
    StoreClosedError,
    ValidationError,
)

from ._leases import check_node_id
from ._pg_connections import Connections
from ._postgres import _translate

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,40}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {t}_reminders (
    kind text NOT NULL, actor text NOT NULL, name text NOT NULL,
    node text NOT NULL,  -- '' for any node; a node's id for a node-local kind
    due float8 NOT NULL, every_s float8,  -- seconds since the epoch; NULL: once
    period bigint NOT NULL DEFAULT 0,
    taker text NOT NULL DEFAULT '', taken_until timestamptz NOT NULL DEFAULT '-infinity',
    PRIMARY KEY (kind, actor, name, node)
);
CREATE INDEX IF NOT EXISTS {t}_reminders_due ON {t}_reminders (due);
CREATE INDEX IF NOT EXISTS {t}_reminders_taker ON {t}_reminders (taker) WHERE taker <> '';
"""

# One statement a poll: renew what this node holds, take what is due and free.
_TAKE = """
WITH renewed AS (
    UPDATE {t}_reminders SET taken_until = now() + %s * interval '1 millisecond'
    WHERE taker = %s AND taken_until > now() RETURNING 1
), due AS (
    SELECT kind, actor, name, node FROM {t}_reminders
    WHERE due <= extract(epoch FROM now())::float8 AND taken_until <= now()
        AND node IN ('', %s) AND kind = ANY(%s::text[])
    ORDER BY due LIMIT %s FOR UPDATE SKIP LOCKED
)
UPDATE {t}_reminders r SET taker = %s, taken_until = now() + %s * interval '1 millisecond'
FROM due WHERE (r.kind, r.actor, r.name, r.node) = (due.kind, due.actor, due.name, due.node)
RETURNING r.kind, r.actor, r.name, r.due, r.every_s, r.period,
    extract(epoch FROM now())::float8
"""

_KEY = "kind = %s AND actor = %s AND name = %s AND node = %s"

#: How often a node polls at most (a due reminder fires within about this long).
POLL_S = 0.5


@final
class PostgresReminders:
    """A ``satchel.runtime.SharedReminderStore`` in PostgreSQL (see the module docstring).
    Open with ``open``; close with ``aclose``."""

    def __init__(
        self,
        connections: Connections,
        table: str,
        node: str,
        *,
        mark_s: float,
        local_kinds: Iterable[str] = (),
    ) -> None:
        check_node_id(node)
        if not 0.1 <= mark_s <= 3600:
            raise ValidationError(f"a reminder's mark lasts 0.1 to 3600 s, not {mark_s}")
        self._connections = connections
        self._closed = False
        self.table = table
        self.node = node
        #: This process as a taker: a node restarted under its id never renews the marks of
        #: its former incarnation (they expire, and their periods fire again).
        self.holder = f"{node}#{secrets.token_hex(8)}"
        self._mark_ms = round(mark_s * 1000)
        self._local = frozenset(local_kinds)
        #: Reminders to move into the table at the first poll (a store's, from before it
        #: was a cluster); ``None``: nothing to move.
        self.legacy: ReminderStore | None = None

    @classmethod
    async def open(
        cls,
        conninfo: str,
        *,
        table: str = "satchel_records",
        node: str,
        mark_s: float,
        local_kinds: Iterable[str] = (),
    ) -> PostgresReminders:
        """Connect to ``conninfo``, creating the table if it is missing; ``node``'s
        reminders, each period held ``mark_s`` seconds by the node that takes it."""
        if not _NAME.fullmatch(table):
            raise InvalidArgumentError(f"table must be a lower-case SQL name, not {table!r}")
        threaded = sniffio.current_async_library() != "asyncio"
        # One poll and the saves of a few actors at a time.
        store = cls(
            Connections(conninfo, 4, threaded),
            table,
            node,
            mark_s=mark_s,
            local_kinds=local_kinds,
        )
        lock = f"SELECT pg_advisory_xact_lock(hashtext('{table}_reminders'));"
        try:
            await store._run(f"BEGIN; {lock} {_SCHEMA.format(t=table)} COMMIT;", None)
        except BaseException:
            await store.aclose()
            raise
        return store

    @property
    def poll_s(self) -> float:
        """How often to poll: often enough to renew a mark twice before it expires."""
        return min(POLL_S, self._mark_ms / 3000)

    async def _run(self, query: str, params: Sequence[Any] | None) -> list[tuple[Any, ...]]:
        if self._closed:
            raise StoreClosedError("the reminder table's connection is closed")
        try:
            return await self._connections.run(query, params, fetch=params is not None)
        except Exception as error:
            raise _translate(error) from error

    def _key(self, kind: str, actor_id: str, name: str) -> tuple[str, str, str, str]:
        for part in (kind, actor_id, name):
            if not part or "\x00" in part:
                raise ValidationError(f"a reminder key part must be non-empty, NUL-free: {part!r}")
        return (kind, actor_id, name, self.node if kind in self._local else "")

    async def load_reminders(self) -> list[Reminder]:
        """Every stored reminder (of every node)."""
        rows = await self._run(
            f"SELECT kind, actor, name, due, every_s FROM {self.table}_reminders ORDER BY due",
            (),
        )
        return [Reminder(*row) for row in rows]

    async def save_reminder(self, reminder: Reminder) -> None:
        """Store ``reminder`` as a new period, replacing the one with the same key (a mark
        on that one goes: the new reminder is anyone's to take when due)."""
        t = self.table
        await self._run(
            f"INSERT INTO {t}_reminders (kind, actor, name, node, due, every_s) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (kind, actor, name, node) DO UPDATE "
            f"SET due = excluded.due, every_s = excluded.every_s, period = {t}_reminders.period "
            "+ 1, taker = '', taken_until = '-infinity' RETURNING period",
            (*self._key(*reminder.key), reminder.due, reminder.every),
        )

    async def delete_reminder(self, kind: str, actor_id: str, name: str) -> None:
        """Remove the reminder with that key, if any."""
        await self.remove_reminder(kind, actor_id, name)

    async def remove_reminder(self, kind: str, actor_id: str, name: str) -> bool:
        """Remove the reminder with that key; whether there was one."""
        rows = await self._run(
            f"DELETE FROM {self.table}_reminders WHERE {_KEY} RETURNING period",
            self._key(kind, actor_id, name),
        )
        return bool(rows)

    async def take_due(self, kinds: Sequence[str], limit: int) -> list[TakenReminder]:
        """Take at most ``limit`` due, free reminders of ``kinds`` (this node's own and
        anyone's) until now + the mark, and renew the marks this node holds."""
        if self.legacy is not None:
            await self._move_legacy(self.legacy)
            self.legacy = None
        taker = (self.holder, self._mark_ms)
        rows = await self._run(
            _TAKE.format(t=self.table),
            (self._mark_ms, self.holder, self.node, list(kinds), limit, *taker),
        )
        return [
            TakenReminder(Reminder(kind, actor, name, due, every), period, now)
            for kind, actor, name, due, every, period, now in rows
        ]

    async def finish(self, taken: TakenReminder, after: Reminder | None) -> None:
        """Delete the fired period's reminder, or move it to ``after``'s due time, unless it
        was saved again, removed or finished since it was taken."""
        where = (*self._key(*taken.reminder.key), taken.period)
        t = self.table
        if after is None:
            query = f"DELETE FROM {t}_reminders WHERE {_KEY} AND period = %s RETURNING period"
            await self._run(query, where)
            return
        await self._run(
            f"UPDATE {t}_reminders SET due = %s, period = period + 1, taker = '', "
            f"taken_until = '-infinity' WHERE {_KEY} AND period = %s RETURNING period",
            (after.due, *where),
        )

    async def release(self, taken: TakenReminder, delay_s: float) -> None:
        """Let any node take the period again after ``delay_s`` (if this node still holds
        it)."""
        await self._run(
            f"UPDATE {self.table}_reminders SET taker = '', "
            "taken_until = now() + %s * interval '1 millisecond' "
            f"WHERE {_KEY} AND period = %s AND taker = %s RETURNING period",
            (round(delay_s * 1000), *self._key(*taken.reminder.key), taken.period, self.holder),
        )

    async def _move_legacy(self, legacy: ReminderStore) -> None:
        """Move the reminders ``legacy`` keeps into the table (a reminder of the same key
        there wins), then delete them there: each node does it at its first poll."""
        for reminder in await legacy.load_reminders():
            await self._run(
                f"INSERT INTO {self.table}_reminders (kind, actor, name, node, due, every_s) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING period",
                (*self._key(*reminder.key), reminder.due, reminder.every),
            )
            await legacy.delete_reminder(*reminder.key)

    async def drop(self) -> None:
        """Drop the table (tests, tear-down)."""
        await self._run(f"DROP TABLE IF EXISTS {self.table}_reminders;", None)

    async def aclose(self) -> None:
        """Close the connections."""
        if not self._closed:
            self._closed = True
            await self._connections.aclose()
