"""The command line's grammar: every command, its arguments and their help."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn, TypeAlias, get_args

from satchel import _cli_commands as cmd
from satchel import _cli_extras as extras
from satchel import _cli_files as files
from satchel._cli_commands import Command
from satchel._cli_errors import UsageError
from satchel._http_limits import DEFAULT_MAX_JSON_BYTES
from satchel._version import __version__
from satchel.storage import Durability

DESCRIPTION = (
    "satchel keeps agent sessions and their artifacts in a data folder. Each command works "
    "on that folder directly, or through the `satchel serve` that holds it."
)
_LOG_LEVELS = ("debug", "info", "warning", "error")
Group: TypeAlias = "argparse._SubParsersAction[Parser]"


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises ``UsageError`` instead of printing and exiting, so
    a refused command line is reported like any failure (as JSON with ``--json``)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self.format_usage(), message)


_MAX_ARTIFACT_HELP = (
    "the largest artifact a local command or serve accepts, in bytes (default 100 MiB; "
    "in Python: open_runtime(limits=BlobLimits(max_size=N)))"
)


_STORE_HELP = "a PostgreSQL store, postgresql://… (default $SATCHEL_STORE, else a data folder)"
_OBJECTS_HELP = (
    "with --store: an S3 bucket for blob values of 64 KiB and more, s3://bucket?endpoint=… "
    "(default $SATCHEL_OBJECTS)"
)


def _common() -> Parser:
    """Options every command takes (given before or after the command)."""
    common = Parser(add_help=False)
    place = common.add_mutually_exclusive_group()
    place.add_argument("--data", type=Path, default=argparse.SUPPRESS, metavar="DIR",
                       help="data folder (default $SATCHEL_DATA, else ./.satchel)")  # fmt: skip
    place.add_argument("--memory", action="store_true", default=argparse.SUPPRESS,
                       help="an in-memory store: keep nothing")  # fmt: skip
    place.add_argument("--store", default=argparse.SUPPRESS, metavar="URL",
                       help=_STORE_HELP)  # fmt: skip
    common.add_argument("--objects", default=argparse.SUPPRESS, metavar="URL",
                        help=_OBJECTS_HELP)  # fmt: skip
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON (errors too, on stdout)")  # fmt: skip
    common.add_argument("--durability", choices=get_args(Durability), default=argparse.SUPPRESS,
                        help="process (default: a write survives a killed process) or machine "
                        "(it survives power loss)")  # fmt: skip
    common.add_argument("--max-artifact-bytes", type=int, default=argparse.SUPPRESS, metavar="N",
                        help=_MAX_ARTIFACT_HELP)  # fmt: skip
    common.add_argument("--backend", choices=("trio", "asyncio"), default=argparse.SUPPRESS,
                        help="the event loop the command runs on (default asyncio for serve "
                        "and ui, else trio)")  # fmt: skip
    return common


class Commands:
    """Adds leaf commands, each with the common options, to a group."""

    def __init__(self, common: Parser) -> None:
        self.common = common

    def leaf(
        self,
        group: Group,
        name: str,
        command: Command | None,
        help_text: str,
        *,
        creates: bool = False,
    ) -> argparse.ArgumentParser:
        """A command; ``creates``: it may make the data folder (it can succeed on nothing)."""
        parser = group.add_parser(name, help=help_text, description=help_text,
                                  parents=[self.common])  # fmt: skip
        parser.set_defaults(command=command, creates=creates)
        return parser

    def group(self, commands: Group, name: str, help_text: str) -> Group:
        """A command with verbs of its own."""
        parser = commands.add_parser(name, help=help_text, description=help_text)
        return parser.add_subparsers(dest="verb", required=True, metavar="VERB")


def _session_commands(commands: Group, c: Commands) -> None:
    group = c.group(commands, "sessions", "list, show, create and steer sessions")
    listing = c.leaf(group, "list", cmd.sessions_list, "sessions matching filters")
    listing.add_argument("--status", help="only sessions in this status (active, suspended, ...)")
    listing.add_argument("--tag", action="append", help="must have this tag (repeatable)")
    listing.add_argument("--parent", metavar="ID", help="children of this session")
    listing.add_argument("--search", help="substring of name or description")
    listing.add_argument("--app", help="only sessions of this application")
    listing.add_argument("--user", help="only sessions of this user (with --app)")
    listing.add_argument("--order-by", choices=("created_at", "updated_at", "name"),
                         help="sort field (default created_at)")  # fmt: skip
    listing.add_argument("--desc", action="store_true", help="newest (or last) first")
    _paging(listing)
    c.leaf(group, "show", cmd.sessions_show, "one session").add_argument("session", help="id")
    create = c.leaf(group, "create", cmd.sessions_create, "a new session; prints its id",
                    creates=True)  # fmt: skip
    create.add_argument("--name", help="a name for people")
    create.add_argument("--description", help="what it is for")
    create.add_argument("--tag", action="append", help="a tag (repeatable)")
    create.add_argument("--metadata", type=cmd.json_arg, help="custom metadata, a JSON object")
    create.add_argument("--parent", metavar="ID", help="parent session id")
    create.add_argument("--key", help="a key of your own: the session's id derives from it")
    create.add_argument("--app", help="the application it belongs to")
    create.add_argument("--user", help="the user it belongs to (needs --app)")
    create.add_argument("--config", type=cmd.json_arg, metavar="JSON",
                        help='quotas and policies, JSON (e.g. {"max_artifacts": 10})')  # fmt: skip
    update = c.leaf(group, "update", cmd.sessions_update,
                    "change a session's name, tags, metadata or idle timeout")  # fmt: skip
    update.add_argument("session", help="id")
    update.add_argument("--name", help="the new name")
    update.add_argument("--description", help="the new description")
    tags = update.add_mutually_exclusive_group()
    tags.add_argument("--tag", action="append", help="a tag (repeatable): replaces every tag")
    tags.add_argument("--no-tags", action="store_true", help="remove every tag")
    update.add_argument("--metadata", type=cmd.json_arg, metavar="JSON",
                        help="the new custom metadata, a JSON object (replaces it)")  # fmt: skip
    idle = update.add_mutually_exclusive_group()
    idle.add_argument("--idle-timeout", type=float, metavar="S",
                      help="suspend the session after S seconds without operations")  # fmt: skip
    idle.add_argument("--no-idle-timeout", action="store_true", help="remove the idle timeout")
    for verb in ("suspend", "resume", "complete", "fail", "archive"):
        leaf = c.leaf(group, verb, cmd.sessions_transition, f"{verb} a session")
        leaf.add_argument("session", help="id")
        leaf.set_defaults(verb=verb)
        if verb == "fail":
            leaf.add_argument("--reason", help="why it failed")
    delete = c.leaf(group, "delete", cmd.sessions_delete, "delete a session")
    delete.add_argument("session", help="id")
    delete.add_argument("--cascade", action="store_true", help="and its child sessions")
    fork = c.leaf(group, "fork", cmd.sessions_fork, "fork a session; prints the new id")
    fork.add_argument("session", help="id")
    fork.add_argument("--at", type=int, metavar="SEQ", help="journal sequence (default: latest)")
    fork.add_argument("--name", help="the fork's name")


def _state_commands(commands: Group, c: Commands) -> None:
    group = c.group(commands, "state", "a session's variables")
    c.leaf(group, "list", extras.state_list, "every variable and its value").add_argument(
        "session", help="id"
    )
    get = c.leaf(group, "get", extras.state_get, "one variable's value, as JSON")
    get.add_argument("session", help="id")
    get.add_argument("key", help="the variable")
    put = c.leaf(group, "set", extras.state_set, "set a variable")
    put.add_argument("session", help="id")
    put.add_argument("key", help="the variable")
    put.add_argument("value", type=cmd.json_arg, help='its value, JSON (a string is "quoted")')
    delete = c.leaf(group, "delete", extras.state_delete, "delete a variable")
    delete.add_argument("session", help="id")
    delete.add_argument("key", help="the variable")


def _artifact_commands(commands: Group, c: Commands) -> None:
    group = c.group(commands, "artifacts", "store, read and share artifacts")
    _named(c.leaf(group, "list", cmd.artifacts_list, "latest version of each"), name=False)
    get = _named(c.leaf(group, "get", files.artifacts_get, "content to stdout or a file"))
    get.add_argument("--version", type=int, help="this version (default: the latest)")
    get.add_argument("-o", "--output", help="write here instead of stdout (- is stdout)")
    get.add_argument("--metadata", action="store_true", help="the metadata, not the content")
    put = c.leaf(group, "put", files.artifacts_put, "store files (bulk)")
    put.add_argument("session", help="id")
    put.add_argument("files", nargs="+", metavar="FILE", help="a file to store (- is stdin)")
    put.add_argument("--name", help="artifact name (one file only; default: its base name)")
    put.add_argument("--type", default="user_input", help="artifact type (default user_input)")
    put.add_argument("--tag", action="append", help="a tag (repeatable)")
    put.add_argument("--mime-type", help="content type (default: guessed from the name)")
    put.add_argument("--metadata", type=cmd.json_arg, help="custom metadata, a JSON object")
    _named(c.leaf(group, "versions", cmd.artifacts_versions, "every version"))
    _query(c.leaf(group, "query", cmd.artifacts_query, "artifacts matching filters"))
    delete = _named(c.leaf(group, "delete", cmd.artifacts_delete, "a version, or every one"))
    delete.add_argument("--version", type=int, help="only this version")
    share = _named(c.leaf(group, "share", cmd.artifacts_share, "grant another session"))
    share.add_argument("target", help="the session granted")
    share.add_argument("--permission", choices=("read", "write", "admin"), default="read",
                       help="what it may do (default read)")  # fmt: skip
    revoke = _named(c.leaf(group, "revoke", cmd.artifacts_revoke, "take a grant back"))
    revoke.add_argument("target", help="the session whose grant goes")
    _named(c.leaf(group, "audit", extras.artifacts_audit, "access decisions on a shared name"))


def _named(parser: argparse.ArgumentParser, *, name: bool = True) -> argparse.ArgumentParser:
    parser.add_argument("session", help="id of the session holding it")
    if name:
        parser.add_argument("name", help="artifact name")
    return parser


def _query(query: argparse.ArgumentParser) -> None:
    query.add_argument("--session", metavar="ID", help="only this session's")
    query.add_argument("--type", help="only this artifact type")
    query.add_argument("--name", help="case-insensitive substring of the name")
    query.add_argument("--tag", action="append", help="must have this tag (repeatable)")
    query.add_argument("--metadata", type=cmd.json_arg, help="custom key/values, JSON")
    query.add_argument("--min-size", type=int, metavar="BYTES", help="at least this large")
    query.add_argument("--max-size", type=int, metavar="BYTES", help="at most this large")
    query.add_argument("--all-versions", action="store_true", help="not only the latest")
    query.add_argument("--order-by", choices=("created_at", "size", "name"),
                       help="sort field (default created_at)")  # fmt: skip
    query.add_argument("--desc", action="store_true", help="largest (or last) first")
    _paging(query)


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--offset", type=int, metavar="N", help="skip the first N")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N")


def _other_commands(commands: Group, c: Commands) -> None:
    line = c.leaf(commands, "timeline", cmd.timeline, "a session's journal")
    line.add_argument("session", help="id")
    _paging(line)
    again = c.leaf(commands, "replay", cmd.replay, "replay a session (it is not changed)")
    again.add_argument("session", help="id")
    again.add_argument("--mode", choices=("simulate", "exact", "modified", "debug"),
                       default="simulate", help="how (default simulate)")  # fmt: skip
    again.add_argument("--at", type=int, metavar="SEQ", help="stop at this journal sequence")
    again.add_argument("--set", type=_assignment, action="append", metavar="KEY=JSON",
                       help="a variable's value for modified replay (repeatable)")  # fmt: skip
    check = c.leaf(commands, "check", cmd.check, "check blobs and sessions")
    check.add_argument("--fix", action="store_true", help="repair what can be repaired")
    c.leaf(commands, "gc", cmd.gc, "passivate idle sessions, free orphans, compact")
    out = c.leaf(commands, "export", files.export, "a session as an archive file")
    out.add_argument("session", help="id")
    out.add_argument("-o", "--output", type=Path, required=True, help="the archive to write")
    into = c.leaf(commands, "import", files.import_, "a session from an archive file",
                  creates=True)  # fmt: skip
    into.add_argument("file", type=Path, help="the archive")
    into.add_argument("--new-id", action="store_true",
                      help="fresh session and artifact ids: import a copy")  # fmt: skip
    keep = c.leaf(commands, "backup", extras.backup, "copy the whole store into a new folder")
    keep.add_argument("path", type=Path, help="the new folder (a data folder once written)")
    actors = c.leaf(commands, "actors", cmd.actors, "live actors: list, show, steer")
    actors.add_argument("verb", choices=("list", "show", "passivate", "restart", "stop"),
                        help="what to do")  # fmt: skip
    actors.add_argument("id", nargs="?", help="actor id (a session id for sessions)")
    actors.add_argument("--kind", help="actor kind (default: every kind; session for verbs)")
    c.leaf(commands, "stats", cmd.stats, "runtime statistics")
    plans = c.leaf(commands, "schedules", extras.schedules,
                   "scheduled replays (run while `satchel serve` holds the folder)")  # fmt: skip
    plans.add_argument("verb", choices=("list", "add", "cancel", "results"), help="what to do")
    plans.add_argument("id", nargs="?",
                       help="session id (list, add) or schedule id (cancel, results)")  # fmt: skip
    plans.add_argument("--every", type=float, metavar="S", help="seconds between runs")
    plans.add_argument("--when", help="first run: RFC 3339 time or epoch seconds")
    plans.add_argument("--mode", default="simulate", help="replay mode (default simulate)")


def _assignment(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("expected KEY=JSON")
    return key, cmd.json_arg(value)


def _local_commands(commands: Group, c: Commands, serve_options: set[str]) -> None:
    run = c.leaf(commands, "run", None, "run a Lua script (docs/lua.md)", creates=True)
    run.add_argument("script", type=Path, help="the Lua file")
    run.add_argument("args", nargs="*", help="script arguments (after --): the global ARGS")
    run.add_argument("--session", metavar="ID", help="run as a session script of session ID")
    run.add_argument("--allow-io", action="store_true", help="give the script io and all of os")
    restore = c.leaf(commands, "restore", None,
                     "copy a backup into the (new or empty) data folder, and check it",
                     creates=True)  # fmt: skip
    restore.add_argument("backup", type=Path, help="the backup folder")
    serve = c.leaf(commands, "serve", None, "serve the HTTP API (docs/http.md)",
                   creates=True)  # fmt: skip
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8470, help="port (default 8470; 0: any)")
    if "log_level" in serve_options:
        serve.add_argument("--log-level", choices=_LOG_LEVELS, default="info",
                           help="what the server logs (default info)")  # fmt: skip
    if "max_json_bytes" in serve_options:
        serve.add_argument("--max-json-bytes", type=int, default=DEFAULT_MAX_JSON_BYTES,
                           metavar="N",
                           help="largest JSON request body (default 16 MiB)")  # fmt: skip
    serve.add_argument("--token-file", type=Path, metavar="FILE",
                       help="the token every request needs (default $SATCHEL_TOKEN, else the "
                            "data folder's)")  # fmt: skip
    ui = c.leaf(commands, "ui", None,
                "open the web inspector in a browser, through the server holding the data "
                "folder or one started here (docs/ui.md)", creates=True)  # fmt: skip
    ui.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=8470, help="port (default 8470; 0: any)")
    ui.add_argument("--no-browser", action="store_true",
                    help="print the login link only; open no browser")  # fmt: skip
    ui.set_defaults(token_file=None, cluster=False, node_id=None, advertise=None,
                    lease_ttl=None, log_level="warning")  # fmt: skip
    cluster = serve.add_argument_group("cluster (docs/cluster.md)")
    cluster.add_argument("--cluster", action="store_true",
                         help="serve as one node of a cluster on the --store")  # fmt: skip
    cluster.add_argument("--node-id", metavar="ID",
                         help="this node's id (default: host name and port)")  # fmt: skip
    cluster.add_argument("--advertise", metavar="URL",
                         help="where other nodes reach it (default: where it listens)")  # fmt: skip
    cluster.add_argument("--lease-ttl", type=float, default=None, metavar="S",
                         help="seconds a dead node's sessions wait (default 10)")  # fmt: skip


def parser(serve_options: set[str]) -> argparse.ArgumentParser:
    """The whole command line; ``serve_options``: keywords ``satchel._serve.serve`` takes."""
    c = Commands(_common())
    top = Parser(prog="satchel", description=DESCRIPTION)
    top.add_argument("--version", action="version", version=f"satchel {__version__}",
                     help="print the version and exit")  # fmt: skip
    place = top.add_mutually_exclusive_group()
    place.add_argument("--data", type=Path, metavar="DIR",
                       help="data folder (default $SATCHEL_DATA, else ./.satchel)")  # fmt: skip
    place.add_argument("--memory", action="store_true", help="an in-memory store: keep nothing")
    place.add_argument("--store", metavar="URL", help=_STORE_HELP)
    top.add_argument("--objects", metavar="URL", help=_OBJECTS_HELP)
    top.add_argument("--json", action="store_true", help="print JSON (errors too, on stdout)")
    top.add_argument("--durability", choices=get_args(Durability),
                     help="process (default) or machine (docs/durability.md)")  # fmt: skip
    top.add_argument("--max-artifact-bytes", type=int, metavar="N", help=_MAX_ARTIFACT_HELP)
    top.add_argument("--backend", choices=("trio", "asyncio"), default=None,
                     help="the event loop (default asyncio to serve, else trio)")  # fmt: skip
    commands = top.add_subparsers(dest="group", required=True, metavar="COMMAND")
    _session_commands(commands, c)
    _state_commands(commands, c)
    _artifact_commands(commands, c)
    _other_commands(commands, c)
    _local_commands(commands, c, serve_options)
    return top
