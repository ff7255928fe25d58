"""The record port on PostgreSQL (psycopg 3, a few connections kept open).

One table holds the records: ``key bytea PRIMARY KEY, value bytea``; bytea compares bytewise,
so a scan is an index range scan in key order. A commit is one round trip: a PL/pgSQL
function takes the transaction's operations as arrays and applies them in order inside the
statement's own transaction, each conditional one with a statement that checks and writes at
once (``INSERT … ON CONFLICT DO NOTHING`` for an absent key, ``UPDATE … WHERE value = …`` for
an expected value), so two writers that raced for a record cannot both win: the loser's
statement finds the row changed and the function raises, undoing all of its transaction.

Driver mode, by measurement on this machine (point select, median): psycopg's
``AsyncConnection`` on asyncio 146 µs; a synchronous connection called inline 134 µs, and
from a worker thread 268 µs. So on asyncio calls use psycopg's async connections; on Trio
(which they do not support) each call runs a synchronous connection in a worker thread.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any, final

import anyio
import sniffio
from satchel.runtime._errors import (
    InvalidArgumentError,
    StoreClosedError,
    StoreUnavailableError,
    WriteConflictError,
)

from ._kv import BLOBS, INDEX, Batch, Equals, Space
from ._ports import Transaction

#: The SQLSTATE the commit function raises for a failed condition.
_CONFLICT = "SC409"
#: SQLSTATEs that mean "another transaction got in the way": serialization failure, deadlock.
_RETRYABLE = {_CONFLICT, "40001", "40P01"}
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,40}")

#: Operation codes in the commit arrays.
_OPS = {"put": 1, "delete": 2, "delete_range": 3}
_SPACES = {INDEX: 0, BLOBS: 1}
#: Condition codes: none, absent, equals.
_ANY, _IS_ABSENT, _EQUALS = 0, 1, 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {t} (
    space smallint NOT NULL, key bytea NOT NULL, value bytea NOT NULL, PRIMARY KEY (space, key)
);
CREATE OR REPLACE FUNCTION {t}_commit(
    ops smallint[], spaces smallint[], keys bytea[], vals bytea[], conds smallint[],
    expects bytea[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    i int;
    n int;
BEGIN
    FOR i IN 1 .. coalesce(array_length(ops, 1), 0) LOOP
        IF ops[i] = 1 THEN
            IF conds[i] = 1 THEN
                INSERT INTO {t} VALUES (spaces[i], keys[i], vals[i])
                    ON CONFLICT (space, key) DO NOTHING;
            ELSIF conds[i] = 2 THEN
                UPDATE {t} SET value = vals[i]
                    WHERE space = spaces[i] AND key = keys[i] AND value = expects[i];
            ELSE
                INSERT INTO {t} VALUES (spaces[i], keys[i], vals[i])
                    ON CONFLICT (space, key) DO UPDATE SET value = excluded.value;
            END IF;
        ELSIF ops[i] = 2 THEN
            IF conds[i] = 1 THEN
                PERFORM 1 FROM {t} WHERE space = spaces[i] AND key = keys[i] FOR UPDATE;
                IF FOUND THEN
                    RAISE EXCEPTION USING ERRCODE = '{conflict}', MESSAGE = i::text;
                END IF;
            ELSIF conds[i] = 2 THEN
                DELETE FROM {t}
                    WHERE space = spaces[i] AND key = keys[i] AND value = expects[i];
            ELSE
                DELETE FROM {t} WHERE space = spaces[i] AND key = keys[i];
            END IF;
        ELSE
            DELETE FROM {t} WHERE space = spaces[i] AND key >= keys[i] AND key < vals[i];
        END IF;
        IF conds[i] <> 0 AND ops[i] <> 2 OR conds[i] = 2 THEN
            GET DIAGNOSTICS n = ROW_COUNT;
            IF n = 0 THEN
                RAISE EXCEPTION USING ERRCODE = '{conflict}', MESSAGE = i::text;
            END IF;
        END IF;
    END LOOP;
END
$$;
"""


def _translate(error: BaseException) -> BaseException:
    """The satchel error for a psycopg one (the error itself if it is not psycopg's)."""
    import psycopg

    if isinstance(error, psycopg.Error) and error.sqlstate in _RETRYABLE:
        return WriteConflictError(
            "a record changed since it was read, or another writer held it; "
            "nothing of the transaction was written"
        )
    if isinstance(error, psycopg.OperationalError):
        return StoreUnavailableError(f"PostgreSQL did not answer: {error}")
    return error


def _run_sync(conn: Any, query: str, params: Sequence[Any] | None, fetch: bool) -> Any:
    cursor = conn.execute(query, params, binary=params is not None)
    return cursor.fetchall() if fetch else []


@final
class _Connections:
    """Connections to one server, made when a call finds none idle, at most ``size`` in
    use at once; one the server dropped is closed and forgotten.

    Not psycopg_pool: its reconnection backs off exponentially, so in a test with the server
    down for ~20 s, the first call after it was back still waited out its 10 s for the pool's
    next attempt and failed. Here every call that finds no connection makes one: a call
    during an outage fails at once with ``StoreUnavailableError``, and the first call after
    the server is back succeeds.
    """

    def __init__(self, conninfo: str, size: int, threaded: bool) -> None:
        self._conninfo = conninfo
        #: Trio: psycopg's async connections need asyncio, so calls run synchronous
        #: connections in worker threads.
        self._threaded = threaded
        self._idle: list[Any] = []
        self._slots = anyio.Semaphore(size)

    async def _connect(self) -> Any:
        import psycopg

        # connect_timeout: a server that does not answer fails the call rather than hang it.
        if self._threaded:
            return await anyio.to_thread.run_sync(
                lambda: psycopg.Connection.connect(
                    self._conninfo, autocommit=True, connect_timeout=10
                )
            )
        return await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=10
        )

    async def run(
        self, query: str, params: Sequence[Any] | None, fetch: bool
    ) -> list[tuple[Any, ...]]:
        """Run ``query`` on a connection (``params`` ``None``: a script of statements)."""
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                if self._threaded:
                    rows = await anyio.to_thread.run_sync(_run_sync, conn, query, params, fetch)
                else:
                    cursor = await conn.execute(query, params, binary=params is not None)
                    rows = await cursor.fetchall() if fetch else []
            except BaseException:
                if conn.broken or not isinstance(sys.exc_info()[1], Exception):
                    await self._close(conn)  # dropped, or cut mid-call by a cancellation
                else:
                    self._idle.append(conn)  # autocommit: a failed statement left no state
                raise
            self._idle.append(conn)
            return rows  # type: ignore[no-any-return]

    async def _close(self, conn: Any) -> None:
        with anyio.CancelScope(shield=True):
            if self._threaded:
                await anyio.to_thread.run_sync(conn.close)
            else:
                await conn.close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await self._close(conn)


def _commit_arrays(batch: Batch) -> tuple[list[Any], ...]:
    """The commit function's arguments for ``batch``: operation, space, key, value,
    condition and expected value of each operation, in order."""
    conditions = dict(batch.conditions or ())
    ops: list[int] = []
    spaces: list[int] = []
    keys: list[bytes] = []
    values: list[bytes | None] = []
    conds: list[int] = []
    expects: list[bytes | None] = []
    for index, (op, space, key, value) in enumerate(batch.ops):
        ops.append(_OPS[op])
        spaces.append(_SPACES[space])
        keys.append(key)
        values.append(value)
        condition = conditions.get(index)
        if condition is None:
            conds.append(_ANY)
            expects.append(None)
        elif isinstance(condition, Equals):
            conds.append(_EQUALS)
            expects.append(condition.value)
        else:
            conds.append(_IS_ABSENT)
            expects.append(None)
    return ops, spaces, keys, values, conds, expects


@final
class PostgresRecords:
    """``RecordStore`` on a PostgreSQL table (see the module docstring). Open with ``open``."""

    def __init__(self, connections: _Connections, table: str) -> None:
        self._connections = connections
        self._closed = False
        self.table = table
        self._get_sql = f"SELECT value FROM {table} WHERE space = %b AND key = %b"
        self._many_sql = f"SELECT key, value FROM {table} WHERE space = %b AND key = ANY(%b)"
        self._commit_sql = (
            f"SELECT {table}_commit(%b::smallint[], %b::smallint[], %b::bytea[], %b::bytea[], "
            "%b::smallint[], %b::bytea[])"
        )

    @classmethod
    async def open(
        cls, conninfo: str, *, table: str = "satchel_records", max_size: int = 8
    ) -> PostgresRecords:
        """Connect to ``conninfo`` (a ``postgresql://`` URL), creating ``table`` and its
        commit function if they are missing."""
        if not _NAME.fullmatch(table):
            raise InvalidArgumentError(f"table must be a lower-case SQL name, not {table!r}")
        threaded = sniffio.current_async_library() != "asyncio"
        records = cls(_Connections(conninfo, max_size, threaded), table)
        # Two nodes opening at once would race on CREATE OR REPLACE FUNCTION.
        lock = f"SELECT pg_advisory_xact_lock(hashtext('{table}'));"
        schema = _SCHEMA.format(t=table, conflict=_CONFLICT)
        try:
            await records._call(f"BEGIN; {lock} {schema} COMMIT;", None)
        except BaseException:
            await records.aclose()
            raise
        return records

    async def _call(self, query: str, params: Sequence[Any] | None) -> None:
        if self._closed:
            raise StoreClosedError("the PostgreSQL record store is closed")
        try:
            await self._connections.run(query, params, fetch=False)
        except Exception as error:
            raise _translate(error) from error

    async def _fetch(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        if self._closed:
            raise StoreClosedError("the PostgreSQL record store is closed")
        import psycopg

        for attempt in (1, 2):
            try:
                return await self._connections.run(query, params, fetch=True)
            except psycopg.OperationalError as error:
                # A connection the server dropped (a restart) fails its first use, and is
                # closed. A read is safe to ask again, once, on a fresh one.
                if attempt == 2:
                    raise _translate(error) from error
            except Exception as error:
                raise _translate(error) from error
        raise AssertionError("unreachable")

    def transaction(self) -> Transaction:
        return Transaction(self)

    async def get(self, key: bytes, space: Space = INDEX) -> bytes | None:
        rows = await self._fetch(self._get_sql, (_SPACES[space], key))
        return bytes(rows[0][0]) if rows else None

    async def get_many(self, keys: Sequence[bytes], space: Space = INDEX) -> list[bytes | None]:
        if not keys:
            return []
        found = dict(await self._fetch(self._many_sql, (_SPACES[space], list(keys))))
        return [None if (value := found.get(key)) is None else bytes(value) for key in keys]

    async def scan(
        self,
        lower: bytes,
        upper: bytes,
        *,
        space: Space = INDEX,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[tuple[bytes, bytes]]:
        if (limit is not None and limit <= 0) or lower >= upper:
            return []
        order = "DESC" if reverse else "ASC"
        query = f"SELECT key, value FROM {self.table} WHERE space = %b AND key >= %b"
        query += f" AND key < %b ORDER BY key {order}"
        params: tuple[Any, ...] = (_SPACES[space], lower, upper)
        if limit is not None:
            query += " LIMIT %b"
            params = (*params, limit)
        return [(bytes(k), bytes(v)) for k, v in await self._fetch(query, params)]

    async def write(self, batch: Batch, *, sync: bool | None = None) -> None:
        del sync  # every commit is durable (PostgreSQL's synchronous_commit)
        if len(batch):
            await self._call(self._commit_sql, _commit_arrays(batch))

    async def drop(self) -> None:
        """Remove the table and its function (for tests and ``satchel`` admin tools)."""
        await self._call(
            f"DROP TABLE IF EXISTS {self.table}; "
            f"DROP FUNCTION IF EXISTS {self.table}_commit(smallint[], smallint[], bytea[], "
            "bytea[], smallint[], bytea[])",
            None,
        )

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._connections.aclose()
