"""The inspector's artifact pages: an artifact's versions and metadata, a preview of one
version, its download, and the difference between two versions of a text.

Nothing in an artifact runs: text, JSON and source (HTML and SVG included) are shown as
escaped text, Markdown is rendered with raw HTML off (and links other than http, https and
mailto dropped), and only PNG, JPEG, GIF and WebP images are sent with an image type, under
a policy that allows nothing else.
"""

from __future__ import annotations

import contextlib
import difflib
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio.to_thread
from markdown_it import MarkdownIt
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from satchel._session_calls import closed_after
from satchel._ui import SANDBOX, page, render, runtime_of, whole
from satchel.actors.artifacts._artifact_model import ArtifactInfo
from satchel.runtime import _errors as errors

if TYPE_CHECKING:
    from satchel._runtime import Runtime

#: How much of a version a preview shows, and a difference compares.
PREVIEW_BYTES = 256 * 1024
#: Image types shown as images (SVG is not among them: it can hold scripts).
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False})
_SAFE_LINKS = ("http://", "https://", "mailto:", "#")
#: Lines a difference compares per side (difflib's time grows faster than the lines).
DIFF_LINES = 2000


def _version(request: Request) -> int | None:
    raw = request.query_params.get("version", "")
    return whole(raw, "version") if raw else None


async def _head(rt: Runtime, session_id: str, name: str, version: int | None) -> bytes:
    """The first ``PREVIEW_BYTES`` (and one more, to tell it was cut) of a version, read
    chunk by chunk: a big version is never held whole."""
    head = bytearray()
    async with closed_after(rt.artifacts.stream(session_id, name, version)) as chunks:
        async for chunk in chunks:
            head += chunk
            if len(head) > PREVIEW_BYTES:
                break
    return bytes(head[: PREVIEW_BYTES + 1])


def _is_text(content: bytes) -> bool:
    """UTF-8 without NUL bytes (a character cut at the end of a preview still counts)."""
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.reason != "unexpected end of data":
            return False
    return b"\x00" not in content


def _markdown(text: str) -> str:
    """Markdown as HTML, with no raw HTML and only plain links kept."""
    tokens = _MARKDOWN.parse(text)
    for token in tokens:
        for child in token.children or ():
            if child.type in ("link_open", "image"):
                target = str(child.attrGet("href") or child.attrGet("src") or "")
                if not target.lower().startswith(_SAFE_LINKS) and not _local(target):
                    child.attrSet("href" if child.type == "link_open" else "src", "#")
                if child.type == "image":
                    child.attrSet("src", "#")  # no fetches from a page
    rendered: str = _MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {})
    return rendered


def _local(target: str) -> bool:
    """A path on this server (not ``//host``, which is another site)."""
    return target.startswith("/") and not target.startswith("//") and "\\" not in target


def preview(content: bytes, mime_type: str, name: str) -> dict[str, Any]:
    """How a version is shown: ``kind`` (image, markdown, json, text or binary) and what to
    show (escaped by the template, but for rendered Markdown, which escapes itself)."""
    if mime_type in IMAGE_TYPES:
        return {"kind": "image", "cut": False}
    head = content[:PREVIEW_BYTES]
    cut = len(content) > PREVIEW_BYTES
    if not _is_text(head):
        return {"kind": "binary", "cut": False}
    text = head.decode("utf-8", errors="replace")
    if mime_type == "text/markdown" or name.lower().endswith((".md", ".markdown")):
        return {"kind": "markdown", "html": _markdown(text), "cut": cut}
    if mime_type == "application/json" and not cut:
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return {"kind": "text", "text": text, "cut": cut}


@page
async def artifact(request: Request) -> Response:
    rt = runtime_of(request)
    session_id, name = request.path_params["session_id"], request.path_params["name"]
    versions = await rt.artifacts.versions(session_id, name)
    if not versions:
        raise errors.ArtifactNotFoundError(f"artifact {name!r} has no versions")
    wanted = _version(request)
    chosen = next((v for v in versions if v.version == wanted), versions[-1])
    head = await _head(rt, session_id, name, chosen.version)
    shown = await anyio.to_thread.run_sync(preview, head, chosen.mime_type, name)
    return render(
        request,
        "artifact.html",
        session_id=session_id,
        name=name,
        quoted=quote(name, safe=""),
        versions=versions,
        info=chosen,
        preview=shown,
        audit=await rt.artifacts.audit_log(session_id, name, limit=50),
    )


@page
async def raw(request: Request) -> Response:
    """An image version, as itself, under a policy that lets it do nothing."""
    info = await _asked_version(request)
    if info.mime_type not in IMAGE_TYPES:
        raise errors.InvalidArgumentError("only PNG, JPEG, GIF and WebP images are shown raw")
    return _sent(request, info, info.mime_type, {})


@page
async def download(request: Request) -> Response:
    info = await _asked_version(request)
    filename = quote(info.name, safe="")
    headers = {
        "content-disposition": f"attachment; filename*=UTF-8''{filename}",
        "content-length": str(info.size),
    }
    return _sent(request, info, "application/octet-stream", headers)


async def _asked_version(request: Request) -> ArtifactInfo:
    """The metadata of the version the request names (the latest if none)."""
    params = request.path_params
    return await runtime_of(request).artifacts.info(
        params["session_id"], params["name"], _version(request)
    )


def _sent(
    request: Request, info: ArtifactInfo, media_type: str, headers: dict[str, str]
) -> Response:
    """A version's content, streamed, under the policy that lets it do nothing."""
    chunks = runtime_of(request).artifacts.stream(info.session_id, info.name, info.version)
    headers = {**headers, "content-security-policy": SANDBOX}
    return StreamingResponse(chunks, media_type=media_type, headers=headers)


@page
async def diff(request: Request) -> Response:
    rt = runtime_of(request)
    session_id, name = request.path_params["session_id"], request.path_params["name"]
    versions = {side: whole(request.query_params.get(side, ""), side) for side in ("a", "b")}
    texts = []
    for side in ("a", "b"):
        head = (await _head(rt, session_id, name, versions[side]))[:PREVIEW_BYTES]
        if not _is_text(head):
            raise errors.InvalidArgumentError(f"version {versions[side]} is not text")
        texts.append(head.decode("utf-8", errors="replace").splitlines()[:DIFF_LINES])
    # Off the event loop: other requests go on while difflib works.
    lines = await anyio.to_thread.run_sync(_differences, texts[0], texts[1], versions)
    return render(
        request,
        "diff.html",
        session_id=session_id,
        name=name,
        quoted=quote(name, safe=""),
        a=versions["a"],
        b=versions["b"],
        lines=lines,
    )


def _differences(a: list[str], b: list[str], versions: dict[str, int]) -> list[str]:
    return list(
        difflib.unified_diff(
            a, b, f"version {versions['a']}", f"version {versions['b']}", lineterm=""
        )
    )


_N = "/sessions/{session_id}/artifacts/{name}"
ROUTES = [
    Route(_N, artifact, methods=["GET"]),
    Route(f"{_N}/raw", raw, methods=["GET"]),
    Route(f"{_N}/download", download, methods=["GET"]),
    Route(f"{_N}/diff", diff, methods=["GET"]),
]
