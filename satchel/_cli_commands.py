"""The CLI's commands: each turns its arguments into API requests and prints the answer."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from satchel._cli_errors import ApiError
from satchel._cli_output import Output

if TYPE_CHECKING:  # the HTTP client (httpx) is imported by the commands that call
    from satchel._cli_client import Client

Command = Callable[["Client", argparse.Namespace, Output], Awaitable[int]]
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
        "app": args.app,
        "user": args.user,
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
        config=args.config,
        key=args.key,
        app=args.app,
        user=args.user,
    )
    created = await client.call("POST", "/sessions", json=body)
    out.data(created) if out.as_json else out.message(created["id"])
    return 0


async def sessions_update(client: Client, args: argparse.Namespace, out: Output) -> int:
    tags = [] if args.no_tags else args.tag
    config: dict[str, Any] = {}
    if args.no_idle_timeout:
        config["idle_timeout_s"] = None
    elif args.idle_timeout is not None:
        config["idle_timeout_s"] = args.idle_timeout
    body = _given(
        name=args.name,
        description=args.description,
        tags=tags,
        metadata=args.metadata,
        config=config or None,
    )
    out.data(await client.call("PATCH", _session_path(args), json=body))
    return 0


async def sessions_transition(client: Client, args: argparse.Namespace, out: Output) -> int:
    body = {"reason": args.reason} if getattr(args, "reason", None) else None
    record = await client.call("POST", _session_path(args, f"/{args.verb}"), json=body)
    out.data(record) if out.as_json else out.message(f"{record['id']}: {record['status']}")
    return 0


async def sessions_delete(client: Client, args: argparse.Namespace, out: Output) -> int:
    await client.call("DELETE", _session_path(args), params={"cascade": args.cascade})
    done = {"deleted": args.session, "cascade": args.cascade}
    out.data(done) if out.as_json else out.message(f"deleted {args.session}")
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
    done = {"deleted": args.name, "version": args.version}
    out.data(done) if out.as_json else out.message(f"deleted {args.name}, {which}")
    return 0


async def artifacts_share(client: Client, args: argparse.Namespace, out: Output) -> int:
    body = {"target": args.target, "permission": args.permission}
    await client.call("POST", _artifact_path(args, "/share"), json=body)
    done = {"name": args.name, **body}
    out.data(done) if out.as_json else out.message(
        f"{args.target} may {args.permission} {args.name}"
    )
    return 0


async def artifacts_revoke(client: Client, args: argparse.Namespace, out: Output) -> int:
    await client.call("POST", _artifact_path(args, "/revoke"), json={"target": args.target})
    done = {"name": args.name, "revoked": args.target}
    out.data(done) if out.as_json else out.message(f"revoked {args.target} on {args.name}")
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
