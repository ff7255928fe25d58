"""The HTTP endpoints of changing a session after creation and of whole-store backups."""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import Response

from satchel._http import Endpoint, body_object, json_response, only, runtime
from satchel._http_openapi import fields_of, returns, shape
from satchel._runtime import Runtime
from satchel.actors.sessions._manager import SessionManager
from satchel.runtime._errors import InvalidArgumentError

_UPDATE = ("name", "description", "tags", "metadata", "config")


async def update_session(request: Request) -> Response:
    body = only(await body_object(request), _UPDATE)
    session_id: str = request.path_params["session_id"]
    return json_response(await runtime(request).sessions.update(session_id, **body))


async def backup_store(request: Request) -> Response:
    body = only(await body_object(request), ("path",))
    path = body.get("path")
    if not isinstance(path, str) or not path:
        raise InvalidArgumentError("path must name the new folder, on the server's machine")
    # Relative to the server's working folder would surprise a remote caller.
    if not os.path.isabs(path):
        raise InvalidArgumentError("path must be absolute (a folder on the server's machine)")
    report = await runtime(request).backup(path)
    return json_response(
        {
            "path": str(report.path),
            "chunk_files": report.chunk_files,
            "chunk_bytes": report.chunk_bytes,
        },
        201,
    )


async def get_cluster(request: Request) -> Response:
    return json_response(await runtime(request).cluster())


ADMIN_ENDPOINTS = (
    Endpoint("PATCH", "/sessions/{session_id}", update_session,
             "Change a session's name, description, tags, metadata or idle timeout", "sessions",
             body="json", returns=returns(SessionManager.get),
             fields=fields_of(SessionManager.update, _UPDATE)),
    Endpoint("POST", "/control/backup", backup_store, "Back the whole store up into a new folder",
             "control", body="json", status=201,
             returns=shape(path=str, chunk_files=int, chunk_bytes=int), fields={"path": str}),
    Endpoint("GET", "/control/cluster", get_cluster,
             "This node, the sessions it serves and the live nodes (null off a cluster)",
             "control", returns=returns(Runtime.cluster)),
)  # fmt: skip
