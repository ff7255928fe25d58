"""The record port on PostgreSQL (psycopg 3, a few connections kept open).

One table holds the records: ``(space, key) PRIMARY KEY, value``, all ``bytea`` but the
space; bytea compares bytewise, so a scan is an index range scan in key order. A commit is
one round trip: a batch of unconditional puts is one multi-row upsert; any other, a PL/pgSQL
function that takes the batch's operations as arrays and applies them
in order inside the statement's own transaction, each conditional one with a statement that
checks and writes at once (``INSERT … ON CONFLICT DO NOTHING`` for an absent key, ``UPDATE …
WHERE value = …`` for an expected value), so two writers that raced for a record cannot both
win: the loser's statement finds the row changed and the function raises, undoing all of its
transaction.

A transaction that another rolled back (deadlock, serialization failure) is written again, a
few times; a failed condition never is. Connections and the driver mode: ``_pg_connections``.
"""

from __future__ import annotations

import re
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
from ._pg_connections import Connections, DroppedConnectionError
from ._ports import Transaction

#: The SQLSTATE the commit function raises for a failed condition.
_CONFLICT = "SC409"
#: A unique violation: in ``_one_statement`` only a put expecting its key absent inserts
#: without ``ON CONFLICT``, so there it is that condition failing.
_UNIQUE = "23505"
#: SQLSTATEs of a transaction rolled back because another got in the way (serialization
#: failure, deadlock): a write is asked again, a few times, before it is a conflict.
_CONTENDED = {"40001", "40P01"}
_ATTEMPTS = 5
#: Up to this many rows, a batch of puts is sent as rows of VALUES (one prepared statement
#: per count), more as arrays.
_VALUES_MAX = 16
#: Up to this many plain deletes go beside a batch's plain puts in one statement.
_DELETES_MAX = 8
#: Up to this many operations, a batch with conditions may be one statement (its text grows
#: with the batch: longer ones go to the function, whose arguments are arrays).
_STATEMENT_MAX = 32
#: Up to this many keys, a get_many names each (one prepared statement per count).
_IN_LIST_MAX = 8
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
                -- A row of our own holds the key until commit, so a writer inserting it
                -- meanwhile waits (a lock on nothing would let both win).
                INSERT INTO {t} VALUES (spaces[i], keys[i], ''::bytea)
                    ON CONFLICT (space, key) DO NOTHING;
                GET DIAGNOSTICS n = ROW_COUNT;
                IF n = 0 THEN
                    RAISE EXCEPTION USING ERRCODE = '{conflict}',
                        MESSAGE = 'condition of operation ' || i || ' failed';
                END IF;
                DELETE FROM {t} WHERE space = spaces[i] AND key = keys[i];
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
                RAISE EXCEPTION USING ERRCODE = '{conflict}',
                    MESSAGE = 'condition of operation ' || i || ' failed';
            END IF;
        END IF;
    END LOOP;
END
$$;
CREATE OR REPLACE FUNCTION {t}_check(counts bigint[], ops int[]) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. coalesce(array_length(counts, 1), 0) LOOP
        IF counts[i] = 0 THEN
            RAISE EXCEPTION USING ERRCODE = '{conflict}',
                MESSAGE = 'condition of operation ' || ops[i] || ' failed';
        END IF;
    END LOOP;
    RETURN true;
END
$$;
"""


def _translate(error: Exception) -> Exception:
    """The satchel error for a psycopg one (the error itself if it is not psycopg's)."""
    import psycopg

    if isinstance(error, DroppedConnectionError):
        return StoreUnavailableError(f"PostgreSQL dropped the connection: {error}")
    if not isinstance(error, psycopg.Error):
        return error
    state = error.sqlstate or ""
    if state == _CONFLICT:
        return WriteConflictError(
            "a record changed since it was read; nothing of the transaction was written"
        )
    if state in _CONTENDED:
        return WriteConflictError(
            "other writers kept holding the records; nothing of the transaction was written"
        )
    if state[:2] in ("22", "54"):  # data exception, program limit (an over-long key, say)
        return InvalidArgumentError(f"PostgreSQL refused the values: {error}")
    return StoreUnavailableError(f"PostgreSQL failed the call: {error}")


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


def _marks(count: int) -> str:
    return ", ".join(["%b"] * count)


def _plain_ops(
    batch: Batch,
) -> tuple[list[int], list[bytes], list[bytes], list[tuple[int, bytes]]] | None:
    """The spaces, keys and values of the puts, and the spaces and keys of the deletes, of a
    batch of unconditional puts and deletes only, each key once (the batch's later operation
    on a key wins); ``None`` for any other batch."""
    if batch.conditions:
        return None
    last: dict[tuple[int, bytes], bytes | None] = {}
    for op, space, key, value in batch.ops:
        if op == "put":
            last[_SPACES[space], key] = value
        elif op == "delete":
            last[_SPACES[space], key] = None
        else:
            return None
    puts = [(where, value) for where, value in last.items() if value is not None]
    deletes = [where for where, value in last.items() if value is None]
    spaces = [space for (space, _), _ in puts]
    keys = [key for (_, key), _ in puts]
    return spaces, keys, [value for _, value in puts], deletes


#: The shape of a one-statement batch: how many absent-key puts, expected-value puts and
#: deletes, plain puts and deletes, and old blob keys it has.
_Shape = tuple[int, int, int, int, int, int]


def _one_statement(
    table: str, batch: Batch, old: Sequence[bytes], texts: dict[_Shape, str]
) -> tuple[str, list[Any]] | None:
    """One SQL statement that applies ``batch`` and answers ``(True, the values the blob-space
    keys old held before it)``, raising on a failed condition; ``None`` for a batch it cannot
    be: one of more than ``_STATEMENT_MAX`` operations, with a range delete, a key twice (a
    statement changes a row once) or an absent key deleted (the function holds that key as it
    checks). Its text depends only on the batch's shape, and is kept in ``texts``.

    Its parts (a CTE each) share one snapshot and never touch the same row, so their order
    does not matter. The conditional operations of a kind are one part that checks and writes
    at once: the puts of absent keys one plain ``INSERT`` (a key that is there fails the
    statement with a unique violation, which is the conflict: ~40 µs less than ``ON CONFLICT
    DO NOTHING`` and a count for three keys), the puts and deletes of expected values one
    ``UPDATE``/``DELETE`` joined to their rows, returning a row each; ``{table}_check`` raises
    unless each did all of its operations. The plain puts are one upsert, the plain deletes
    one ``DELETE``."""
    if len(batch) > _STATEMENT_MAX:
        return None
    conditions = dict(batch.conditions or ())
    seen: set[tuple[int, bytes]] = set()
    absent: list[Any] = []
    updates: list[Any] = []
    removals: list[Any] = []
    puts: list[Any] = []
    deletes: list[Any] = []
    for index, (op, space, key, value) in enumerate(batch.ops):
        code = _SPACES[space]
        if op == "delete_range" or (code, key) in seen:
            return None
        seen.add((code, key))
        condition = conditions.get(index)
        if condition is None:
            if op == "put":
                puts += (code, key, value)
            else:
                deletes += (code, key)
        elif type(condition) is Equals:
            if op == "put":
                updates += (code, key, value, condition.value)
            else:
                removals += (code, key, condition.value)
        elif op == "put":
            absent += (code, key, value)
        else:
            return None
    shape = (
        len(absent) // 3,
        len(updates) // 4,
        len(removals) // 3,
        len(puts) // 3,
        len(deletes) // 2,
        len(old),
    )
    text = texts.get(shape)
    if text is None:
        text = texts[shape] = _statement_text(table, shape)
    return text, [*absent, *updates, *removals, *puts, *deletes, *old]


def _statement_text(table: str, shape: _Shape) -> str:
    """The text of ``_one_statement`` for batches of ``shape``, its parameters in order:
    absent-key puts, expected-value puts, expected-value deletes, plain puts, plain deletes,
    old blob keys."""
    absent, updates, removals, puts, deletes, old = shape
    parts: list[str] = []
    checks: list[str] = []
    if absent:
        rows = ", ".join(["(%b::smallint, %b, %b)"] * absent)
        parts.append(f"a AS (INSERT INTO {table} VALUES {rows})")
    if updates:
        rows = ", ".join(["(%b::smallint, %b::bytea, %b::bytea, %b::bytea)"] * updates)
        parts.append(
            f"u AS (UPDATE {table} t SET value = v.value FROM (VALUES {rows}) "
            "AS v(space, key, value, expect) "
            "WHERE t.space = v.space AND t.key = v.key AND t.value = v.expect RETURNING 1)"
        )
        checks.append(f"((SELECT count(*) FROM u) = {updates})::int::bigint")
    if removals:
        rows = ", ".join(["(%b::smallint, %b::bytea, %b::bytea)"] * removals)
        parts.append(
            f"e AS (DELETE FROM {table} t USING (VALUES {rows}) AS v(space, key, expect) "
            "WHERE t.space = v.space AND t.key = v.key AND t.value = v.expect RETURNING 1)"
        )
        checks.append(f"((SELECT count(*) FROM e) = {removals})::int::bigint")
    if puts:
        rows = ", ".join(["(%b::smallint, %b, %b)"] * puts)
        parts.append(
            f"p AS (INSERT INTO {table} VALUES {rows} "
            "ON CONFLICT (space, key) DO UPDATE SET value = excluded.value)"
        )
    if deletes:
        pairs = ", ".join(["(%b::smallint, %b)"] * deletes)
        parts.append(f"d AS (DELETE FROM {table} WHERE (space, key) IN ({pairs}))")
    replaced = "NULL::bytea[]"
    if old:
        parts.append(f"o AS (SELECT value FROM {table} WHERE space = 1 AND key IN ({_marks(old)}))")
        replaced = "(SELECT array_agg(value) FROM o)"
    checked = "true"
    if checks:
        # The check function raises on a zero: each part's "did all" as 1 or 0 (its number
        # in the error is the part's: 1 for the puts, 2 for the deletes).
        numbers = ", ".join(str(n) for n in range(1, len(checks) + 1))
        checked = f"{table}_check(ARRAY[{', '.join(checks)}], ARRAY[{numbers}])"
    return f"WITH {', '.join(parts)} SELECT {checked}, {replaced}"


@final
class PostgresRecords:
    """``RecordStore`` on a PostgreSQL table (see the module docstring). Open with ``open``."""

    def __init__(self, connections: Connections, table: str) -> None:
        self._connections = connections
        self._closed = False
        self.table = table
        #: One-statement commits' texts by the batch's shape (``_one_statement``).
        self._texts: dict[_Shape, str] = {}
        self._get_sql = f"SELECT value FROM {table} WHERE space = %b AND key = %b"
        self._many_sql = f"SELECT key, value FROM {table} WHERE space = %b AND key = ANY(%b)"
        self._in_sql = {
            n: f"SELECT key, value FROM {table} WHERE space = %b AND key IN ({_marks(n)})"
            for n in range(1, _IN_LIST_MAX + 1)
        }
        self._commit_sql = (
            f"SELECT {table}_commit(%b::smallint[], %b::smallint[], %b::bytea[], %b::bytea[], "
            "%b::smallint[], %b::bytea[])"
        )
        upsert = " ON CONFLICT (space, key) DO UPDATE SET value = excluded.value"
        self._puts_sql = (
            f"INSERT INTO {table} SELECT * FROM unnest(%b::smallint[], %b::bytea[], %b::bytea[])"
            + upsert
        )
        rows = ["(%b::smallint, %b, %b)"] * _VALUES_MAX
        self._values_sql = {
            n: f"INSERT INTO {table} VALUES {', '.join(rows[:n])}{upsert}"
            for n in range(1, _VALUES_MAX + 1)
        }
        pairs = ["(%b::smallint, %b)"] * _DELETES_MAX
        self._deletes_sql = {
            n: f"DELETE FROM {table} WHERE (space, key) IN ({', '.join(pairs[:n])})"
            for n in range(1, _DELETES_MAX + 1)
        }

    @classmethod
    async def open(
        cls, conninfo: str, *, table: str = "satchel_records", max_size: int = 8
    ) -> PostgresRecords:
        """Connect to ``conninfo`` (a ``postgresql://`` URL), creating ``table`` and its
        commit function if they are missing."""
        if not _NAME.fullmatch(table):
            raise InvalidArgumentError(f"table must be a lower-case SQL name, not {table!r}")
        threaded = sniffio.current_async_library() != "asyncio"
        records = cls(Connections(conninfo, max_size, threaded), table)
        # Two nodes opening at once would race on CREATE OR REPLACE FUNCTION.
        lock = f"SELECT pg_advisory_xact_lock(hashtext('{table}'));"
        schema = _SCHEMA.format(t=table, conflict=_CONFLICT)
        try:
            await records._call(f"BEGIN; {lock} {schema} COMMIT;", None)
        except BaseException:
            await records.aclose()
            raise
        return records

    async def _call(
        self,
        query: str,
        params: Sequence[Any] | None,
        *,
        fetch: bool = False,
        unique_conflicts: bool = False,
    ) -> list[tuple[Any, ...]]:
        """Run a write (its rows if ``fetch``): asked again when another transaction got in
        the way (it was rolled back whole), never when the connection dropped (it may have
        committed)."""
        if self._closed:
            raise StoreClosedError("the PostgreSQL record store is closed")
        import psycopg

        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return await self._connections.run(query, params, fetch=fetch)
            except psycopg.Error as error:
                if unique_conflicts and error.sqlstate == _UNIQUE:
                    raise WriteConflictError(
                        "a record expected absent is there; nothing of the transaction was written"
                    ) from error
                if error.sqlstate not in _CONTENDED or attempt == _ATTEMPTS:
                    raise _translate(error) from error
            except Exception as error:
                raise _translate(error) from error
            await anyio.sleep(0.001 * attempt)
        raise AssertionError("unreachable")

    async def _fetch(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run a read: asked again once on a fresh connection if the server had dropped
        the one it ran on (a restart)."""
        if self._closed:
            raise StoreClosedError("the PostgreSQL record store is closed")
        for attempt in (1, 2):
            try:
                return await self._connections.run(query, params, fetch=True)
            except DroppedConnectionError as error:
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
        if len(keys) <= _IN_LIST_MAX:
            # ``key IN (…)`` costs a point select; ``= ANY(array)`` ~15 µs more.
            query = self._in_sql[len(keys)]
            found = dict(await self._fetch(query, (_SPACES[space], *keys)))
        else:
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
        await self.write_reading(batch, ())

    async def write_reading(self, batch: Batch, old: Sequence[bytes]) -> list[bytes]:
        """``write``, answering the values the blob-space keys ``old`` held right before it
        (those that had one): read by the same statement when the batch can be one, else
        just before it (``SplitRecords`` deletes the objects they name)."""
        if not len(batch):
            return []
        plain = None if old else _plain_ops(batch)
        if plain is not None and (not plain[3] or self._plain_deletes(plain)):
            # One multi-row upsert: as atomic as the function (one statement), ~100 µs less;
            # its rows as VALUES up to _VALUES_MAX (~25 µs less than arrays to unnest).
            # Plain deletes beside it (a by-update index entry moved, a status changed) are a
            # DELETE in a WITH before it: one statement still, and no row to answer.
            spaces, keys, values, deletes = plain
            gone = [field for where in deletes for field in where]
            if not keys:
                await self._call(self._deletes_sql[len(deletes)], gone)
            elif len(keys) <= _VALUES_MAX:
                rows = [field for row in zip(spaces, keys, values, strict=True) for field in row]
                if deletes:
                    deleting = self._deletes_sql[len(deletes)]
                    query = f"WITH d AS ({deleting}) {self._values_sql[len(keys)]}"
                    await self._call(query, gone + rows)
                else:
                    await self._call(self._values_sql[len(keys)], rows)
            else:
                await self._call(self._puts_sql, (spaces, keys, values))
            return []
        one = _one_statement(self.table, batch, old, self._texts)
        if one is not None:
            # One statement: the function's call and loop cost ~100 µs more on 10+ operations.
            query, params = one
            answer = await self._call(query, params, fetch=True, unique_conflicts=True)
            return [bytes(value) for value in answer[0][1] or ()]
        found = await self.get_many(old, BLOBS) if old else []
        await self._call(self._commit_sql, _commit_arrays(batch))
        return [value for value in found if value is not None]

    @staticmethod
    def _plain_deletes(plain: tuple[list[int], list[bytes], list[bytes], Any]) -> bool:
        """Whether the deletes of a plain batch (``_plain_ops``) go in its one statement:
        as few as the statements kept for them, beside puts sent as VALUES rows."""
        deletes = len(plain[3])
        return deletes <= _DELETES_MAX and len(plain[1]) <= _VALUES_MAX

    async def drop(self) -> None:
        """Remove the table and its function (for tests and ``satchel`` admin tools)."""
        await self._call(
            f"DROP TABLE IF EXISTS {self.table}; "
            f"DROP FUNCTION IF EXISTS {self.table}_commit(smallint[], smallint[], bytea[], "
            "bytea[], smallint[], bytea[]); "
            f"DROP FUNCTION IF EXISTS {self.table}_check(bigint[], int[])",
            None,
        )

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._connections.aclose()
