"""Artifact downloads as HTTP caches and resuming clients expect them: the content hash as
``ETag``, ``If-None-Match`` answered 304, and one ``Range`` answered 206 (416 when none of it
is there). A range is cut from the chunk stream, one chunk in memory at a time."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from satchel._http import error_response
from satchel.actors.artifacts._artifact_model import ArtifactInfo

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def etag_of(info: ArtifactInfo) -> str:
    """The strong entity tag of a version: its content hash, quoted."""
    return f'"{info.content_hash}"'


def not_modified(request: Request, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weakly, as the header is compared)."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags


def byte_range(request: Request, etag: str, size: int) -> tuple[int, int] | str | None:
    """The ``(first, last)`` bytes asked for; ``None`` for the whole content (no range, one
    that is malformed, several ranges, or an ``If-Range`` naming other content); the string
    ``"unsatisfiable"`` when the range lies past the end."""
    header = request.headers.get("range")
    if header is None or request.headers.get("if-range", etag) != etag:
        return None
    found = _RANGE.fullmatch(header.strip())
    if found is None:
        return None  # several ranges or another unit: served whole, as RFC 9110 allows
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        if int(last) == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - int(last)), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None  # malformed: ignored
    if start >= size:
        return "unsatisfiable"
    return start, end


async def cut(chunks: AsyncIterator[bytes], first: int, last: int) -> AsyncIterator[bytes]:
    """Bytes ``first..last`` of the stream, which is closed as soon as they are out."""
    position = 0
    async with aclosing(chunks):  # type: ignore[type-var]
        async for chunk in chunks:
            end = position + len(chunk)
            if end > first:
                yield chunk[max(0, first - position) : last + 1 - position]
            position = end
            if position > last:
                return


def download(
    request: Request,
    info: ArtifactInfo,
    open_chunks: Callable[[], AsyncIterator[bytes]],
    open_blob: Callable[[], AsyncIterator[bytes]],
) -> Response:
    """The answer to a download of ``info``: the whole content from ``open_chunks`` (the
    artifact manager's stream, which read hooks observe), a range from ``open_blob`` (the
    blob's own stream, which can be closed after the range's last chunk). Neither is opened
    unless content is sent."""
    etag = etag_of(info)
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "X-Satchel-Version": str(info.version),
        "X-Satchel-Artifact-Id": info.id,
    }
    if not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    wanted = byte_range(request, etag, info.size)
    if wanted == "unsatisfiable":
        refused = error_response(
            "RangeNotSatisfiable", f"the content is {info.size} bytes long", 416
        )
        refused.headers.update({**headers, "Content-Range": f"bytes */{info.size}"})
        return refused
    if isinstance(wanted, tuple):
        first, last = wanted
        headers["Content-Range"] = f"bytes {first}-{last}/{info.size}"
        headers["Content-Length"] = str(last + 1 - first)
        return StreamingResponse(
            cut(open_blob(), first, last), 206, headers=headers, media_type=info.mime_type
        )
    headers["Content-Length"] = str(info.size)
    return StreamingResponse(open_chunks(), headers=headers, media_type=info.mime_type)
