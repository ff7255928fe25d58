"""Google ADK's ``BaseSessionService`` on satchel: ``SatchelSessionService``.

Layout (every satchel session here is created with a key of its own, see ``_adk_common.key``):

- ADK session (app, user, id) -> satchel session ``adk/s/<app>/<user>/<id>``, created with
  ``app=app, user=user``, tag ``adk:session`` and ``metadata={"adk": {"id", "created"}}``.
  Its variables are the session-scoped state, under ADK's own keys; its event log holds the
  events (``Event.model_dump(mode="json", exclude_none=True)``, at the event's own time); each
  ``append_event`` writes the event and the session-scoped delta in one atomic write, refused
  if the log moved since the caller's copy was read (``expect_position``).
- ``app:`` state of an app -> satchel session ``adk/app/<app>`` (tag ``adk:app-state``), and
  ``user:`` state of (app, user) -> ``adk/user/<app>/<user>`` (tag ``adk:user-state``), both
  under the keys without their prefix.

An ADK session read here carries ``_storage_update_marker``: the last position of its
satchel event log when it was read, which the next append expects.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.platform import time as platform_time
from google.adk.platform import uuid as platform_uuid
from google.adk.sessions import _session_util
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session
from google.adk.sessions.state import State

import satchel

from . import _adk_common as common
from ._resume import resuming, writable

if TYPE_CHECKING:
    from satchel.storage import Backend

#: DatabaseSessionService's message (google-adk 2.13), so callers matching on it keep working.
STALE_SESSION_MESSAGE: Final = (
    "The session has been modified in storage since it was loaded. "
    "Please reload the session before appending more events."
)
#: Sessions listed per page of ``rt.sessions.list``.
_PAGE: Final = 500
#: How far before ``after_timestamp`` the satchel read starts: event times are kept to the
#: microsecond, so the read takes a little more and the exact filter runs on the events.
_AFTER_MARGIN_S: Final = 0.001
#: The latest time satchel keeps for an event (the end of year 9999), in epoch seconds; an
#: event's time is clamped to 1970..9999 in the log (its own ``timestamp`` stays as it is).
_LAST_TIME: Final = 253_402_300_799.0


def _session_key(app_name: str, user_id: str, session_id: str) -> str:
    return common.key("s", app_name, user_id, session_id)


def _app_key(app_name: str) -> str:
    return common.key("app", app_name)


def _user_key(app_name: str, user_id: str) -> str:
    return common.key("user", app_name, user_id)


def _prefixed(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {prefix + name: value for name, value in state.items()}


def _marker(session: Session) -> int | None:
    """The log position a session was read at, if this service read it."""
    # Read from pydantic's store of private attributes: through ``__getattr__`` it costs
    # ~2 µs, a tenth of the adapter's own work on an append.
    private = session.__pydantic_private__
    marker = private.get("_storage_update_marker") if private else None
    if marker is None or not marker.isdigit():
        return None  # built by hand, or by another service
    return int(marker)


def _set_marker(session: Session, position: int) -> None:
    """Note the log position ``session`` is now at (read by ``_marker``)."""
    private = session.__pydantic_private__
    if private is None:
        session._storage_update_marker = str(position)
    else:
        # Straight into pydantic's store of private attributes, as ``_marker`` reads it:
        # the same value as through ``__setattr__``, without its ~0.5 µs.
        private["_storage_update_marker"] = str(position)


#: The types of state value ADK's ``make_json_safe_state`` leaves as they are.
_PLAIN: Final = frozenset({str, int, float, bool, type(None)})


def _json_safe_delta(delta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``_session_util.extract_json_safe_state_delta(delta)``; when every value is a plain
    scalar (nothing for pydantic to convert), the split alone (a third of the time)."""
    for value in delta.values():
        if type(value) not in _PLAIN:
            return _session_util.extract_json_safe_state_delta(delta)
    return _session_util.extract_state_delta(delta)


class SatchelSessionService(BaseSessionService):
    """ADK's ``BaseSessionService`` on a satchel runtime.

    ``SatchelSessionService(rt)`` uses an open runtime (its owner keeps it open);
    ``async with SatchelSessionService.from_path(path) as service:`` opens one of its own.
    Call it on the event loop that opened the runtime (ADK's, asyncio).
    """

    def __init__(self, runtime: satchel.Runtime) -> None:
        self._rt = common.async_runtime(runtime, "SatchelSessionService")

    @classmethod
    def from_path(
        cls, path: str | None = None, *, store: Backend = "rocksdb", **options: Any
    ) -> contextlib.AbstractAsyncContextManager[SatchelSessionService]:
        """A service on a runtime of its own: ``satchel.open_runtime(path, store=store,
        **options)``, closed when the ``async with`` block ends."""
        return common.standalone(cls, path, store, options)

    @property
    def runtime(self) -> satchel.Runtime:
        """The satchel runtime the service keeps its sessions in."""
        return self._rt

    # ------------------------------------------------------------------ the API
    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """A new session; ``AlreadyExistsError`` if (app, user, id) has one already."""
        session_id = common.strip_id(session_id) or platform_uuid.new_uuid()
        key = _session_key(app_name, user_id, session_id)
        deltas = _session_util.extract_json_safe_state_delta(state or {})
        common.refuse_unstorable(deltas)  # a refused state must leave no session behind
        created = platform_time.get_time()
        try:
            await self._rt.sessions.create(
                key=key,
                app=app_name,
                user=user_id,
                name=session_id if len(session_id.encode()) <= 255 else None,
                tags=[common.TAG_SESSION],
                metadata={"adk": {"id": session_id, "created": created}},
                state=deltas["session"] or None,  # the session's own state, written with it
            )
        except satchel.SessionExistsError:
            raise AlreadyExistsError(f"Session with id {session_id} already exists.") from None
        await self._write_scopes(app_name, user_id, deltas)
        merged = await self._shared_state(app_name, user_id)
        merged.update(deltas["session"])
        return self._session(app_name, user_id, session_id, merged, [], created, 0)

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """The session with its merged state and (per ``config``) events; ``None`` if unknown."""
        stripped = common.strip_id(session_id)
        if stripped is None:
            return None
        key = _session_key(app_name, user_id, stripped)
        try:
            # The position first: a write between these reads makes the copy look older than
            # it is (its next append is refused), never newer.
            position = await self._rt.sessions.last_event_position(key)
            own = await self._rt.sessions.state(key)
            events = await self._events(key, config)
            if config is None and events:
                updated = events[-1].timestamp
            else:
                updated = await self._last_update_time(key)
        except satchel.SessionNotFoundError:
            return None
        merged = await self._shared_state(app_name, user_id)
        merged.update(own)
        return self._session(app_name, user_id, stripped, merged, events, updated, position)

    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        """The sessions of an app (of one user, if given) with merged state and no events,
        least recently updated first."""
        infos: list[satchel.SessionInfo] = []
        while True:
            page = await self._rt.sessions.list(
                app=app_name,
                user=user_id,
                tags=[common.TAG_SESSION],
                offset=len(infos),
                limit=_PAGE,
            )
            infos.extend(page)
            if len(page) < _PAGE:
                break
        app_state = _prefixed(await self._scope_state(_app_key(app_name)), State.APP_PREFIX)
        user_states: dict[str, dict[str, Any]] = {}
        sessions: list[Session] = []
        for info in infos:
            uid = info.user or ""
            if uid not in user_states:
                user_states[uid] = _prefixed(
                    await self._scope_state(_user_key(app_name, uid)), State.USER_PREFIX
                )
            adk = info.metadata.get("adk") or {}
            try:
                position = await self._rt.sessions.last_event_position(info.id)
                own = await self._rt.sessions.state(info.id)
                updated = await self._last_update_time(info.id, info)
            except satchel.SessionNotFoundError:  # deleted meanwhile
                continue
            state = {**app_state, **user_states[uid], **own}
            sid = str(adk.get("id", info.name))
            sessions.append(self._session(app_name, uid, sid, state, [], updated, position))
        # As InMemorySessionService: least recently updated first, ties by user, then id.
        sessions.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=sessions)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Delete the session, its state and events (not its artifacts); no-op if unknown."""
        stripped = common.strip_id(session_id)
        if stripped is None:
            return
        with contextlib.suppress(satchel.SessionNotFoundError):
            await self._rt.sessions.delete(_session_key(app_name, user_id, stripped))

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        """The ``user:`` state of (app, user), without the prefix."""
        return await self._scope_state(_user_key(app_name, user_id))

    async def append_event(self, session: Session, event: Event) -> Event:
        """Store ``event`` and apply its state delta; ``SessionNotFoundError`` if the session
        is gone, ``StaleSessionError`` if it changed since ``session`` was read."""
        if event.partial:
            return event
        actions = event.actions
        delta = actions.state_delta if actions else {}
        if delta and any(name.startswith(State.TEMP_PREFIX) for name in delta):
            # As every ADK service: temp: state reaches the caller's session object (later
            # agents of this invocation read it), never storage. (Without temp: keys both
            # calls change nothing: skipped, a twelfth of the adapter's own time.)
            self._apply_temp_state(session, event)
            event = self._trim_temp_delta_state(event)
            delta = event.actions.state_delta
        if session.events and session.events[-1].id == event.id and session.events[-1] == event:
            return event  # the last event again: stored once, as InMemorySessionService does
        key = _session_key(session.app_name, session.user_id, session.id)
        # ``model_dump``'s own work, without its wrapper (the event's own class's serializer,
        # as ``model_dump`` uses: a subclass of Event has fields of its own).
        data = event.__pydantic_serializer__.to_python(event, mode="json", exclude_none=True)
        deltas = _json_safe_delta(delta)
        # Before the shared scopes are written: an event refused later must change nothing.
        common.refuse_unstorable(deltas, data)
        expected = _marker(session)
        if expected is None or deltas["app"] or deltas["user"]:
            # Checked before the shared scopes are written, so a stale copy writes nothing.
            expected = await self._checked_position(session, key, expected)
        if deltas["app"] or deltas["user"]:
            # As is its status: an ended session's event must not write them either.
            try:
                await writable(self._rt, key)
            except satchel.SessionNotFoundError:
                raise SessionNotFoundError(f"Session {session.id} not found.") from None
        # Not one atomic write with the event (satchel's writes are atomic per session):
        # app: and user: state go first. A crash between leaves them written without the
        # event; a retry of the event writes the same values again and appends it.
        await self._write_scopes(session.app_name, session.user_id, deltas)
        try:
            position = await resuming(
                self._rt,
                key,
                lambda: self._rt.sessions.append_event(
                    key,
                    data,
                    state=deltas["session"] or None,
                    expect_position=expected,
                    at=min(max(event.timestamp, 0.0), _LAST_TIME),
                ),
            )
        except satchel.SessionNotFoundError:
            raise SessionNotFoundError(f"Session {session.id} not found.") from None
        except satchel.InvalidStateTransitionError:
            if await self._is_last_event(key, data):
                return event  # a re-delivery whose first write landed
            raise StaleSessionError(STALE_SESSION_MESSAGE) from None
        session.last_update_time = event.timestamp
        _set_marker(session, position)
        return self._commit_event_to_session(session, event)

    # ---------------------------------------------------------------- internals
    @staticmethod
    def _session(
        app_name: str,
        user_id: str,
        session_id: str,
        state: dict[str, Any],
        events: list[Event],
        updated: float,
        position: int,
    ) -> Session:
        session = Session(
            id=session_id,
            app_name=app_name,
            user_id=user_id,
            state=state,
            events=events,
            last_update_time=updated,
        )
        session._storage_update_marker = str(position)
        return session

    async def _checked_position(self, session: Session, key: str, marker: int | None) -> int:
        """The log position the append expects, after ADK's stale check: a session read here
        must be at the current position; one without a marker (built by hand, or read by
        another service) is stale, as in DatabaseSessionService, only if storage was updated
        after it and its last event is not storage's last event."""
        try:
            position = await self._rt.sessions.last_event_position(key)
            if marker is not None:
                if marker != position:
                    raise StaleSessionError(STALE_SESSION_MESSAGE)
                return position
            last = await self._rt.sessions.events(key, last=1)
            updated = await self._last_update_time(key)
        except satchel.SessionNotFoundError:
            raise SessionNotFoundError(f"Session {session.id} not found.") from None
        if updated > session.last_update_time:
            stored_last = last[0].data.get("id") if last else None
            session_last = session.events[-1].id if session.events else None
            if stored_last != session_last:
                raise StaleSessionError(STALE_SESSION_MESSAGE)
        return position

    async def _is_last_event(self, key: str, data: Mapping[str, Any]) -> bool:
        with contextlib.suppress(satchel.SessionNotFoundError):
            last = await self._rt.sessions.events(key, last=1)
            return bool(last) and last[0].data == data
        return False

    async def _events(self, key: str, config: GetSessionConfig | None) -> list[Event]:
        """The events ``config`` asks for, oldest first, read from the end of the log."""
        last = config.num_recent_events if config else None
        after = config.after_timestamp if config else None
        if last == 0:
            return []
        since = None if after is None else after - _AFTER_MARGIN_S
        records = await self._rt.sessions.events(key, last=last, after=since)
        events = [Event.model_validate(record.data) for record in records]
        if after is not None:  # ADK's filter: the event's own time, inclusive
            events = [event for event in events if event.timestamp >= after]
        return events

    async def _last_update_time(self, key: str, info: satchel.SessionInfo | None = None) -> float:
        """The last event's own time, else the session's creation time (ADK's rule)."""
        last = await self._rt.sessions.events(key, last=1)
        if last:
            return float(last[0].data.get("timestamp", 0.0))
        if info is None:
            info = await self._rt.sessions.get(key)
        return float((info.metadata.get("adk") or {}).get("created", 0.0))

    async def _shared_state(self, app_name: str, user_id: str) -> dict[str, Any]:
        """The app: and user: state of (app, user), with their prefixes."""
        state = _prefixed(await self._scope_state(_app_key(app_name)), State.APP_PREFIX)
        user = await self._scope_state(_user_key(app_name, user_id))
        state.update(_prefixed(user, State.USER_PREFIX))
        return state

    async def _scope_state(self, key: str) -> dict[str, Any]:
        try:
            return await self._rt.sessions.state(key)
        except satchel.SessionNotFoundError:
            return {}

    async def _write_scopes(
        self, app_name: str, user_id: str, deltas: Mapping[str, Mapping[str, Any]]
    ) -> None:
        """Apply the app: delta, then the user: delta, each in one write."""
        if deltas["app"]:
            await self._write_scope(
                _app_key(app_name), deltas["app"], app_name, None, common.TAG_APP
            )
        if deltas["user"]:
            await self._write_scope(
                _user_key(app_name, user_id), deltas["user"], app_name, user_id, common.TAG_USER
            )

    async def _write_scope(
        self, key: str, delta: Mapping[str, Any], app: str, user: str | None, tag: str
    ) -> None:
        async def write() -> None:
            await self._rt.sessions.append_events(key, [], state=delta)

        try:
            await resuming(self._rt, key, write)
            return
        except satchel.SessionNotFoundError:
            pass  # the scope's first write
        with contextlib.suppress(satchel.SessionExistsError):  # another writer made it
            await self._rt.sessions.create(key=key, app=app, user=user, tags=[tag])
        await resuming(self._rt, key, write)
