"""Commands on session variables, an artifact's audit log and replay schedules."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from satchel._cli_errors import invalid
from satchel._cli_output import Output

if TYPE_CHECKING:  # the HTTP client (httpx) is imported by the commands that call
    from satchel._cli_client import Client

SCHEDULE_COLUMNS = ("id", "session_id", "mode", "due_at", "every_s")
RUN_COLUMNS = ("ran_at", "events_replayed", "hooks_replayed", "matched", "mismatched", "error")


def _state_path(args: argparse.Namespace, key: str | None = None) -> str:
    return f"/sessions/{args.session}/state" + ("" if key is None else f"/{key}")


# -- variables --------------------------------------------------------------------------------


async def state_list(client: Client, args: argparse.Namespace, out: Output) -> int:
    variables = (await client.call("GET", _state_path(args)))["variables"]
    if out.as_json:
        out.data(variables)
    else:
        rows = [
            {"key": k, "value": json.dumps(v, ensure_ascii=False)} for k, v in variables.items()
        ]
        out.data(rows, ("key", "value"))
    return 0


async def state_get(client: Client, args: argparse.Namespace, out: Output) -> int:
    answer = await client.call("GET", _state_path(args, args.key))
    if out.as_json:
        out.data(answer)
    else:
        out.message(json.dumps(answer["value"], ensure_ascii=False))
    return 0


async def state_set(client: Client, args: argparse.Namespace, out: Output) -> int:
    await client.call("PUT", _state_path(args, args.key), json={"value": args.value})
    if out.as_json:
        out.data({"key": args.key, "value": args.value})
    else:
        out.message(f"set {args.key}")
    return 0


async def state_delete(client: Client, args: argparse.Namespace, out: Output) -> int:
    await client.call("DELETE", _state_path(args, args.key))
    out.data({"deleted": args.key}) if out.as_json else out.message(f"deleted {args.key}")
    return 0


# -- audit ------------------------------------------------------------------------------------


async def artifacts_audit(client: Client, args: argparse.Namespace, out: Output) -> int:
    entries = await client.call("GET", f"/sessions/{args.session}/artifacts/{args.name}/audit")
    out.data(entries, tuple(entries[0]) if entries else ())
    return 0


# -- schedules --------------------------------------------------------------------------------


async def schedules(client: Client, args: argparse.Namespace, out: Output) -> int:
    if args.verb == "list":
        found = await client.call("GET", "/control/schedules", params={"session_id": args.id})
        out.data([{**s, "due_at": rfc3339(s["due"])} for s in found], SCHEDULE_COLUMNS)
        if found and not out.as_json:
            out.message("(scheduled replays run while `satchel serve` holds this data folder)")
        return 0
    if args.id is None:
        raise invalid(f"schedules {args.verb} needs an id")
    if args.verb == "add":
        given = {"every_s": args.every, "when": _moment(args.when)}
        body = {"session_id": args.id, "mode": args.mode}
        body |= {name: value for name, value in given.items() if value is not None}
        added = await client.call("POST", "/control/schedules", json=body)
        out.data(added) if out.as_json else out.message(added["id"])
    elif args.verb == "results":
        runs = await client.call("GET", f"/control/schedules/{args.id}/results")
        out.data(runs, RUN_COLUMNS)
    else:
        out.data(await client.call("DELETE", f"/control/schedules/{args.id}"))
    return 0


def rfc3339(epoch: float) -> str:
    """Seconds since the epoch as an RFC 3339 time in UTC."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _moment(text: str | None) -> Any:
    """A time argument: epoch seconds if it is a number, else RFC 3339 text."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


# -- backups ----------------------------------------------------------------------------------


async def backup(client: Client, args: argparse.Namespace, out: Output) -> int:
    # Absolute: the server that writes it may run in another working folder.
    path = str(args.path.expanduser().absolute())
    out.data(await client.call("POST", "/control/backup", json={"path": path}))
    return 0
