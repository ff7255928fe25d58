"""The ``satchel`` command line: ``main`` parses, picks where the command runs and reports
how it ended (``satchel._cli_errors``)."""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import signal
import socket
import sys
import webbrowser
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import anyio

from satchel._allocator import tune_allocator
from satchel._backup import restore_backup
from satchel._cli_errors import UsageError, invalid, report
from satchel._cli_output import Output
from satchel._cli_parser import parser
from satchel._runtime import open_runtime
from satchel._serve import MIN_TOKEN, TOKEN_FILE, ServerInfo, find_server, serve
from satchel.actors.cluster import Node
from satchel.scripting import ScriptLimits, ScriptWorkers
from satchel.storage import BlobLimits, Durability, checked_durability


class _LocalNoise(logging.Filter):
    """What a local command keeps out of its stderr. Scheduled replays run under ``satchel
    serve``: a short command opens the folder and closes it before a due one is handled, the
    tick stays stored for the server, and the warning about it would follow every command.
    The app's log of a failed request would repeat, with a traceback, the error the command
    reports itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "satchel.http":
            return False
        return not (record.name == "satchel.runtime" and "kept for later" in str(record.msg))


@contextmanager
def _quiet_locally() -> Iterator[None]:
    noise = _LocalNoise()
    loggers = [logging.getLogger(name) for name in ("satchel.http", "satchel.runtime")]
    for logger in loggers:
        logger.addFilter(noise)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(noise)


def _networked(args: argparse.Namespace) -> tuple[str, str | None] | None:
    """The PostgreSQL store (and S3 bucket) the command runs on: ``--store``, else
    ``$SATCHEL_STORE`` unless ``--data`` or ``--memory`` is given; ``None`` for a folder or
    memory."""
    if args.memory or args.data is not None:
        store = None
    else:
        store = args.store or os.environ.get("SATCHEL_STORE") or None
    if store is None:
        if args.objects is not None:
            raise invalid("--objects goes with a PostgreSQL store (--store postgresql://…)")
        return None
    return store, args.objects or os.environ.get("SATCHEL_OBJECTS") or None


def _store_of(args: argparse.Namespace, folder: Path | None) -> dict[str, Any]:
    """``open_runtime``'s ``store`` and ``objects`` for the command's place."""
    networked = _networked(args)
    if networked is not None:
        return {"store": networked[0], "objects": networked[1]}
    return {"store": "rocksdb" if folder else "memory"}


def _folder(args: argparse.Namespace) -> Path | None:
    if args.memory or _networked(args) is not None:
        return None
    if args.data is not None:
        return Path(args.data)
    return Path(os.environ.get("SATCHEL_DATA") or ".satchel")


def _existing(args: argparse.Namespace) -> Path | None:
    """The data folder; a command that cannot make anything from nothing refuses a folder
    that is not there rather than create an empty store in it."""
    folder = _folder(args)
    if folder is not None and not args.creates and not folder.exists():
        raise invalid(
            f"no data folder at {str(folder)!r} (sessions create, import, run, serve and "
            "restore make one; --data DIR or $SATCHEL_DATA names another)"
        )
    return folder


async def _restore(args: argparse.Namespace, out: Output) -> int:
    folder = _folder(args)
    if folder is None:
        raise invalid("restore needs a data folder to write (--data DIR), not --memory or --store")
    report = await restore_backup(args.backup, folder)
    found = {"data": str(folder), "clean": report.clean}
    out.data(found) if out.as_json else out.message(f"restored into {folder}; it checks clean")
    return 0


async def _run(args: argparse.Namespace, out: Output) -> int:
    try:
        source = args.script.read_bytes()
    except OSError as error:
        raise invalid(f"cannot read {args.script}: {error.strerror}") from None
    folder = _folder(args)
    server = None if folder is None else find_server(folder)
    if server is not None:
        if args.allow_io:
            raise invalid("--allow-io runs only in-process, not on a server")
        return await _run_remote(args, source, folder, out)
    lines: list[str] = []
    async with open_runtime(
        folder, **_store_of(args, folder), durability=_durability(args), limits=_limits(args)
    ) as rt:
        results = await rt.run_lua(
            source,
            name=args.script.name,
            args=args.args,
            session_id=args.session,
            allow_io=args.allow_io,
            # Under --json the lines are collected into the answer, else they go straight to
            # stdout as they come.
            output=lines.append if out.as_json else print,
            # The operator's own script prints straight to stdout: nothing to bound. A
            # session script keeps the default output limit.
            limits=None if args.session else _UNBOUNDED_OUTPUT,
        )
    _results(out, results, lines)
    return 0


async def _run_remote(
    args: argparse.Namespace, source: bytes, folder: Path | None, out: Output
) -> int:
    from satchel._cli_client import connect  # its HTTP client only for commands that call

    async with connect(folder, durability=args.durability, limits=_limits(args)) as client:
        body = {
            "source": source.decode(errors="replace"),
            "args": args.args,
            "session_id": args.session,
            "name": args.script.name,
        }
        answer = await client.call("POST", "/lua", json=body)
    if not out.as_json:
        for line in answer["output"]:
            print(line)
    _results(out, answer["results"], answer["output"])
    return 0


def _results(out: Output, results: list[Any], lines: list[str]) -> None:
    """What a script returned: one value a line (strings as they are, others as JSON), or
    with ``--json`` an object of its results and its printed lines."""
    if out.as_json:
        out.data({"results": _plain(results), "output": lines})
        return
    for value in _plain(results):
        out.message(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def _plain(value: Any) -> Any:
    """A Lua result as JSON can hold it (bytes as text)."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    return value


_UNBOUNDED_OUTPUT = ScriptLimits(max_output=1 << 62)


async def _ui(args: argparse.Namespace, out: Output) -> int:
    """Open the inspector: through the server holding the folder, or one served here."""
    folder = _folder(args)
    held = find_server(folder) if folder is not None else None
    if held is not None:
        _open_inspector(held.url, held.token, args, out)
        return 0
    return await _serve(
        args, out, then=lambda info: _open_inspector(info.url, info.token, args, out)
    )


def _open_inspector(url: str, token: str, args: argparse.Namespace, out: Output) -> None:
    """Print a one-time login link to the inspector, and open it unless ``--no-browser``."""
    from satchel._ui import LINK_S, login_link

    link = url + login_link(token)
    if out.as_json:
        out.data({"url": f"{url}/ui/", "login": link})
    else:
        out.message(f"satchel inspector: {link} (logs in once, within {LINK_S} s)")
    sys.stdout.flush()
    if not args.no_browser:
        webbrowser.open(link)


async def _serve(
    args: argparse.Namespace, out: Output, then: Callable[[ServerInfo], None] | None = None
) -> int:
    folder = _folder(args)
    durability = _durability(args)
    options = {name: getattr(args, name) for name in _SERVE_OPTIONS if hasattr(args, name)}
    # Scripts sent over HTTP run in worker processes: some are ready before the first one.
    workers = ScriptWorkers(prestart=True)
    async with (
        open_runtime(
            folder,
            **_store_of(args, folder),
            durability=durability,
            script_workers=workers,
            limits=_limits(args),
            node=_node(args),
        ) as rt,
        anyio.create_task_group() as nursery,
    ):
        options["token"] = _token(args)
        try:
            info = await nursery.start(_serving, rt, args.host, args.port, options)
        except OSError as error:  # the port is taken, or the address is not this machine's
            raise invalid(f"cannot serve on {args.host}:{args.port}: {error.strerror}") from None
        if args.token_file is not None:
            token = {"token_file": str(args.token_file)}
        elif folder and options["token"] is None:
            token = {"token_file": str(folder / TOKEN_FILE)}
        else:
            token = {"token": info.token}
        where = str(rt.path or ("a PostgreSQL store" if rt.store.networked else "memory"))
        if out.as_json:
            out.data({"url": info.url, "data": where, "durability": durability, **token})
        else:
            held = f"token in {token['token_file']}" if "token_file" in token else "its token"
            if "token" in token and options["token"] is None:
                held = f"token {info.token}"
            out.message(f"satchel serving {where} on {info.url} ({durability} durability, {held})")
        sys.stdout.flush()
        if then is not None:
            then(info)
        # SIGTERM and Ctrl-C stop serving cleanly: the discovery file goes, the store closes.
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break
    return 0


def _token(args: argparse.Namespace) -> str | None:
    """The token ``--token-file`` or ``$SATCHEL_TOKEN`` gives (``None``: the folder's)."""
    if args.token_file is not None:
        try:
            token = args.token_file.read_text().strip()
        except OSError as error:
            raise invalid(f"cannot read {args.token_file}: {error.strerror}") from None
        if len(token) < MIN_TOKEN:
            raise invalid(f"the token in {args.token_file} is under {MIN_TOKEN} characters")
        return str(token)
    token = os.environ.get("SATCHEL_TOKEN")
    if token is not None and len(token.strip()) < MIN_TOKEN:
        raise invalid(f"$SATCHEL_TOKEN is under {MIN_TOKEN} characters")
    return token.strip() if token else None


def _node(args: argparse.Namespace) -> Node | None:
    """This server as a cluster node (``--cluster``), or ``None``."""
    if not args.cluster:
        for flag in ("node_id", "advertise", "lease_ttl"):
            if getattr(args, flag) is not None:
                raise invalid(f"--{flag.replace('_', '-')} goes with --cluster")
        return None
    if _networked(args) is None:
        raise invalid(
            "--cluster needs a PostgreSQL store (--store postgresql://… or $SATCHEL_STORE)"
        )
    if _token(args) is None:
        raise invalid("--cluster needs the cluster's token (--token-file FILE or $SATCHEL_TOKEN)")
    # A node id is at most 64 characters; host names (a pod's, say) run to 63.
    where = socket.gethostname()[:50]
    node_id = args.node_id or (f"{where}-{args.port}" if args.port else f"{where}-{os.getpid()}")
    ttl = 10.0 if args.lease_ttl is None else args.lease_ttl
    return Node(node_id, args.advertise or "", lease_ttl_s=ttl, token=_token(args))


#: The ``serve`` keywords the CLI has flags for, when ``satchel._serve.serve`` takes them.
_SERVE_OPTIONS = ("log_level", "max_json_bytes")


async def _serving(
    rt: Any, host: str, port: int, options: dict[str, Any], *, task_status: Any
) -> None:
    """``serve``, with a bind error raised as itself (not inside a task group's group)."""
    try:
        await serve(rt, host, port, task_status=task_status, **options)
    except BaseExceptionGroup as group:
        bind = group.subgroup(OSError)
        if bind is not None:
            raise _first(bind) from None
        raise


def _first(group: BaseExceptionGroup[Any]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _limits(args: argparse.Namespace) -> BlobLimits | None:
    """The blob limits ``--max-artifact-bytes`` asks for, if it was given."""
    if args.max_artifact_bytes is None:
        return None
    return BlobLimits(max_size=args.max_artifact_bytes)


def _durability(args: argparse.Namespace) -> Durability:
    return "process" if args.durability is None else checked_durability(args.durability)


async def _api(args: argparse.Namespace, out: Output) -> int:
    from satchel._cli_client import connect  # its HTTP client only for commands that call

    networked = _networked(args) or (None, None)
    async with connect(
        _existing(args),
        durability=args.durability,
        limits=_limits(args),
        store=networked[0],
        objects=networked[1],
    ) as client:
        code: int = await args.command(client, args, out)
        return code


def _parse(argv: list[str]) -> argparse.Namespace:
    """The parsed command line. For ``run``, what follows ``--`` is the script's (so the
    command's options may come after the script); ``--`` means what it always does
    elsewhere."""
    grammar = parser(set(inspect.signature(serve).parameters) & set(_SERVE_OPTIONS))
    if "--" in argv:
        cut = argv.index("--")
        try:
            args = grammar.parse_args(argv[:cut])
        except UsageError:
            args = None
        if args is not None and args.group == "run":
            args.args = [*args.args, *argv[cut + 1 :]]
            return args
    return grammar.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    given = list(sys.argv[1:] if argv is None else argv)
    out = Output(as_json="--json" in given)
    try:
        args = _parse(given)
    except UsageError as error:
        return report(out, error)
    except SystemExit as done:  # --help or --version (already printed)
        return done.code if isinstance(done.code, int) else 0
    out = Output(as_json=args.json)
    tune_allocator()  # this process is ours: keep freed chunk buffers warm (satchel._allocator)
    work = {"run": _run, "serve": _serve, "ui": _ui, "restore": _restore}.get(args.group, _api)
    serving = args.group in ("serve", "ui")
    # A server on asyncio runs on uvicorn with httptools, several times the requests a
    # second of hypercorn's Trio worker (docs/http.md, "Speed").
    backend = args.backend or ("asyncio" if serving else "trio")
    try:
        with nullcontext() if serving else _quiet_locally():
            return anyio.run(work, args, out, backend=backend)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        return report(out, error)


if __name__ == "__main__":
    sys.exit(main())
