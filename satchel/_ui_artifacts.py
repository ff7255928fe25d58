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
from typing import Any
from urllib.parse import quote

from markdown_it import MarkdownIt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from satchel._ui import SANDBOX, page, render, runtime_of
from satchel.runtime import _errors as errors

#: How much of a version a preview shows, and a difference compares.
PREVIEW_BYTES = 256 * 1024
#: Image types shown as images (SVG is not among them: it can hold scripts).
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False})
_SAFE_LINKS = ("http://", "https://", "mailto:", "#", "/")


def _version(request: Request) -> int | None:
    raw = request.query_params.get("version", "")
    if not raw:
        return None
    if not raw.isdigit():
        raise errors.InvalidArgumentError(f"version must be a whole number, not {raw!r}")
    return int(raw)


def _is_text(content: bytes) -> bool:
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in content


def _markdown(text: str) -> str:
    """Markdown as HTML, with no raw HTML and only plain links kept."""
    tokens = _MARKDOWN.parse(text)
    for token in tokens:
        for child in token.children or ():
            if child.type in ("link_open", "image"):
                target = str(child.attrGet("href") or child.attrGet("src") or "")
                if not target.lower().startswith(_SAFE_LINKS):
                    child.attrSet("href" if child.type == "link_open" else "src", "#")
                if child.type == "image":
                    child.attrSet("src", "#")  # no fetches from a page
    rendered: str = _MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {})
    return rendered


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
    got = await rt.artifacts.get(session_id, name, chosen.version)
    return render(
        request,
        "artifact.html",
        session_id=session_id,
        name=name,
        quoted=quote(name, safe=""),
        versions=versions,
        info=chosen,
        preview=preview(got.content, chosen.mime_type, name),
        audit=await rt.artifacts.audit_log(session_id, name, limit=50),
    )


@page
async def raw(request: Request) -> Response:
    """An image version, as itself, under a policy that lets it do nothing."""
    rt = runtime_of(request)
    session_id, name = request.path_params["session_id"], request.path_params["name"]
    got = await rt.artifacts.get(session_id, name, _version(request))
    if got.metadata.mime_type not in IMAGE_TYPES:
        raise errors.InvalidArgumentError("only PNG, JPEG, GIF and WebP images are shown raw")
    return Response(
        got.content,
        media_type=got.metadata.mime_type,
        headers={"content-security-policy": SANDBOX},
    )


@page
async def download(request: Request) -> Response:
    rt = runtime_of(request)
    session_id, name = request.path_params["session_id"], request.path_params["name"]
    got = await rt.artifacts.get(session_id, name, _version(request))
    filename = quote(f"{got.metadata.name}", safe="")
    return Response(
        got.content,
        media_type="application/octet-stream",
        headers={
            "content-disposition": f"attachment; filename*=UTF-8''{filename}",
            "content-security-policy": SANDBOX,
        },
    )


@page
async def diff(request: Request) -> Response:
    rt = runtime_of(request)
    session_id, name = request.path_params["session_id"], request.path_params["name"]
    versions = {}
    for side in ("a", "b"):
        raw_value = request.query_params.get(side, "")
        if not raw_value.isdigit():
            raise errors.InvalidArgumentError(f"{side} must be a version number")
        versions[side] = int(raw_value)
    texts = []
    for side in ("a", "b"):
        got = await rt.artifacts.get(session_id, name, versions[side])
        if not _is_text(got.content[:PREVIEW_BYTES]):
            raise errors.InvalidArgumentError(f"version {versions[side]} is not text")
        texts.append(got.content[:PREVIEW_BYTES].decode("utf-8", errors="replace"))
    lines = list(
        difflib.unified_diff(
            texts[0].splitlines(),
            texts[1].splitlines(),
            f"version {versions['a']}",
            f"version {versions['b']}",
            lineterm="",
        )
    )
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


_N = "/sessions/{session_id}/artifacts/{name}"
ROUTES = [
    Route(_N, artifact, methods=["GET"]),
    Route(f"{_N}/raw", raw, methods=["GET"]),
    Route(f"{_N}/download", download, methods=["GET"]),
    Route(f"{_N}/diff", diff, methods=["GET"]),
]
