"""The ``satchel`` command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import anyio
import httpx

from satchel import _cli_commands as cmd
from satchel._allocator import tune_allocator
from satchel._cli_client import ApiError, connect
from satchel._cli_commands import Command
from satchel._cli_output import Output
from satchel._errors import SatchelError
from satchel._runtime import open_runtime
from satchel._serve import TOKEN_FILE, find_server, serve
from satchel._version import __version__
from satchel.scripting import ScriptLimits, ScriptWorkers
from satchel.storage import Backend, Batch, Durability, Store, checked_durability, open_store
from satchel.storage._keys import DEMO

_DEMO_TEXT = (
    "satchel keeps what agent sessions make: every artifact is hashed with BLAKE3, stored once "
    "however often it is saved, compressed with LZ4 when that pays, and verified on every read.\n"
) * 64


def _open(args: argparse.Namespace) -> Store:
    folder = _folder(args)
    return open_store(folder, backend="rocksdb" if folder else "memory")


async def _demo(store: Store, name: str) -> int:
    content = _DEMO_TEXT.encode()
    owner = DEMO + name.encode()
    staged = await store.blobs.put(content)
    batch = Batch()
    already = store.kv.get(owner) is not None
    if already:
        store.blobs.discard(staged)
    else:
        batch.put(owner, staged.ref.hash.encode())
        store.blobs.commit(batch, add=[(staged, owner)])
    ref = staged.ref
    back = await store.blobs.read(ref)
    report = await store.check()
    where = store.path or "memory"
    print(f"data folder : {where}")
    print(f"artifact    : {name} ({'already stored' if already else 'stored now'})")
    print(f"blake3      : {ref.hash}")
    print(f"size        : {ref.size} bytes, {ref.stored_size} at rest (lz4: {ref.compressed})")
    print(f"read back   : {len(back)} bytes, identical: {back == content}")
    print(f"references  : {len(store.blobs.references(ref))}")
    print(f"check       : {'clean' if report.clean else report}")
    return 0 if back == content and report.clean else 1


def _common() -> argparse.ArgumentParser:
    """Options every command takes (given before or after the command)."""
    common = argparse.ArgumentParser(add_help=False)
    place = common.add_mutually_exclusive_group()
    place.add_argument(
        "--data",
        type=Path,
        default=argparse.SUPPRESS,
        help="data folder (default $SATCHEL_DATA or ./.satchel)",
    )
    place.add_argument(
        "--memory", action="store_true", default=argparse.SUPPRESS, help="keep nothing"
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    common.add_argument(
        "--durability",
        choices=get_args(Durability),
        default=argparse.SUPPRESS,
        help="process (default: survives a killed process) or machine (survives power loss)",
    )
    common.add_argument(
        "--backend",
        choices=("trio", "asyncio"),
        default=argparse.SUPPRESS,
        help="the event loop the command runs on (default trio)",
    )
    return common


def _leaf(
    group: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    command: Command,
    help_text: str,
    common: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=help_text, parents=[common])
    parser.set_defaults(command=command)
    return parser


def _session_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    group = commands.add_parser("sessions", help="list, show and steer sessions").add_subparsers(
        dest="verb", required=True
    )
    listing = _leaf(group, "list", cmd.sessions_list, "sessions matching filters", common)
    listing.add_argument("--status")
    listing.add_argument("--tag", action="append", help="must have this tag (repeatable)")
    listing.add_argument("--parent", help="children of this session")
    listing.add_argument("--search", help="substring of name or description")
    listing.add_argument("--order-by", choices=("created_at", "updated_at", "name"))
    listing.add_argument("--desc", action="store_true", help="newest (or last) first")
    listing.add_argument("--offset", type=int)
    listing.add_argument("--limit", type=int)
    _leaf(group, "show", cmd.sessions_show, "one session", common).add_argument("session")
    create = _leaf(group, "create", cmd.sessions_create, "a new session; prints its id", common)
    create.add_argument("--name")
    create.add_argument("--description")
    create.add_argument("--tag", action="append")
    create.add_argument("--metadata", type=cmd.json_arg, help="a JSON object")
    create.add_argument("--parent", help="parent session id")
    for verb in ("suspend", "resume", "complete", "fail", "archive"):
        leaf = _leaf(group, verb, cmd.sessions_transition, f"{verb} a session", common)
        leaf.add_argument("session")
        leaf.set_defaults(verb=verb)
        if verb == "fail":
            leaf.add_argument("--reason")
    delete = _leaf(group, "delete", cmd.sessions_delete, "delete a session", common)
    delete.add_argument("session")
    delete.add_argument("--cascade", action="store_true", help="and its child sessions")
    fork = _leaf(group, "fork", cmd.sessions_fork, "fork a session; prints the new id", common)
    fork.add_argument("session")
    fork.add_argument("--at", type=int, help="journal sequence (default: latest)")
    fork.add_argument("--name")


def _artifact_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    group = commands.add_parser("artifacts", help="store, read and share artifacts")
    verbs = group.add_subparsers(dest="verb", required=True)
    _leaf(verbs, "list", cmd.artifacts_list, "latest version of each", common).add_argument(
        "session"
    )
    get = _leaf(verbs, "get", cmd.artifacts_get, "content to stdout or a file", common)
    get.add_argument("session")
    get.add_argument("name")
    get.add_argument("--version", type=int)
    get.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    get.add_argument("--metadata", action="store_true", help="the metadata, not the content")
    put = _leaf(verbs, "put", cmd.artifacts_put, "store files (bulk)", common)
    put.add_argument("session")
    put.add_argument("files", type=Path, nargs="+")
    put.add_argument("--name", help="artifact name (one file only; default: its base name)")
    put.add_argument("--type", default="user_input")
    put.add_argument("--tag", action="append")
    put.add_argument("--mime-type")
    put.add_argument("--metadata", type=cmd.json_arg, help="custom metadata, a JSON object")
    versions = _leaf(verbs, "versions", cmd.artifacts_versions, "every version", common)
    versions.add_argument("session")
    versions.add_argument("name")
    query = _leaf(verbs, "query", cmd.artifacts_query, "artifacts matching filters", common)
    query.add_argument("--session")
    query.add_argument("--type")
    query.add_argument("--name", help="case-insensitive substring of the name")
    query.add_argument("--tag", action="append")
    query.add_argument("--metadata", type=cmd.json_arg, help="custom key/values, JSON")
    query.add_argument("--min-size", type=int)
    query.add_argument("--max-size", type=int)
    query.add_argument("--all-versions", action="store_true")
    query.add_argument("--order-by", choices=("created_at", "size", "name"))
    query.add_argument("--desc", action="store_true")
    query.add_argument("--offset", type=int)
    query.add_argument("--limit", type=int)
    delete = _leaf(verbs, "delete", cmd.artifacts_delete, "a version, or every one", common)
    delete.add_argument("session")
    delete.add_argument("name")
    delete.add_argument("--version", type=int)
    share = _leaf(verbs, "share", cmd.artifacts_share, "grant another session", common)
    share.add_argument("session")
    share.add_argument("name")
    share.add_argument("target")
    share.add_argument("--permission", choices=("read", "write", "admin"), default="read")
    revoke = _leaf(verbs, "revoke", cmd.artifacts_revoke, "take a grant back", common)
    revoke.add_argument("session")
    revoke.add_argument("name")
    revoke.add_argument("target")


def _other_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    line = _leaf(commands, "timeline", cmd.timeline, "a session's journal", common)
    line.add_argument("session")
    line.add_argument("--offset", type=int)
    line.add_argument("--limit", type=int)
    again = _leaf(commands, "replay", cmd.replay, "replay a session (it is not changed)", common)
    again.add_argument("session")
    again.add_argument("--mode", choices=("simulate", "exact", "modified", "debug"),
                       default="simulate")  # fmt: skip
    again.add_argument("--at", type=int)
    again.add_argument("--set", type=_assignment, action="append", metavar="KEY=JSON",
                       help="a variable's value for modified replay")  # fmt: skip
    check = _leaf(commands, "check", cmd.check, "check blobs and sessions", common)
    check.add_argument("--fix", action="store_true", help="repair what can be repaired")
    _leaf(commands, "gc", cmd.gc, "passivate idle sessions, free orphans, compact", common)
    out = _leaf(commands, "export", cmd.export, "a session as an archive file", common)
    out.add_argument("session")
    out.add_argument("-o", "--output", type=Path, required=True)
    into = _leaf(commands, "import", cmd.import_, "a session from an archive file", common)
    into.add_argument("file", type=Path)
    actors = _leaf(commands, "actors", cmd.actors, "live actors: list, show, steer", common)
    actors.add_argument("verb", choices=("list", "show", "passivate", "restart", "stop"))
    actors.add_argument("id", nargs="?")
    actors.add_argument("--kind", help="actor kind (default: every kind; session for verbs)")
    _leaf(commands, "stats", cmd.stats, "runtime statistics", common)
    plans = _leaf(commands, "schedules", cmd.schedules, "scheduled replays", common)
    plans.add_argument("verb", choices=("list", "add", "cancel"))
    plans.add_argument("id", nargs="?", help="session id (list, add) or schedule id (cancel)")
    plans.add_argument("--every", type=float, help="seconds between runs")
    plans.add_argument("--when", help="first run: RFC 3339 time or epoch seconds")
    plans.add_argument("--mode", default="simulate")


def _assignment(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("expected KEY=JSON")
    return key, cmd.json_arg(value)


def _parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog="satchel", description=__doc__)
    parser.add_argument("--version", action="version", version=f"satchel {__version__}")
    place = parser.add_mutually_exclusive_group()
    place.add_argument(
        "--data", type=Path, help="data folder (default $SATCHEL_DATA or ./.satchel)"
    )
    place.add_argument("--memory", action="store_true", help="keep nothing: an in-memory store")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--durability", choices=get_args(Durability), help="process or machine")
    parser.add_argument(
        "--backend", choices=("trio", "asyncio"), default="trio", help="event loop (default trio)"
    )
    commands = parser.add_subparsers(dest="group", required=True)
    demo = commands.add_parser("demo", help="store an artifact, read it back, check the store",
                               parents=[common])  # fmt: skip
    demo.add_argument("--name", default="hello.txt", help="artifact name (default hello.txt)")
    run = commands.add_parser("run", help="run a Lua script (see docs/lua.md)", parents=[common])
    run.add_argument("script", type=Path, help="the Lua file")
    run.add_argument("args", nargs="*", help="script arguments (after --): the global ARGS")
    run.add_argument("--session", help="run as a session script of session ID")
    run.add_argument("--allow-io", action="store_true", help="give the script io and all of os")
    serve = commands.add_parser("serve", help="serve the HTTP API", parents=[common])
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8470, help="port (default 8470; 0: any)")
    _session_commands(commands, common)
    _artifact_commands(commands, common)
    _other_commands(commands, common)
    return parser


def _folder(args: argparse.Namespace) -> Path | None:
    if args.memory:
        return None
    if args.data is not None:
        return Path(args.data)
    return Path(os.environ.get("SATCHEL_DATA") or ".satchel")


async def _run(args: argparse.Namespace, out: Output) -> int:
    try:
        source = args.script.read_bytes()
    except OSError as error:
        out.error(f"InvalidArgument: cannot read {args.script}: {error.strerror}")
        return 2
    folder = _folder(args)
    server = None if folder is None else find_server(folder)
    if server is not None:
        if args.allow_io:
            out.error("InvalidArgument: --allow-io runs only in-process, not on a server")
            return 2
        return await _run_remote(args, source, folder)
    store: Backend = "rocksdb" if folder else "memory"
    async with open_runtime(folder, store=store, durability=_durability(args)) as rt:
        try:
            await rt.run_lua(
                source,
                name=args.script.name,
                args=args.args,
                session_id=args.session,
                allow_io=args.allow_io,
                # The operator's own script prints straight to stdout: nothing to bound. A
                # session script keeps the default output limit.
                limits=None if args.session else _UNBOUNDED_OUTPUT,
            )
        except SatchelError as error:
            out.error(f"{error.kind}: {error}")
            trace = getattr(error, "lua_traceback", None)
            if trace:
                out.error(trace)
            return 1
    return 0


async def _run_remote(args: argparse.Namespace, source: bytes, folder: Path | None) -> int:
    async with connect(folder, durability=args.durability) as client:
        body = {
            "source": source.decode(errors="replace"),
            "args": args.args,
            "session_id": args.session,
            "name": args.script.name,
        }
        answer = await client.call("POST", "/lua", json=body)
    for line in answer["output"]:
        print(line)
    return 0


_UNBOUNDED_OUTPUT = ScriptLimits(max_output=1 << 62)


async def _serve(args: argparse.Namespace, out: Output) -> int:
    folder = _folder(args)
    store: Backend = "rocksdb" if folder else "memory"
    durability = _durability(args)
    # Scripts sent over HTTP run in worker processes: some are ready before the first one.
    workers = ScriptWorkers(prestart=True)
    async with (
        open_runtime(folder, store=store, durability=durability, script_workers=workers) as rt,
        anyio.create_task_group() as nursery,
    ):
        info = await nursery.start(serve, rt, args.host, args.port)
        where = f"token in {folder / TOKEN_FILE}" if folder else f"token {info.token}"
        out.message(
            f"satchel serving {rt.path or 'memory'} on {info.url} "
            f"({durability} durability, {where})"
        )
        # SIGTERM and Ctrl-C stop serving cleanly: the discovery file goes, the store closes.
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break
    return 0


def _durability(args: argparse.Namespace) -> Durability:
    return "process" if args.durability is None else checked_durability(args.durability)


async def _api(args: argparse.Namespace, out: Output) -> int:
    async with connect(_folder(args), durability=args.durability) as client:
        # Caught here, inside the runtime's nurseries, so that it is not wrapped in a group.
        try:
            code: int = await args.command(client, args, out)
        except ApiError as error:
            out.error(f"{error.kind}: {error.message}")
            return 1
        return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error (already printed)
        return done.code if isinstance(done.code, int) else 2
    out = Output(as_json=args.json)
    tune_allocator()  # this process is ours: keep freed chunk buffers warm (satchel._allocator)
    backend = args.backend
    try:
        if args.group == "run":
            return anyio.run(_run, args, out, backend=backend)
        if args.group == "serve":
            return anyio.run(_serve, args, out, backend=backend)
        if args.group == "demo":
            with _open(args) as store:
                return anyio.run(_demo, store, args.name, backend=backend)
        return anyio.run(_api, args, out, backend=backend)
    except SatchelError as error:
        out.error(f"{error.kind}: {error}")
        return 2
    except ApiError as error:
        out.error(f"{error.kind}: {error.message}")
        return 1
    except httpx.TransportError as error:
        out.error(f"ServerUnreachable: {error}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
