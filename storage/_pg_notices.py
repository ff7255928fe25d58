"""PostgreSQL's LISTEN/NOTIFY for the nodes of a cluster: short notices one node sends and
every node listening on the channel receives.

Notices are not durable (a node not listening when one is sent never sees it) and carry at
most ``MAX_NOTICE`` bytes. Listening holds one connection of its own: an ``AsyncConnection``
waiting on asyncio; on Trio a synchronous one polled from a worker thread, half a second at a
time, so that a cancelled listener ends soon.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, final

import anyio
import sniffio

from satchel.runtime._errors import InvalidArgumentError

from ._pg_connections import Connections
from ._postgres import _translate

#: PostgreSQL takes notices shorter than 8,000 bytes.
MAX_NOTICE = 7900
_CHANNEL = re.compile(r"[a-z_][a-z0-9_]{0,60}")
_POLL_S = 0.5


@final
class PostgresNotices:
    """Send notices on a channel, and listen to them (see the module docstring)."""

    def __init__(self, conninfo: str, channel: str) -> None:
        if not _CHANNEL.fullmatch(channel):
            raise InvalidArgumentError(f"a channel is a lower-case SQL name, not {channel!r}")
        self._conninfo = conninfo
        self.channel = channel
        self._threaded = sniffio.current_async_library() != "asyncio"
        self._senders = Connections(conninfo, 2, self._threaded)

    async def send(self, notices: Sequence[str]) -> None:
        """Send each of ``notices`` (text of at most ``MAX_NOTICE`` bytes), in one round trip."""
        if not notices:
            return
        if any(len(notice.encode()) > MAX_NOTICE for notice in notices):
            raise InvalidArgumentError(f"a notice is at most {MAX_NOTICE} bytes")
        try:
            await self._senders.run(
                "SELECT pg_notify(%s, n) FROM unnest(%s::text[]) AS n",
                (self.channel, list(notices)),
                fetch=True,
            )
        except Exception as error:
            raise _translate(error) from error

    async def listen(self, on_listening: Callable[[], None] | None = None) -> AsyncIterator[str]:
        """The notices sent on the channel from now on, as they come (forever: cancel to
        stop); ``on_listening`` is called once every notice sent after that will come.
        Raises ``StoreUnavailableError`` if the connection is lost."""
        import psycopg

        try:
            if self._threaded:
                conn: Any = await anyio.to_thread.run_sync(
                    lambda: psycopg.Connection.connect(self._conninfo, autocommit=True)
                )
            else:
                conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        except Exception as error:
            raise _translate(error) from error
        try:
            await self._execute(conn, f"LISTEN {self.channel}")
            if on_listening is not None:
                on_listening()
            while True:
                for notice in await self._wait(conn):
                    yield notice
        except Exception as error:
            raise _translate(error) from error
        finally:
            with anyio.CancelScope(shield=True):
                if self._threaded:
                    await anyio.to_thread.run_sync(conn.close)
                else:
                    await conn.close()

    async def _execute(self, conn: Any, statement: str) -> None:
        if self._threaded:
            await anyio.to_thread.run_sync(conn.execute, statement)
        else:
            await conn.execute(statement)

    async def _wait(self, conn: Any) -> list[str]:
        """The notices that came within half a second (at least one, or none on timeout)."""
        if self._threaded:

            def wait() -> list[str]:
                return [n.payload for n in conn.notifies(timeout=_POLL_S, stop_after=1)]

            found: list[str] = await anyio.to_thread.run_sync(wait)
            return found
        return [n.payload async for n in conn.notifies(timeout=_POLL_S, stop_after=1)]

    async def aclose(self) -> None:
        """Close the sending connections (a listener closes its own when it ends)."""
        await self._senders.aclose()
