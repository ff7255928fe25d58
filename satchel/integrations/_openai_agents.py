"""The OpenAI Agents SDK's session memory on satchel: ``SatchelSession``.

``SatchelSession`` implements the SDK's ``agents.memory.Session`` protocol
(``session_id``, ``session_settings``, ``get_items``, ``add_items``, ``pop_item``,
``clear_session``) on a satchel session's event log:

- one satchel session per SDK ``session_id``, keyed ``openai-agents:<session_id>`` and
  scoped to the app ``openai-agents``, created by the first write that finds none;
- each conversation item is one event whose data is the item itself, in the order added;
- ``add_items`` is one atomic ``append_events``; ``get_items(limit)`` reads the last
  ``limit`` events without the rest; ``pop_item`` is ``pop_event``; ``clear_session`` is
  ``clear_events`` (the satchel session, its journal, variables and artifacts stay).

The SDK is imported by this module only (``pip install 'satchel[openai-agents]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, final

import anyio
import sniffio
from agents.items import TResponseInputItem
from agents.memory.session_settings import (
    SessionSettings,
    coerce_session_settings,
    resolve_session_limit,
)
from anyio.from_thread import BlockingPortal, start_blocking_portal

from satchel import (
    Runtime,
    SessionExistsError,
    SessionNotFoundError,
    open_runtime,
    session_id_for,
)
from satchel._portal import ThreadPortal
from satchel._sync import background_runtime
from satchel.runtime import Held

from ._resume import resuming

if TYPE_CHECKING:
    from satchel.sync import SyncRuntime

__all__ = ["KEY_PREFIX", "SatchelSession"]

_T = TypeVar("_T")

#: Every SDK session's satchel key starts with this: keys are one namespace for the whole
#: store, shared with other frameworks' adapters and with the host's own sessions.
KEY_PREFIX = "openai-agents:"
#: The app a session is created under unless another is given (``rt.sessions.list(app=...)``).
DEFAULT_APP = "openai-agents"
_MAX_KEY_BYTES = 256


def _key_of(session_id: object) -> str:
    """The satchel key of an SDK session id; refused unless the key fits (1 to 256 UTF-8
    bytes without NUL)."""
    if not isinstance(session_id, str):
        raise TypeError(f"session_id must be a str, not {type(session_id).__name__}")
    key = KEY_PREFIX + session_id
    room = _MAX_KEY_BYTES - len(KEY_PREFIX.encode())
    size = len(session_id.encode("utf-8", "surrogatepass"))
    if not 1 <= size <= room or "\x00" in session_id:
        raise ValueError(f"session_id must be 1 to {room} UTF-8 bytes without NUL, not {size}")
    return key


async def _settle(make: Callable[[], Awaitable[_T]]) -> _T:
    """``await make()``, run to its outcome even if the caller is cancelled meanwhile; the
    cancellation is raised after it. A cancelled caller never leaves a write of unknown
    outcome behind (the SDK's own backends behave so)."""
    if sniffio.current_async_library() != "asyncio":
        with anyio.CancelScope(shield=True):
            return await make()
    return await _held(make())


async def _held(work: Awaitable[_T]) -> _T:
    """``await work`` run in the current asyncio task to its outcome; a cancellation of the
    task meanwhile is held off (``Held``) and raised after it, winning over the work's own
    error as a shield's would. Nothing is spent unless the work suspends."""
    held = Held(work)
    try:
        result = await held
    except BaseException:
        if held.cancelled is not None:
            raise held.cancelled from None
        raise
    if held.cancelled is not None:
        raise held.cancelled from None
    return result


class SatchelSession:
    """The conversation history of one OpenAI Agents SDK session, kept in satchel.

    Pass it where the SDK takes a session: ``Runner.run(agent, text, session=session)``.
    Build it on an open runtime, ``SatchelSession("thread-1", rt)``, or on its own with
    ``SatchelSession.from_path("thread-1", path)`` used as ``async with`` (or as ``with``
    from synchronous code, for ``Runner.run_sync``).

    Items are kept in the order added; ``get_items(limit)`` gives the latest ``limit`` of
    them, oldest first (``None``: ``session_settings.limit``, else all; ``0``: none; a
    negative limit: all, as ``SQLiteSession`` does). ``pop_item`` of an empty or unknown
    session gives ``None``. Each write is one atomic satchel write, durable as the runtime
    is (``durability=``) when the call returns, and settled before a cancellation is raised.

    The runtime belongs to the asyncio loop that opened it: ``loop`` (default: the loop
    running when the session is made). Called from another running loop (``Runner.run_sync``
    in a worker thread), each call is handed to that loop, which must be running then.
    """

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        session_id: str,
        runtime: Runtime | SyncRuntime,
        *,
        app: str | None = DEFAULT_APP,
        user: str | None = None,
        session_settings: SessionSettings | Mapping[str, Any] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.key = _key_of(session_id)
        self.session_id = session_id
        if session_settings is None:
            self.session_settings = SessionSettings()
        elif isinstance(session_settings, Mapping):
            self.session_settings = coerce_session_settings(dict(session_settings))
        else:
            self.session_settings = coerce_session_settings(session_settings)
        #: The way in to a runtime's loop in a thread of its own, which refuses work once it
        #: stopped (a coroutine handed to a stopped loop would never run).
        self._portal: ThreadPortal | None = None
        if not isinstance(runtime, Runtime):
            # satchel.sync's runtime in a thread of its own: its async runtime, on that loop.
            background = background_runtime(runtime)
            if background is None:
                raise TypeError(
                    "SatchelSession takes satchel.open_runtime's runtime, or satchel.sync's "
                    "opened with background=True (for synchronous code, or use "
                    "`with SatchelSession.from_path(...)`)"
                )
            runtime, self._portal = background
            loop = self._portal.loop
        self.runtime = runtime
        #: The satchel id of this session (a UUID derived from ``key``).
        self.satchel_id = session_id_for(self.key)
        self._app = app
        self._user = user
        if loop is None:
            with contextlib.suppress(RuntimeError):
                loop = asyncio.get_running_loop()
        self._loop = loop

    @classmethod
    def from_path(
        cls,
        session_id: str,
        path: str | os.PathLike[str] | None = None,
        *,
        store: Literal["rocksdb", "memory"] = "rocksdb",
        durability: Literal["process", "machine"] = "process",
        app: str | None = DEFAULT_APP,
        user: str | None = None,
        session_settings: SessionSettings | Mapping[str, Any] | None = None,
        **runtime_options: Any,
    ) -> _Opener:
        """A session on a runtime of its own, opened on the data folder ``path`` (``None``:
        ``$SATCHEL_DATA``, else ``./.satchel``) and closed with it.

        ``async with SatchelSession.from_path(...) as session:`` opens the runtime in the
        running loop; ``with ...`` opens it in a thread of its own, for synchronous code.
        ``runtime_options`` go to ``satchel.open_runtime``."""
        options: dict[str, Any] = {**runtime_options, "store": store, "durability": durability}
        return _Opener(
            lambda rt, loop: cls(
                session_id, rt, app=app, user=user, session_settings=session_settings, loop=loop
            ),
            path,
            options,
        )

    # The Session protocol.

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The history, oldest first; with a limit, its latest ``limit`` items."""
        wanted = resolve_session_limit(limit, self.session_settings)
        if wanted == 0:
            return []
        last = wanted if wanted is not None and wanted > 0 else None
        return await self._in_loop(lambda: self._get_items(last))

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` in order, all of them or (on an error) none."""
        if not items:
            return
        events = [_event_of(item) for item in items]
        await self._in_loop(lambda: self._append(events), settle=True)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the latest item; ``None`` if there is none."""
        return await self._in_loop(self._pop, settle=True)

    async def clear_session(self) -> None:
        """Remove every item; the satchel session itself stays."""
        await self._in_loop(self._clear, settle=True)

    # satchel.

    async def _get_items(self, last: int | None) -> list[TResponseInputItem]:
        try:
            events = await self.runtime.sessions.events(self.satchel_id, last=last)
        except SessionNotFoundError:
            return []
        return [cast(TResponseInputItem, event.data) for event in events]

    async def _append(self, events: list[dict[str, Any]]) -> None:
        sessions = self.runtime.sessions

        async def append() -> None:
            await sessions.append_events(self.satchel_id, events)

        try:
            await resuming(self.runtime, self.satchel_id, append)
        except SessionNotFoundError:
            # The first write: create the session (costs nothing on every later one).
            with contextlib.suppress(SessionExistsError):
                await sessions.create(
                    key=self.key, app=self._app, user=self._user, name=self.session_id
                )
            await resuming(self.runtime, self.satchel_id, append)

    async def _pop(self) -> TResponseInputItem | None:
        sessions = self.runtime.sessions
        try:
            event = await resuming(
                self.runtime, self.satchel_id, lambda: sessions.pop_event(self.satchel_id)
            )
        except SessionNotFoundError:
            return None
        return None if event is None else cast(TResponseInputItem, event.data)

    async def _clear(self) -> None:
        sessions = self.runtime.sessions
        with contextlib.suppress(SessionNotFoundError):
            await resuming(
                self.runtime, self.satchel_id, lambda: sessions.clear_events(self.satchel_id)
            )

    async def _in_loop(
        self, make: Callable[[], Coroutine[Any, Any, _T]], *, settle: bool = False
    ) -> _T:
        """``await make()`` in the runtime's loop: here if this is it, else handed to it; with
        ``settle``, run to its outcome whatever becomes of the caller (see ``_settle``)."""
        owner, portal = self._loop, self._portal
        here = asyncio._get_running_loop()
        if here is not None and (
            here is owner or (portal is None and (owner is None or not owner.is_running()))
        ):
            # The common case, kept direct: no task, no hop. Nothing to hand over to when the
            # owner is not running: a closed runtime or a foreign caller is refused by satchel
            # itself. (A portal refuses work itself once its runtime closes.)
            return await (_held(make()) if settle else make())
        if owner is None or sniffio.current_async_library() != "asyncio":
            return await (_settle(make) if settle else make())
        work = _settle(make) if settle else make()
        if portal is not None:
            future = portal.start(work)
        else:
            future = asyncio.run_coroutine_threadsafe(work, owner)
        return await _settle(lambda: asyncio.wrap_future(future))

    def __repr__(self) -> str:
        return f"SatchelSession(session_id={self.session_id!r}, key={self.key!r})"


def _event_of(item: TResponseInputItem) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise TypeError(f"a session item is a dict, not {type(item).__name__}")
    return cast(dict[str, Any], item)


@final
class _Opener:
    """What ``SatchelSession.from_path`` returns: an async or a sync context manager giving
    a session on a runtime it opens and closes."""

    def __init__(
        self,
        make: Callable[[Runtime, asyncio.AbstractEventLoop | None], SatchelSession],
        path: str | os.PathLike[str] | None,
        options: dict[str, Any],
    ) -> None:
        self._make = make
        self._path = path
        self._options = options
        self._stack: contextlib.AsyncExitStack | contextlib.ExitStack | None = None

    async def __aenter__(self) -> SatchelSession:
        async with contextlib.AsyncExitStack() as stack:
            rt = await stack.enter_async_context(open_runtime(self._path, **self._options))
            session = self._make(rt, None)
            self._stack = stack.pop_all()
        return session

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        assert isinstance(stack, contextlib.AsyncExitStack)
        return await stack.__aexit__(kind, error, trace)

    def __enter__(self) -> SatchelSession:
        with contextlib.ExitStack() as stack:
            portal: BlockingPortal = stack.enter_context(start_blocking_portal("asyncio"))
            rt = stack.enter_context(
                portal.wrap_async_context_manager(open_runtime(self._path, **self._options))
            )
            loop = portal.call(asyncio.get_running_loop)
            session = self._make(rt, loop)
            session._portal = ThreadPortal(portal, loop)
            stack.callback(session._portal.close)
            self._stack = stack.pop_all()
        return session

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        assert isinstance(stack, contextlib.ExitStack)
        return stack.__exit__(kind, error, trace)
