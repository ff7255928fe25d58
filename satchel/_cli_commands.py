"""The CLI's commands: each turns its arguments into API requests and prints the answer."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from satchel._cli_client import ApiError, Client
from satchel._cli_output import Output

Command = Callable[[Client, argparse.Namespace, Output], Awaitable[int]]
SESSION_COLUMNS = ("id", "name", "status", "tags", "artifact_count", "created_at")
ARTIFACT_COLUMNS = ("name", "version", "type", "size", "tags", "created_at")
ACTOR_COLUMNS = ("kind", "id", "state", "mailbox_depth", "mailbox_peak", "messages_handled",
                 "restarts")  # fmt: skip
_CHUNK = 1 << 20


def json_arg(text: str) -> Any:
    """An argument holding JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON: {error}") from None


def _given(**fields: Any) -> dict[str, Any]:
    """The fields that were given (not ``None``): a request body of optional fields."""
    return {name: value for name, value in fields.items() if value is not None}


def _session_path(args: argparse.Namespace, suffix: str = "") -> str:
    return f"/sessions/{args.session}{suffix}"


def _artifact_path(args: argparse.Namespace, suffix: str = "") -> str:
    return f"/sessions/{args.session}/artifacts/{args.name}{suffix}"


# -- sessions -----------------------------------------------------------------------------------


async def sessions_list(client: Client, args: argparse.Namespace, out: Output) -> int:
    params = {
        "status": args.status,
        "tags": args.tag or None,
        "parent_session_id": args.parent,
        "search": args.search,
        "order_by": args.order_by,
        "descending": args.desc or None,
        "offset": args.offset,
        "limit": args.limit,
    }
    out.data(await client.call("GET", "/sessions", params=params), SESSION_COLUMNS)
    return 0


async def sessions_show(client: Client, args: argparse.Namespace, out: Output) -> int:
    out.data(await client.call("GET", _session_path(args)))
    return 0


async def sessions_create(client: Client, args: argparse.Namespace, out: Output) -> int:
    body = _given(
        name=args.name,
        description=args.description,
        tags=args.tag or None,
        metadata=args.metadata,
        parent_session_id=args.parent,
    )
    created = await client.call("POST", "/sessions", json=body)
    out.data(created) if out.as_json else out.message(created["id"])
    return 0


async def sessions_transition(client: Client, args: argparse.Namespace, out: Output) -> int:
    body = {"reason": args.reason} if getattr(args, "reason", None) else None
    record = await client.call("POST", _session_path(args, f"/{args.verb}"), json=body)
    out.data(record) if out.as_json else out.message(f"{record['id']}: {record['status']}")
    return 0


async def sessions_delete(client: Client, args: argparse.Namespace, out: Output) -> int:
    await client.call("DELETE", _session_path(args), params={"cascade": args.cascade})
    out.message(f"deleted {args.session}")
    return 0


async def sessions_fork(client: Client, args: argparse.Namespace, out: Output) -> int:
    body = _given(at=args.at, name=args.name)
    forked = await client.call("POST", _session_path(args, "/fork"), json=body)
    out.data(forked) if out.as_json else out.message(forked["id"])
    return 0


async def timeline(client: Client, args: argparse.Namespace, out: Output) -> int:
    params = {"offset": args.offset, "limit": args.limit}
    entries = await client.call("GET", _session_path(args, "/timeline"), params=params)
    out.data(entries, ("seq", "at", "kind", "data"))
    return 0


async def replay(client: Client, args: argparse.Namespace, out: Output) -> int:
    body: dict[str, Any] = {"mode": args.mode}
    if args.at is not None:
        body["at"] = args.at
    if args.set:
        body["modifications"] = dict(args.set)
    with out.progress() as progress:
        progress.add_task(f"replaying {args.session}", total=None)
        result = await client.call("POST", _session_path(args, "/replay"), json=body)
    if out.as_json:
        out.data(result)
        return 0
    for key in ("mode", "events_replayed", "hooks_replayed", "matched", "mismatched"):
        out.message(f"{key}: {result[key]}")
    out.message(f"state: {json.dumps(result['state'], ensure_ascii=False)}")
    for mismatch in result["mismatches"]:
        out.message(f"mismatch at {mismatch['seq']}: {json.dumps(mismatch)}")
    return 0


# -- artifacts ----------------------------------------------------------------------------------


async def artifacts_list(client: Client, args: argparse.Namespace, out: Output) -> int:
    found = await client.call("GET", _session_path(args, "/artifacts"))
    out.data(found, ARTIFACT_COLUMNS)
    return 0


async def artifacts_versions(client: Client, args: argparse.Namespace, out: Output) -> int:
    out.data(await client.call("GET", _artifact_path(args, "/versions")), ARTIFACT_COLUMNS)
    return 0


async def artifacts_get(client: Client, args: argparse.Namespace, out: Output) -> int:
    params = {"version": args.version}
    if args.metadata:
        out.data(await client.call("GET", _artifact_path(args, "/metadata"), params=params))
        return 0
    async with client.stream("GET", _artifact_path(args), params=params) as answer:
        total = int(answer.headers.get("content-length", 0)) or None
        sink = sys.stdout.buffer if args.output is None else args.output.open("wb")
        try:
            with out.progress(transfer=True) as progress:
                task = progress.add_task(f"{args.name}", total=total)
                async for chunk in answer.aiter_bytes():
                    sink.write(chunk)
                    progress.advance(task, len(chunk))
        finally:
            if args.output is not None:
                sink.close()
    return 0


async def _file_chunks(path: Path, advance: Callable[[int], None]) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            advance(len(chunk))
            yield chunk
            await anyio.lowlevel.checkpoint()


async def artifacts_put(client: Client, args: argparse.Namespace, out: Output) -> int:
    if args.name is not None and len(args.files) > 1:
        raise ApiError("InvalidArgument", "--name names one file; give one file", 422)
    headers = {} if args.metadata is None else {"X-Satchel-Metadata": json.dumps(args.metadata)}
    stored = []
    with out.progress(transfer=True) as progress:
        overall = progress.add_task("storing", total=sum(f.stat().st_size for f in args.files))
        for path in args.files:
            params = {"type": args.type, "tags": args.tag or None, "mime_type": args.mime_type}
            name = args.name or path.name
            ref = await client.call(
                "PUT",
                f"/sessions/{args.session}/artifacts/{name}",
                params=params,
                headers={**headers, "Content-Length": str(path.stat().st_size)},
                content=_file_chunks(path, lambda n: progress.advance(overall, n)),
            )
            stored.append(ref)
    if out.as_json:
        out.data(stored)
    else:
        for ref in stored:
            out.message(f"{ref['name']} v{ref['version']} {ref['size']} bytes {ref['id']}")
    return 0


async def artifacts_query(client: Client, args: argparse.Namespace, out: Output) -> int:
    filters = _given(
        session_id=args.session,
        type=args.type,
        name_pattern=args.name,
        tags=args.tag or None,
        metadata=args.metadata,
        min_size=args.min_size,
        max_size=args.max_size,
        all_versions=args.all_versions or None,
        order_by=args.order_by,
        descending=args.desc or None,
        offset=args.offset,
        limit=args.limit,
    )
    found = await client.call("POST", "/artifacts/query", json=filters)
    out.data(found, ("session_id", *ARTIFACT_COLUMNS))
    return 0


async def artifacts_delete(client: Client, args: argparse.Namespace, out: Output) -> int:
    await client.call("DELETE", _artifact_path(args), params={"version": args.version})
    which = "every version" if args.version is None else f"version {args.version}"
    out.message(f"deleted {args.name}, {which}")
    return 0


async def artifacts_share(client: Client, args: argparse.Namespace, out: Output) -> int:
    body = {"target": args.target, "permission": args.permission}
    await client.call("POST", _artifact_path(args, "/share"), json=body)
    out.message(f"{args.target} may {args.permission} {args.name}")
    return 0


async def artifacts_revoke(client: Client, args: argparse.Namespace, out: Output) -> int:
    await client.call("POST", _artifact_path(args, "/revoke"), json={"target": args.target})
    out.message(f"revoked {args.target} on {args.name}")
    return 0


# -- archives -----------------------------------------------------------------------------------


async def export(client: Client, args: argparse.Namespace, out: Output) -> int:
    staged = args.output.with_name(args.output.name + ".partial")
    async with client.stream("GET", _session_path(args, "/export")) as answer:
        total = int(answer.headers.get("content-length", 0)) or None
        with out.progress(transfer=True) as progress, staged.open("wb") as sink:
            task = progress.add_task(f"exporting {args.session}", total=total)
            async for chunk in answer.aiter_bytes():
                sink.write(chunk)
                progress.advance(task, len(chunk))
    os.replace(staged, args.output)  # a half-written archive never has the final name
    out.message(f"exported {args.session} to {args.output}")
    return 0


async def import_(client: Client, args: argparse.Namespace, out: Output) -> int:
    with out.progress(transfer=True) as progress:
        task = progress.add_task(f"importing {args.file.name}", total=args.file.stat().st_size)
        report = await client.call(
            "POST",
            "/import",
            content=_file_chunks(args.file, lambda n: progress.advance(task, n)),
            headers={"Content-Length": str(args.file.stat().st_size)},
        )
    out.data(report)
    return 0


# -- upkeep and control -------------------------------------------------------------------------


async def check(client: Client, args: argparse.Namespace, out: Output) -> int:
    with out.progress() as progress:
        progress.add_task("checking", total=None)
        result = await client.call("POST", "/control/check", json={"fix": args.fix})
    if out.as_json:
        out.data(result)
    else:
        blobs, sessions = result["blobs"], result["sessions"]
        out.message(f"blobs: {blobs['blobs']}, references: {blobs['references']}")
        for label in ("dangling_references", "refcount_mismatches", "orphan_chunks"):
            for problem in blobs[label]:
                out.message(f"{label.replace('_', ' ')}: {problem}")
        for problem in blobs["corrupt_blobs"]:
            out.message(f"corrupt blob: {problem}")
        out.message(f"sessions: {sessions['sessions']}")
        for problem in sessions["problems"]:
            out.message(f"session problem: {problem}")
        verdict = "repaired what could be" if args.fix else "problems found"
        out.message("clean" if result["clean"] else verdict)
    fixed_enough = args.fix and not result["blobs"]["corrupt_blobs"]
    return 0 if result["clean"] or fixed_enough else 1


async def gc(client: Client, args: argparse.Namespace, out: Output) -> int:
    with out.progress() as progress:
        progress.add_task("collecting", total=None)
        out.data(await client.call("POST", "/control/gc"))
    return 0


async def actors(client: Client, args: argparse.Namespace, out: Output) -> int:
    if args.verb == "list":
        found = await client.call("GET", "/control/actors", params={"kind": args.kind})
        out.data(found, ACTOR_COLUMNS)
        return 0
    if args.id is None:
        raise ApiError("InvalidArgument", f"actors {args.verb} needs an actor id", 422)
    path = f"/control/actors/{args.kind or 'session'}/{args.id}"
    if args.verb == "show":
        out.data(await client.call("GET", path))
    else:
        out.data(await client.call("POST", f"{path}/{args.verb}"))
    return 0


async def stats(client: Client, args: argparse.Namespace, out: Output) -> int:
    out.data(await client.call("GET", "/control/statistics"))
    return 0


async def schedules(client: Client, args: argparse.Namespace, out: Output) -> int:
    if args.verb == "list":
        found = await client.call("GET", "/control/schedules", params={"session_id": args.id})
        out.data(found, ("id", "session_id", "mode", "due", "every_s"))
    elif args.verb == "add":
        body = _given(
            session_id=args.id, mode=args.mode, every_s=args.every, when=_moment(args.when)
        )
        added = await client.call("POST", "/control/schedules", json=body)
        out.data(added) if out.as_json else out.message(added["id"])
    else:
        out.data(await client.call("DELETE", f"/control/schedules/{args.id}"))
    return 0


def _moment(text: str | None) -> str | float | None:
    """A time argument: epoch seconds if it is a number, else RFC 3339 text."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text
