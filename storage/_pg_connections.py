"""A few connections to one PostgreSQL server, kept open between calls.

Not psycopg_pool: its reconnection backs off exponentially, so in a test with the server down
for ~20 s, the first call after it was back still waited out its 10 s for the pool's next
attempt and failed. Here a call that finds no idle connection makes one: during an outage a
call fails at once, and the first call after the server is back succeeds. A connection found
dropped is closed with every idle one made before it (a restart drops them all).

Driver mode, by measurement on this machine (point select, median): psycopg's
``AsyncConnection`` on asyncio 146 µs; a synchronous connection called inline 134 µs, and from
a worker thread 268 µs. So on asyncio calls use async connections; on Trio, which psycopg's
async connections do not support, synchronous ones in worker threads. A Trio call cancelled
while its thread waits (on a lock, say) sends PostgreSQL a cancel request and returns at
once; the connection is closed when the thread is done with it (at once if the thread had
not started: cancelled while it waited for the thread limiter). A connection is given back
only outside a transaction block.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, final

import anyio

#: libpq's PQTRANS_IDLE: connected, outside a transaction block.
_IDLE = 0


@final
class DroppedConnectionError(Exception):
    """The connection was found dropped by the server (``__cause__`` is psycopg's error):
    the statement may or may not have run, and a read is safe to ask again."""


def _run_sync(conn: Any, query: str, params: Sequence[Any] | None, fetch: bool) -> Any:
    cursor = conn.execute(query, params, binary=params is not None)
    return cursor.fetchall() if fetch else []


@final
class _Handoff:
    """Who closes a connection whose call was cancelled on Trio: the thread, when it ends
    after the cancellation; the canceller, when the thread had ended already or had not
    started (cancelled at the thread limiter: the thread, if it starts later, leaves the
    connection alone)."""

    __slots__ = ("abandoned", "done", "lock", "started")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = False
        self.done = False
        self.abandoned = False

    def start(self) -> bool:
        """For the thread: whether it may use the connection (not abandoned yet)."""
        with self.lock:
            self.started = not self.abandoned
            return self.started

    def finish(self) -> bool:
        """For the thread, done with the connection: whether it must close it."""
        with self.lock:
            self.done = True
            return self.abandoned

    def abandon(self) -> bool:
        """For the canceller: whether no statement is in flight (it closes the connection
        itself, else the thread will)."""
        with self.lock:
            self.abandoned = True
            return self.done or not self.started


@final
class Connections:
    """At most ``size`` connections in use at once (see the module docstring)."""

    def __init__(self, conninfo: str, size: int, threaded: bool) -> None:
        self._conninfo = conninfo
        self._threaded = threaded
        self._idle: list[Any] = []
        self._slots = anyio.Semaphore(size)
        self._closed = False

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
        """Run ``query`` (``params`` ``None``: a script of statements); psycopg's errors as
        they are, but ``DroppedConnectionError`` for a connection the server dropped."""
        try:
            # A free slot is taken without the event-loop round of ``acquire`` (~10 µs a
            # call); the call's own I/O is where it suspends.
            self._slots.acquire_nowait()
        except anyio.WouldBlock:
            await self._slots.acquire()
        try:
            return await self._run_on_one(query, params, fetch)
        finally:
            self._slots.release()

    async def _run_on_one(
        self, query: str, params: Sequence[Any] | None, fetch: bool
    ) -> list[tuple[Any, ...]]:
        conn = self._idle.pop() if self._idle else await self._connect()
        try:
            if self._threaded:
                rows = await self._in_thread(conn, query, params, fetch)
            else:
                cursor = await conn.execute(query, params, binary=params is not None)
                rows = await cursor.fetchall() if fetch else []
        except Exception as error:
            if not conn.broken:
                # Autocommit: a failed statement leaves no state, but a failed script
                # with its own BEGIN leaves an aborted transaction open.
                if conn.pgconn.transaction_status == _IDLE:
                    await self._give_back(conn)
                else:
                    await self._close(conn)
                raise
            await self._close(conn)
            await self._close_idle()  # made before it: dropped by the same restart
            raise DroppedConnectionError(str(error)) from error
        except BaseException:
            if not self._threaded:
                await self._close(conn)  # cut mid-call: its state is unknown
            raise
        if self._closed:
            await self._close(conn)
        else:
            self._idle.append(conn)
        return rows  # type: ignore[no-any-return]

    async def _in_thread(
        self, conn: Any, query: str, params: Sequence[Any] | None, fetch: bool
    ) -> Any:
        handoff = _Handoff()

        def call() -> Any:
            if not handoff.start():
                return None  # abandoned before it started: the canceller closed it
            try:
                return _run_sync(conn, query, params, fetch)
            finally:
                if handoff.finish():
                    conn.close()

        try:
            return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            if handoff.abandon():
                conn.close()  # no statement in flight: nothing to cancel
            else:
                # Ask the server to stop the statement, so the thread ends soon.
                threading.Thread(target=_cancel_quietly, args=(conn,), daemon=True).start()
            raise

    async def _give_back(self, conn: Any) -> None:
        if self._closed:
            await self._close(conn)
        else:
            self._idle.append(conn)

    async def _close(self, conn: Any) -> None:
        with anyio.CancelScope(shield=True):
            if self._threaded:
                await anyio.to_thread.run_sync(conn.close)
            else:
                await conn.close()

    async def _close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await self._close(conn)

    async def aclose(self) -> None:
        """Close the idle connections now, and those in use when their calls end."""
        self._closed = True
        await self._close_idle()


def _cancel_quietly(conn: Any) -> None:
    try:
        conn.cancel_safe(timeout=5.0)
    except Exception:  # the statement ends anyway; the connection is closed after it
        return
