"""A session handle's calls between cluster nodes: the codec, and the client that sends a
call to the node serving its session.

A call is ``POST /sessions/{id}/calls/{method}`` to the serving node (``_http_calls``), with
the cluster's token. Its body is one line of JSON, ``{"arguments": {...}, "content_length":
n}``, each argument unstructured by cattrs; a stored artifact's content follows that line as
raw bytes (``content_length`` of them, or to the end when streamed). The answer is
``{"result": ...}``, structured back by the method's return annotation, or the error body of
the HTTP API, raised as the error class of its kind; ``stream_artifact`` answers raw bytes.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import json
import typing
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from cattrs.preconf.json import make_converter

from satchel._cluster_owners import Owners
from satchel._http_peers import Answer, Peers, PeerUnreachableError
from satchel._http_status import STATUS
from satchel.actors import _validate as validate
from satchel.actors.artifacts._artifact_manager import ArtifactSpec
from satchel.actors.artifacts._artifact_model import ArtifactInfo, ArtifactRef
from satchel.actors.sessions._handle import AT_OWNER
from satchel.actors.sessions._history import History, ReplayMetadata
from satchel.actors.sessions._manager import SessionManager
from satchel.runtime import _errors as errors

#: Marks a request one node sent to another (its value: the sending node's id).
FORWARDED = b"x-satchel-forwarded"
CALL_TYPE = "application/x-satchel-call"
#: The one call answered with raw bytes: an artifact's content.
STREAM = "stream_artifact"
#: The argument of ``store_artifact`` sent as raw bytes after the JSON line.
CONTENT = "content"
#: The size of the pieces content is sent in.
_SLICE = 64 * 1024
#: How many times a call is tried while the session moves between nodes under it.
_ATTEMPTS = 3

converter = make_converter()


def _spec(value: Any, _: Any) -> ArtifactSpec:
    """An artifact named by id or name (a string), or by a ref or metadata table."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "created_at" in value:
        return converter.structure(value, ArtifactInfo)
    if isinstance(value, dict):
        return converter.structure(value, ArtifactRef)
    raise errors.InvalidArgumentError(f"an artifact is named by a string, not {value!r}")


converter.register_structure_hook_func(lambda kind: kind == ArtifactSpec, _spec)


def _exactly(kind: type[Any]) -> Callable[[Any, Any], Any]:
    """Take a value of ``kind`` as it is, and no other (cattrs would turn 5 into "5")."""

    def structure(value: Any, _: Any) -> Any:
        if type(value) is kind or (kind is float and type(value) is int):
            return value
        raise errors.InvalidArgumentError(f"expected {kind.__name__}, not {value!r}")

    return structure


for _kind in (str, int, float, bool):
    converter.register_structure_hook(_kind, _exactly(_kind))


@functools.cache
def hints(method: str) -> dict[str, Any]:
    """The annotations of a handle method, its arguments' and its ``return``."""
    names = {"ReplayMetadata": ReplayMetadata, "SessionManager": SessionManager}
    # stream_artifact takes artifact_info's arguments (its answer is raw bytes).
    return typing.get_type_hints(AT_OWNER[_local_name(method)], localns=names)


def encode_call(method: str, arguments: dict[str, Any], content_length: int | None) -> bytes:
    """The JSON line a call begins with. A value the method takes as ``Any`` must be JSON-like
    (``InvalidArgumentError`` or ``ValidationError`` as the method itself would raise),
    but for a time, sent as RFC 3339 text (the query filters take either)."""
    annotations = hints(method)
    parameters = inspect.signature(AT_OWNER[_local_name(method)]).parameters
    plain: dict[str, Any] = {}
    for name, value in arguments.items():
        if parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            plain[name] = {key: _plain(f"{method} {key}", item) for key, item in value.items()}
        elif annotations.get(name, Any) is Any:
            plain[name] = _plain(f"{method} {name}", value)
        else:
            plain[name] = converter.unstructure(value)
    line = json.dumps(
        {"arguments": plain, "content_length": content_length},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    try:
        return line.encode() + b"\n"
    except UnicodeEncodeError as error:
        raise validate.not_unicode(method, error) from None


def _plain(field: str, value: Any) -> Any:
    """``value`` as JSON takes it, refused as the method would refuse it if it is not."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    validate.json_like(field, value)
    return value


def _local_name(method: str) -> str:
    """The handle method whose arguments ``method`` takes."""
    return "artifact_info" if method == STREAM else method


#: Keyword arguments a handle method passes on (``**config``), typed by where they go.
_PASSED_ON: dict[str, Callable[..., Any]] = {"replay": History.replay}


@functools.cache
def _passed_on_hints(method: str) -> dict[str, Any]:
    target = _PASSED_ON.get(method)
    return {} if target is None else typing.get_type_hints(target)


def decode_arguments(method: str, plain: Any) -> dict[str, Any]:
    """A call's arguments structured by the method's annotations (``InvalidArgumentError``
    for an unknown name or a value of the wrong shape)."""
    if not isinstance(plain, dict):
        raise errors.InvalidArgumentError("a call's arguments are a JSON object")
    annotations = hints(method)
    parameters = inspect.signature(AT_OWNER[_local_name(method)]).parameters
    arguments: dict[str, Any] = {}
    for name, value in plain.items():
        parameter = parameters.get(name)
        if parameter is None or name in ("self", CONTENT):
            raise errors.InvalidArgumentError(f"{method} takes no argument {name!r}")
        if parameter.kind is parameter.VAR_KEYWORD:
            if not isinstance(value, dict):
                raise errors.InvalidArgumentError(f"{method}: {name} is a JSON object")
            passed_on = _passed_on_hints(method)
            for key, item in value.items():
                arguments[key] = _structured(method, key, item, passed_on.get(key, Any))
            continue
        arguments[name] = _structured(method, name, value, annotations.get(name, Any))
    return arguments


def _structured(method: str, name: str, value: Any, kind: Any) -> Any:
    if kind is Any:
        return value
    try:
        return converter.structure(value, kind)
    except errors.SatchelError:
        raise
    except Exception as error:
        raise errors.InvalidArgumentError(f"{method}: {name}: {error}") from None


def encode_result(method: str, result: Any) -> bytes:
    """The JSON answer to a call."""
    plain = converter.unstructure(result, hints(method)["return"])
    return json.dumps({"result": plain}, ensure_ascii=False, separators=(",", ":")).encode()


def decode_result(method: str, body: bytes) -> Any:
    """The answer of a call, structured by the method's return annotation."""
    kind, plain = hints(method)["return"], json.loads(body)["result"]
    if kind is type(None) or kind is Any:
        return plain
    return converter.structure(plain, kind)


def _error_classes() -> dict[str, list[type[errors.SatchelError]]]:
    """The error classes of each kind, in the order they are defined."""
    found: dict[str, list[type[errors.SatchelError]]] = {}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, errors.SatchelError):
            found.setdefault(value.kind, []).append(value)
    return found


_ERRORS = _error_classes()


def _status(cls: type[errors.SatchelError]) -> int:
    return next((STATUS[c] for c in cls.__mro__ if c in STATUS), 500)


def error_of(body: bytes, status: int) -> errors.SatchelError:
    """The error an error answer stands for, as the class of its kind (of those sharing a
    kind, the one answered with that status: ``ContentTooLargeError`` is a 413
    ``ValidationError``)."""
    try:
        error = json.loads(body)["error"]
        kind, message = str(error["kind"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return errors.SatchelError(f"the serving node answered {status} with no error body")
    classes = _ERRORS.get(kind)
    if not classes:
        return errors.SatchelError(f"{kind}: {message}")
    found = next((cls for cls in classes if _status(cls) == status), classes[0])
    return found(message)


class RemoteSessions:
    """A cluster node's ``SessionCalls``: a handle's call runs here if this node serves the
    session or no node does, else it is sent to the node that serves it."""

    def __init__(self, owners: Owners, peers: Peers, token: str | None) -> None:
        self._owners = owners
        self._peers = peers
        self._token = token
        node = owners.placement.node
        self._wait_s = node.lease_ttl_s
        self._node_id = node.id.encode()

    async def call(
        self,
        session_id: str,
        method: str,
        arguments: dict[str, Any],
        here: Callable[[], Awaitable[Any]],
    ) -> Any:
        content = _Content(arguments.pop(CONTENT)) if CONTENT in arguments else None
        for attempt in range(_ATTEMPTS):
            last = attempt == _ATTEMPTS - 1
            address = await self._owners.elsewhere(session_id, remember_none=True)
            if address is None:
                if content is not None and content.length is None:
                    content.fresh = False  # here() reads the stream
                try:
                    return await here()
                except errors.SessionMovedError:
                    self._owners.forget(session_id)
                    if last or (content is not None and not content.fresh):
                        raise
                    continue  # another node took the session meanwhile: ask it
            try:
                return await self._send(address, session_id, method, arguments, content)
            except errors.SessionMovedError:
                self._owners.forget(session_id)
                if last or (content is not None and not content.fresh):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def stream(
        self,
        session_id: str,
        arguments: dict[str, Any],
        here: Callable[[], AsyncIterator[bytes]],
    ) -> AsyncIterator[bytes]:
        address = await self._owners.elsewhere(session_id, remember_none=True)
        if address is None:
            async with closed_after(here()) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        head = encode_call(STREAM, arguments, None)
        async with self._request(address, session_id, STREAM, head, None) as answer:
            if answer.status != 200:
                raise await _failure(answer)
            async with closed_after(answer.body()) as chunks:
                async for chunk in chunks:
                    yield chunk

    async def _send(
        self,
        address: str,
        session_id: str,
        method: str,
        arguments: dict[str, Any],
        content: _Content | None,
    ) -> Any:
        length = None if content is None else content.length
        head = encode_call(method, arguments, length)
        async with self._request(address, session_id, method, head, content) as answer:
            if answer.status != 200:
                raise await _failure(answer)
            body = b"".join([chunk async for chunk in answer.body()])
        return decode_result(method, body)

    @asynccontextmanager
    async def _request(
        self,
        address: str,
        session_id: str,
        method: str,
        head: bytes,
        content: _Content | None,
    ) -> AsyncIterator[Answer]:
        """The answer of the node at ``address`` to a call; a node that does not answer
        raises the error of its kind."""
        if self._token is None:
            raise errors.SessionMovedError(
                f"session {session_id} is served by the node at {address}; this node has no "
                "cluster token (Node(token=...)) to ask it with"
            )
        headers = [
            (b"authorization", f"Bearer {self._token}".encode()),
            (b"content-type", CALL_TYPE.encode()),
            (FORWARDED, self._node_id),
        ]
        target = f"/sessions/{session_id}/calls/{method}".encode()
        body = _body(head, content)
        try:
            async with self._peers.request(
                address, "POST", target, headers, body, wait_s=self._wait_s
            ) as answer:
                yield answer
        except PeerUnreachableError as error:
            raise _not_answering(address, error) from None
        finally:
            await body.aclose()


@asynccontextmanager
async def closed_after(chunks: AsyncIterator[bytes]) -> AsyncIterator[AsyncIterator[bytes]]:
    """``chunks``, closed (if it can be) when the block ends, however it ends."""
    try:
        yield chunks
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()


async def _failure(answer: Answer) -> errors.SatchelError:
    """The error a node answered."""
    body = b"".join([chunk async for chunk in answer.body()])
    return error_of(body, answer.status)


def _not_answering(address: str, error: PeerUnreachableError) -> errors.SatchelError:
    if not error.sent:
        return errors.SessionMovedError(
            f"the node at {address}, which serves the session, does not answer; ask again "
            "(once its lease runs out, another node serves the session)"
        )
    return errors.NodeNotAnsweringError(
        f"the node at {address}, which serves the session, had the whole call and did not "
        f"answer ({error}): it may or may not have carried it out (read before asking again)"
    )


class _Content:
    """A stored artifact's content on its way to another node: sent once if streamed."""

    def __init__(self, content: bytes | AsyncIterable[bytes]) -> None:
        self._content = content
        self.length = len(content) if isinstance(content, bytes | bytearray) else None
        #: Whether it can be sent (again): bytes can; a stream only before it was read.
        self.fresh = True

    async def pieces(self) -> AsyncIterator[bytes]:
        content = self._content
        if isinstance(content, bytes | bytearray):
            # In slices: the node has a lease time to take each piece, not the whole.
            view = memoryview(content)
            for start in range(0, len(view), _SLICE):
                yield bytes(view[start : start + _SLICE])
            return
        self.fresh = False
        async for piece in content:
            yield piece


async def _body(head: bytes, content: _Content | None) -> AsyncGenerator[bytes, None]:
    yield head
    if content is not None:
        async for piece in content.pieces():
            yield piece
