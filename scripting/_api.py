"""The ``Session``, ``Artifact`` and ``State`` functions scripts call, per the Lua API spec.

Each function is an async method taking the raw Lua arguments; ``ScriptApi.dispatch`` is
what the sandbox's driver awaits for every request. A host script acts as the host (every
session); a session script acts as its session: that session and the sessions it created
are its own, other sessions' artifacts need a grant, and its ``State`` is its variables.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from satchel.actors._wire import to_wire
from satchel.runtime._errors import AccessDeniedError, InvalidArgumentError, SatchelError

from ._convert import from_lua, lua_type_name, mapping_from_lua, text

if TYPE_CHECKING:
    from satchel.actors.artifacts._artifact_manager import ArtifactManager
    from satchel.actors.sessions._manager import SessionManager
    from satchel.actors.sessions._session_scripts import RunScript, ScriptSlot

    from ._pool import WorkerPool


class HostState(Protocol):
    """The runtime-wide ``State`` of host scripts."""

    async def get(self, key: str) -> Any: ...
    async def set(self, key: str, value: Any) -> None: ...
    async def delete(self, key: str) -> None: ...
    async def keys(self) -> list[str]: ...


Handler = Callable[..., Awaitable[Any]]
log = logging.getLogger("satchel.scripting")
_REPLAY_OPTIONS = {"mode", "at", "modifications", "compare_results", "stop_on_error"}
_CREATE_OPTIONS = {
    "name",
    "description",
    "tags",
    "metadata",
    "custom_metadata",  # rs-llmspell's name for metadata
    "parent_session_id",
    "config",
}


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


#: The spec's functions by global table, in their camelCase names.
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "Session": (
        "create", "get", "list", "suspend", "resume", "complete", "fail", "archive", "delete",
        "save", "load", "getCurrent", "setCurrent", "setState", "getState", "deleteState",
        "listState", "fork", "timeline", "canReplay", "replay", "getReplayMetadata",
        "listReplayable",
    ),
    "Artifact": (
        "store", "get", "list", "versions", "delete", "storeFile", "query", "share", "revoke",
        "auditLog",
    ),
    "State": ("set", "get", "delete", "list"),
}  # fmt: skip


def api_names() -> list[tuple[str, str, str]]:
    """``(global, name, op)`` for every function in both naming styles."""
    names = []
    for global_name, functions in FUNCTIONS.items():
        for function in functions:
            op = f"{global_name}.{function}"
            names.append((global_name, function, op))
            if _snake(function) != function:
                names.append((global_name, _snake(function), op))
    return names


def _returns_nothing() -> frozenset[str]:
    """The ops the spec lists as returning nothing: their handlers are annotated ``None``."""
    return frozenset(
        op
        for _, _, op in api_names()
        if getattr(ScriptApi, op.replace(".", "_").lower()).__annotations__["return"] == "None"
    )


def _optional_text(value: Any, what: str) -> str | None:
    return None if value is None else text(value, what)


def _int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if type(value) is not int:
        raise InvalidArgumentError(f"{what} must be an integer, not {lua_type_name(value)}")
    return value


class ScriptApi:
    """What one script may do, as the host or as one session."""

    def __init__(
        self,
        sessions: SessionManager,
        artifacts: ArtifactManager,
        state: HostState,
        *,
        session_id: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._session_id = session_id
        self._artifacts = artifacts if session_id is None else artifacts.as_session(session_id)
        self._state = state
        #: The session ``Session.getCurrent()`` returns.
        self.current = session_id
        self._own: set[str] = set() if session_id is None else {session_id}
        self._handlers: dict[str, Handler] = {
            op: getattr(self, op.replace(".", "_").lower())
            for op in {op for _, _, op in api_names()}
        }

    async def dispatch(self, op: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Run request ``op`` with the script's arguments; what the Lua call returns. Every
        failure is a satchel error: a script must not be able to crash the actor it runs in."""
        handler = self._handlers.get(op)
        if handler is None:
            raise InvalidArgumentError(f"there is no API function {op!r}")
        least, most = _ARGUMENTS[op]
        if not least <= len(args) <= most:
            wanted = f"at most {most}" if len(args) > most else f"at least {least}"
            raise InvalidArgumentError(
                f"{op} takes {wanted} argument{'' if max(least, most) == 1 else 's'} "
                f"({len(args)} given)"
            )
        try:
            result = await handler(*args)
        except SatchelError:
            raise
        except Exception as error:  # a handler that let a bad argument through
            # Not an error of the host's (a script can cause it at will): debug level.
            log.debug("%s failed on a script's arguments", op, exc_info=True)
            raise InvalidArgumentError(f"{op}: bad arguments ({type(error).__name__})") from None
        return () if op in _RETURNS_NOTHING else (result,)

    # -- whose sessions --------------------------------------------------------------------

    async def _session(self, value: Any, *, default_current: bool = True) -> str:
        """A session id argument (nil or "" = the current session), checked for access."""
        if value in (None, b"") and default_current:
            if self.current is None:
                raise InvalidArgumentError("no current session; pass a session id")
            return self.current
        session_id = _uuid(value, "a session id")
        if self._session_id is not None and session_id not in self._own:
            if not await self._sessions.made_by_a_script_of(session_id, self._session_id):
                raise AccessDeniedError(
                    f"session {self._session_id} may not reach session {session_id} from a script"
                )
            self._own.add(session_id)  # made by an earlier run of its scripts
        return session_id

    # -- Session ---------------------------------------------------------------------------

    async def session_create(self, opts: Any = None) -> str:
        given = mapping_from_lua(opts, "Session.create options") or {}
        unknown = set(given) - _CREATE_OPTIONS
        if unknown:
            raise InvalidArgumentError(
                f"unknown Session.create options: {', '.join(sorted(unknown))}"
            )
        parent = given.get("parent_session_id")
        if self._session_id is not None:
            parent = await self._session(parent.encode() if parent else None)
        elif parent is not None:
            parent = _canonical_uuid(parent)
        created = await self._sessions.create(
            name=given.get("name", ""),
            description=given.get("description", ""),
            tags=given.get("tags") or [],
            metadata=_metadata_option(given),
            parent_id=parent,
            config=given.get("config") or None,
            # A session script's sessions count against its session's budget.
            budget_of=self._session_id,
        )
        self._own.add(created)
        return created

    async def session_get(self, session_id: Any) -> Any:
        return to_wire(
            await self._sessions.get(await self._session(session_id, default_current=False))
        )

    async def session_list(self, query: Any = None) -> Any:
        filters = mapping_from_lua(query, "Session.list query") or {}
        if self._session_id is None:
            found = await self._sessions.list(**filters)
        else:  # filtered to its own before search, order, page and counts
            own = {self._session_id, *await self._sessions.made_by_scripts_of(self._session_id)}
            found = await self._sessions.list_among(own, **filters)
        return [to_wire(info) for info in found]

    async def session_suspend(self, session_id: Any) -> None:
        await self._sessions.suspend(await self._session(session_id))

    async def session_resume(self, session_id: Any) -> None:
        await self._sessions.resume(await self._session(session_id))

    async def session_complete(self, session_id: Any) -> None:
        await self._sessions.complete(await self._session(session_id))

    async def session_fail(self, session_id: Any, reason: Any = None) -> None:
        await self._sessions.fail(await self._session(session_id), _optional_text(reason, "reason"))

    async def session_archive(self, session_id: Any) -> None:
        await self._sessions.archive(await self._session(session_id))

    async def session_delete(self, session_id: Any, opts: Any = None) -> None:
        given = mapping_from_lua(opts, "Session.delete options") or {}
        await self._sessions.delete(
            await self._session(session_id, default_current=False),
            cascade=bool(given.get("cascade")),
        )

    async def session_save(self, session_id: Any) -> None:
        await self._sessions.save(await self._session(session_id))

    async def session_load(self, session_id: Any) -> str:
        return await self._sessions.load(await self._session(session_id))

    async def session_getcurrent(self) -> str | None:
        return self.current

    async def session_setcurrent(self, session_id: Any = None) -> None:
        if self._session_id is not None:
            raise InvalidArgumentError("a session script's current session cannot be changed")
        if session_id is None:
            self.current = None
            return
        chosen = _uuid(session_id, "a session id")
        await self._sessions.get(chosen)  # SessionNotFound for an unknown id
        self.current = chosen

    async def session_setstate(self, session_id: Any, key: Any, value: Any = None) -> None:
        sid, name = await self._session(session_id), text(key, "a state key")
        if value is None:
            await self._sessions.delete_state(sid, name)
        else:
            await self._sessions.set_state(sid, name, from_lua(value))

    async def session_getstate(self, session_id: Any, key: Any) -> Any:
        return await self._sessions.get_state(
            await self._session(session_id), text(key, "a state key")
        )

    async def session_deletestate(self, session_id: Any, key: Any) -> None:
        await self._sessions.delete_state(await self._session(session_id), text(key, "a state key"))

    async def session_liststate(self, session_id: Any = None) -> list[str]:
        return await self._sessions.list_state(await self._session(session_id))

    async def session_fork(self, session_id: Any, opts: Any = None) -> str:
        given = mapping_from_lua(opts, "Session.fork options") or {}
        origin = await self._session(session_id)
        forked = await self._sessions.fork(
            origin,
            at=_int(given.get("at"), "at"),
            name=given.get("name"),
            budget_of=self._session_id,
        )
        self._own.add(forked)
        return forked

    async def session_timeline(self, session_id: Any = None) -> Any:
        entries = await self._sessions.timeline(await self._session(session_id))
        return [{"seq": e.seq, "at": e.at, "kind": e.kind, "data": e.data} for e in entries]

    async def session_canreplay(self, session_id: Any = None) -> bool:
        return await self._sessions.can_replay(await self._session(session_id))

    async def session_replay(self, session_id: Any, cfg: Any = None) -> Any:
        config = mapping_from_lua(cfg, "Session.replay config") or {}
        unknown = set(config) - _REPLAY_OPTIONS  # progress is a Python callback: not from Lua
        if unknown:
            raise InvalidArgumentError(
                f"unknown Session.replay options: {', '.join(sorted(unknown))}"
            )
        return to_wire(await self._sessions.replay(await self._session(session_id), **config))

    async def session_getreplaymetadata(self, session_id: Any = None) -> Any:
        return to_wire(await self._sessions.replay_metadata(await self._session(session_id)))

    async def session_listreplayable(self) -> list[str]:
        found = await self._sessions.list_replayable()
        if self._session_id is None:
            return found
        own = {self._session_id, *await self._sessions.made_by_scripts_of(self._session_id)}
        return [s for s in found if s in own]

    # -- State -----------------------------------------------------------------------------

    async def state_set(self, key: Any, value: Any = None) -> None:
        if self._session_id is not None:
            return await self.session_setstate(None, key, value)
        name = text(key, "a state key")
        if value is None:
            await self._state.delete(name)
        else:
            await self._state.set(name, from_lua(value))
        return None

    async def state_get(self, key: Any) -> Any:
        if self._session_id is not None:
            return await self.session_getstate(None, key)
        return await self._state.get(text(key, "a state key"))

    async def state_delete(self, key: Any) -> None:
        if self._session_id is not None:
            return await self.session_deletestate(None, key)
        await self._state.delete(text(key, "a state key"))
        return None

    async def state_list(self) -> list[str]:
        if self._session_id is not None:
            return await self.session_liststate(None)
        return await self._state.keys()

    # -- Artifact --------------------------------------------------------------------------

    def _owner(self, value: Any) -> str | None:
        """An artifact call's session: nil or "" = the current one (grants are checked by
        the artifact manager, which acts as this script's session)."""
        if value in (None, b""):
            if self._session_id is not None:
                return None
            if self.current is None:
                raise InvalidArgumentError("no current session; pass a session id")
            return self.current
        return _uuid(value, "a session id")

    async def artifact_store(
        self, session_id: Any, type: Any, name: Any, content: Any, metadata: Any = None
    ) -> Any:
        ref = await self._artifacts.store(
            self._owner(session_id),
            text(name, "an artifact name"),
            _content(content),
            type=text(type, "an artifact type"),
            metadata=mapping_from_lua(metadata, "artifact metadata"),
        )
        return _ref(ref)

    async def _artifact(self, value: Any) -> str:
        """An artifact argument: an id, an id table (rs-llmspell's, without ``id``, too), or
        a name."""
        if isinstance(value, bytes):
            return text(value, "an artifact")
        given = from_lua(value) if value is not None else None
        if isinstance(given, dict):
            found = given.get("id")
            if isinstance(found, str):
                return found
            if {"content_hash", "session_id", "sequence"} <= given.keys():
                sequence = _int(given["sequence"], "an id table's sequence")
                return await self._artifacts.id_of_content(
                    _canonical_uuid(_text_field(given, "session_id")),
                    _text_field(given, "content_hash"),
                    0 if sequence is None else sequence,
                )
        raise InvalidArgumentError(
            f"an artifact is an id, an id table or a name, not {lua_type_name(value)}"
        )

    async def artifact_get(self, session_id: Any, artifact: Any, version: Any = None) -> Any:
        found = await self._artifacts.get(
            self._owner(session_id), await self._artifact(artifact), _int(version, "version")
        )
        return {"content": found.content, "metadata": to_wire(found.metadata)}

    async def artifact_list(self, session_id: Any = None) -> Any:
        return [to_wire(i) for i in await self._artifacts.list(self._owner(session_id))]

    async def artifact_versions(self, session_id: Any, name: Any) -> Any:
        found = await self._artifacts.versions(
            self._owner(session_id), text(name, "an artifact name")
        )
        return [to_wire(i) for i in found]

    async def artifact_delete(self, session_id: Any, artifact: Any) -> None:
        await self._artifacts.delete(self._owner(session_id), await self._artifact(artifact))

    async def artifact_storefile(
        self, session_id: Any, path: Any, type: Any = None, metadata: Any = None
    ) -> Any:
        ref = await self._artifacts.store_file(
            self._owner(session_id),
            text(path, "a file path"),
            type=text(type if type is not None else b"user_input", "an artifact type"),
            metadata=mapping_from_lua(metadata, "artifact metadata"),
            anywhere=self._session_id is None,
        )
        return _ref(ref)

    async def artifact_query(self, query: Any = None) -> Any:
        filters = mapping_from_lua(query, "Artifact.query") or {}
        return [to_wire(i) for i in await self._artifacts.query(**filters)]

    async def artifact_share(
        self, owner: Any, artifact: Any, target: Any, permission: Any = b"read"
    ) -> None:
        await self._artifacts.share(
            self._owner(owner),
            await self._artifact(artifact),
            _uuid(target, "a target session id"),
            text(permission, "a permission"),
        )

    async def artifact_revoke(self, owner: Any, artifact: Any, target: Any) -> None:
        await self._artifacts.revoke(
            self._owner(owner), await self._artifact(artifact), _uuid(target, "a target session id")
        )

    async def artifact_auditlog(self, session_id: Any, artifact: Any) -> Any:
        entries = await self._artifacts.audit_log(
            self._owner(session_id), await self._artifact(artifact)
        )
        return [to_wire(e) for e in entries]


def _content(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value).encode()
    raise InvalidArgumentError(f"artifact content must be a string, not {lua_type_name(value)}")


def _metadata_option(given: dict[str, Any]) -> dict[str, Any]:
    """Session.create's ``metadata`` (or ``custom_metadata``): a map, ``{}`` included."""
    found = [given[key] for key in ("metadata", "custom_metadata") if key in given]
    if len(found) == 2 and found[0] != found[1]:
        raise InvalidArgumentError("metadata and custom_metadata differ: give one of them")
    value = found[0] if found else {}
    if value == []:
        return {}  # an empty Lua table
    if not isinstance(value, dict):
        raise InvalidArgumentError("session metadata must be a table of named fields")
    return value


def _uuid(value: Any, what: str) -> str:
    """A session id from Lua: a UUID (scripts name sessions by id, not by a host's key),
    canonical; else rs-llmspell's ``Invalid session ID``."""
    return _canonical_uuid(text(value, what))


def _canonical_uuid(value: str) -> str:
    if len(value) == 36:
        with contextlib.suppress(ValueError):
            return str(uuid.UUID(value))
    shown = value if len(value) <= 80 else value[:77] + "..."
    raise InvalidArgumentError(f"Invalid session ID: {shown!r}")


def _text_field(table: dict[str, Any], key: str) -> str:
    """A field of an id table that must be text."""
    value = table[key]
    if not isinstance(value, str):
        raise InvalidArgumentError(f"an id table's {key} must be a string")
    return value


def _ref(ref: Any) -> dict[str, Any]:
    return {
        "id": ref.id,
        "session_id": ref.session_id,
        "name": ref.name,
        "version": ref.version,
        "content_hash": ref.content_hash,
        "sequence": ref.version,
    }


async def run_session_script(
    sessions: SessionManager,
    artifacts: ArtifactManager,
    state: HostState,
    workers: WorkerPool,
    session_id: str,
    slot: ScriptSlot,
    message: RunScript,
) -> list[Any]:
    """Run a session script in a worker process that keeps the session's Lua state in
    ``slot`` between runs (made on first use, and again after a run a limit stopped)."""
    api = ScriptApi(sessions, artifacts, state, session_id=session_id)
    return await workers.run(
        message.source,
        api.dispatch,
        keeper=slot,
        name=message.name,
        args=message.args,
        output=message.output,
        limits=message.limits,
    )


def _arguments() -> dict[str, tuple[int, int]]:
    """How many arguments each op's handler takes, at least and at most."""
    found = {}
    for _, _, op in api_names():
        handler = getattr(ScriptApi, op.replace(".", "_").lower())
        parameters = list(inspect.signature(handler).parameters.values())[1:]
        least = sum(p.default is inspect.Parameter.empty for p in parameters)
        found[op] = (least, len(parameters))
    return found


_RETURNS_NOTHING = _returns_nothing()
_ARGUMENTS = _arguments()
