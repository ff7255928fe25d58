"""The HTTP endpoints of artifacts (uploads and downloads streamed), session archives and Lua.

A request acts as the host unless it names a session in ``X-Satchel-Session``; then the
artifact grants decide what it may read and write, as for that session's scripts."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import anyio
import anyio.lowlevel
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from satchel._http import (
    ACTING_SESSION,
    Endpoint,
    body_object,
    json_response,
    only,
    query_bool,
    query_int,
    runtime,
)
from satchel._http_body import declared_length, parse_object, too_large
from satchel._http_download import download
from satchel._http_openapi import returns, shape
from satchel.actors import export_session, import_session
from satchel.actors.artifacts._artifact_manager import ArtifactManager
from satchel.runtime import _errors as errors
from satchel.storage import BlobStore
from satchel.storage._blobformat import MAX_SIZE_HINT

#: Header carrying an upload's custom metadata, a JSON object.
METADATA_HEADER = "X-Satchel-Metadata"
_UPLOAD_TEXT = ("type", "mime_type", "description")
_SPOOL_BYTES = 8 << 20  # archives above this go to a temporary file, not memory
_LUA = ("source", "args", "session_id", "name")


def _artifacts(request: Request) -> ArtifactManager:
    acting = request.headers.get(ACTING_SESSION)
    manager = runtime(request).artifacts
    return manager if acting is None else manager.as_session(acting)


def _sid(request: Request) -> str:
    session_id: str = request.path_params["session_id"]
    return session_id


def _name(request: Request) -> str:
    name: str = request.path_params["name"]
    return name


async def list_artifacts(request: Request) -> Response:
    return json_response(await _artifacts(request).list(_sid(request)))


async def put_artifact(request: Request) -> Response:
    params = request.query_params
    metadata: dict[str, Any] = {}
    raw = request.headers.get(METADATA_HEADER)
    if raw is not None:
        metadata.update(parse_object(raw.encode("latin-1"), f"the {METADATA_HEADER} header"))
    metadata.update({n: params[n] for n in _UPLOAD_TEXT[1:] if n in params})
    if params.getlist("tags"):
        metadata["tags"] = params.getlist("tags")
    limit = runtime(request).store.blobs.limits.max_size
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise too_large(request, str(declared), limit, MAX_SIZE_HINT)
    # What the client still sends after a refusal is read (and dropped) up to the limit
    # again (``DrainAfterRefusal``), so a client that sends all before it reads gets its 413.
    request.state.drain_bytes = limit
    body = _body(request)
    try:
        ref = await _artifacts(request).store(
            _sid(request),
            _name(request),
            body,
            type=params.get("type", "user_input"),
            metadata=metadata,
        )
    finally:
        await body.aclose()
    return json_response(ref, 201)


async def _body(request: Request) -> AsyncGenerator[bytes, None]:
    stream = request.stream()
    try:
        async for piece in stream:
            if piece:
                yield piece
    finally:
        await stream.aclose()


async def _blob_chunks(blobs: BlobStore, content_hash: str) -> AsyncGenerator[bytes, None]:
    """The blob's own stream, opened (and its blob looked up) when the first chunk is asked
    for; closing this closes it."""
    chunks = await blobs.stream(content_hash)
    async with aclosing(chunks):
        async for chunk in chunks:
            yield chunk


async def get_artifact(request: Request) -> Response:
    manager = _artifacts(request)
    version = query_int(request, "version")
    # Resolved (and access checked) before the response starts: a refusal is still a 4xx.
    info = await manager.info(_sid(request), _name(request), version)
    blobs = runtime(request).store.blobs
    return download(
        request,
        info,
        lambda: manager.stream(_sid(request), info.id),
        lambda: _blob_chunks(blobs, info.content_hash),
    )


async def get_artifact_metadata(request: Request) -> Response:
    version = query_int(request, "version")
    return json_response(await _artifacts(request).info(_sid(request), _name(request), version))


async def list_versions(request: Request) -> Response:
    return json_response(await _artifacts(request).versions(_sid(request), _name(request)))


async def delete_artifact(request: Request) -> Response:
    manager = _artifacts(request)
    version = query_int(request, "version")
    target = _name(request)
    if version is not None:
        target = (await manager.info(_sid(request), target, version)).id
    await manager.delete(_sid(request), target)
    return Response(status_code=204)


async def query_artifacts(request: Request) -> Response:
    filters = await body_object(request)
    return json_response(await _artifacts(request).query(**filters))


async def share_artifact(request: Request) -> Response:
    body = only(await body_object(request), ("target", "permission"))
    target, permission = _text(body, "target"), _text(body, "permission", "read")
    await _artifacts(request).share(_sid(request), _name(request), target, permission)
    return Response(status_code=204)


async def revoke_artifact(request: Request) -> Response:
    body = only(await body_object(request), ("target",))
    await _artifacts(request).revoke(_sid(request), _name(request), _text(body, "target"))
    return Response(status_code=204)


def _text(body: dict[str, Any], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise errors.InvalidArgumentError(f"{name} must be a string, not {value!r}")
    return value


async def get_audit_log(request: Request) -> Response:
    return json_response(await _artifacts(request).audit_log(_sid(request), _name(request)))


# -- archives -------------------------------------------------------------------------------


async def export_archive(request: Request) -> Response:
    rt = runtime(request)
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 - closed by the stream
    try:
        report = await export_session(rt.sessions, rt.artifacts, rt.store, _sid(request), spool)
    except BaseException:
        spool.close()
        raise
    size = spool.tell()
    spool.seek(0)

    async def chunks() -> AsyncIterator[bytes]:
        with spool:
            while piece := spool.read(1 << 20):
                yield piece
                await anyio.lowlevel.checkpoint()

    headers = {
        "Content-Length": str(size),
        "Content-Disposition": f'attachment; filename="{report.session_id}.satchel"',
    }
    return StreamingResponse(chunks(), media_type="application/x-tar", headers=headers)


async def import_archive(request: Request) -> Response:
    rt = runtime(request)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        async for piece in request.stream():
            spool.write(piece)
        spool.seek(0)
        new_id = query_bool(request, "new_id") or False
        report = await import_session(rt.sessions, rt.artifacts, rt.store, spool, new_id=new_id)
    return json_response(report, 201)


# -- Lua --------------------------------------------------------------------------------------


async def run_lua(request: Request) -> Response:
    body = only(await body_object(request), _LUA)
    source = body.get("source")
    if not isinstance(source, str):
        raise errors.InvalidArgumentError("source must be the script's text")
    args = body.get("args") or []
    if not isinstance(args, list):
        raise errors.InvalidArgumentError("args must be an array")
    output: list[str] = []
    results = await runtime(request).run_lua(
        source,
        name=str(body.get("name") or "script"),
        args=args,
        session_id=body.get("session_id"),
        output=output.append,
        isolated=True,
    )
    return json_response({"results": _plain(results), "output": output})


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    return value


_N = "/sessions/{session_id}/artifacts/{name}"
ARTIFACT_ENDPOINTS = (
    Endpoint("GET", "/sessions/{session_id}/artifacts", list_artifacts,
             "Latest version of each artifact", "artifacts",
             returns=returns(ArtifactManager.list)),
    Endpoint("PUT", _N, put_artifact, "Store a new version (body streamed)", "artifacts",
             ("type", "mime_type", "description", "tags"), body="bytes", status=201,
             returns=returns(ArtifactManager.store)),
    Endpoint("GET", _N, get_artifact, "Download content (streamed)", "artifacts",
             ("version",), produces="application/octet-stream"),
    Endpoint("DELETE", _N, delete_artifact, "Delete a version, or every version", "artifacts",
             ("version",), status=204),
    Endpoint("GET", f"{_N}/metadata", get_artifact_metadata, "Metadata of a version",
             "artifacts", ("version",), returns=returns(ArtifactManager.info)),
    Endpoint("GET", f"{_N}/versions", list_versions, "Every version", "artifacts",
             returns=returns(ArtifactManager.versions)),
    Endpoint("POST", f"{_N}/share", share_artifact, "Grant another session access",
             "artifacts", body="json", status=204, fields={"target": str, "permission": str}),
    Endpoint("POST", f"{_N}/revoke", revoke_artifact, "Take a grant back", "artifacts",
             body="json", status=204, fields={"target": str}),
    Endpoint("GET", f"{_N}/audit", get_audit_log, "Access decisions on a shared name",
             "artifacts", returns=returns(ArtifactManager.audit_log)),
    Endpoint("POST", "/artifacts/query", query_artifacts, "Query artifacts", "artifacts",
             body="json", returns=returns(ArtifactManager.query)),
    Endpoint("GET", "/sessions/{session_id}/export", export_archive,
             "Export a session as an archive", "archives", produces="application/x-tar"),
    Endpoint("POST", "/import", import_archive, "Import a session archive", "archives",
             ("new_id",), body="bytes", status=201, returns=returns(import_session)),
    Endpoint("POST", "/lua", run_lua, "Run a Lua script", "lua", body="json",
             returns=shape(results=list[Any], output=list[str]),
             fields={"source": str, "args": list[Any], "session_id": str | None, "name": str}),
)  # fmt: skip
