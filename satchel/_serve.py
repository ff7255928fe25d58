"""``satchel serve``: the HTTP app on hypercorn (Trio) or uvicorn (asyncio), with its token
and its discovery file in the data folder, so other commands on that folder find the
server."""

from __future__ import annotations

import gc
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import attrs

from satchel._http_limits import DEFAULT_MAX_JSON_BYTES
from satchel.runtime import current_native
from satchel.runtime._errors import ValidationError

if TYPE_CHECKING:
    from hypercorn.config import Config

    from satchel._runtime import Runtime

TOKEN_FILE = "http-token"
#: A token shorter than this is refused (an empty file or variable meant none).
MIN_TOKEN = 16
SERVER_FILE = "server.json"


@attrs.frozen
class ServerInfo:
    """Where a running server listens, and the token it wants."""

    url: str
    token: str
    pid: int


def load_token(folder: Path | None) -> str:
    """The data folder's token, made on first use (mode 0600); a fresh one in memory."""
    if folder is None:
        return secrets.token_urlsafe(32)
    path = folder / TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        kept = path.read_text().strip()
        if len(kept) < MIN_TOKEN:
            raise ValidationError(
                f"the token in {str(path)!r} is {len(kept)} characters; at least {MIN_TOKEN} "
                "are needed (delete the file to have a new one made)"
            ) from None
        return kept
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token


def find_server(folder: Path) -> ServerInfo | None:
    """The server holding ``folder``, if its discovery file names a live process."""
    try:
        found = json.loads((folder / SERVER_FILE).read_text())
        token = (folder / TOKEN_FILE).read_text().strip()
        url, pid = str(found["url"]), int(found["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by another user
    started = found.get("started")
    if started is not None and started != process_started(pid):
        return None  # the server died and another process got its pid
    return ServerInfo(url, token, pid)


def process_started(pid: int) -> str | None:
    """When process ``pid`` started, in the kernel's clock ticks since boot (Linux; ``None``
    elsewhere): with the pid, it names one process even once pids are reused."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


async def serve(
    rt: Runtime,
    host: str = "127.0.0.1",
    port: int = 8470,
    *,
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
    metrics_open: bool = False,
    log_level: str | None = "info",
    token: str | None = None,
    task_status: anyio.abc.TaskStatus[ServerInfo] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``rt`` over HTTP until cancelled; ``task_group.start`` returns once it listens.

    Runs on the event loop that runs ``rt``: on hypercorn's Trio worker, or on uvicorn
    (with httptools) on asyncio, which costs far less CPU per request. A JSON
    request body over ``max_json_bytes`` is refused with 413. ``GET /metrics`` needs the token
    unless ``metrics_open``. satchel's loggers (the access log ``satchel.http.access`` among
    them) write to stderr at ``log_level`` (debug, info, warning or error) while it serves;
    ``None`` leaves logging to the host. Every request needs ``token`` (by default the data
    folder's, made on first use; a fresh one on a store with no folder). On a cluster node
    (``open_runtime(node=…)``) with no address of its own, the address it listens on is
    registered for the other nodes to forward to.
    """
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValidationError(f"port must be 0..65535, not {port!r}")
    if token is None:
        token = load_token(rt.path)
    elif not isinstance(token, str) or len(token) < MIN_TOKEN:
        raise ValidationError(f"a token is a str of at least {MIN_TOKEN} characters")
    # The web stack is imported here, not with the module: ``import satchel`` (which has
    # ``serve``) would otherwise take ~100 ms more for hypercorn and starlette.
    from hypercorn.config import Config

    from satchel._http import make_app
    from satchel._http_ops import logs_to_stderr
    from satchel._http_protocol import json_protocol_errors

    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    app = make_app(rt, token, max_json_bytes=max_json_bytes, metrics_open=metrics_open)
    json_protocol_errors()
    with logs_to_stderr(log_level), _young_collections_spaced():
        await _serve_app(rt, app, config, token, task_status)


#: While a server runs, the cyclic collector looks at its youngest objects every this many
#: net allocations rather than Python's 700. With 50 requests in hand, each one's objects
#: outlived several young collections, were promoted, and made a full collection (about
#: 30 ms here, the loop stopped) run three times a second: p99 of state writes and reads
#: 40-45 ms; with 7,000, one full collection in 10 s and p99 15 ms (perf/http_notes.md).
GC_YOUNG = 7_000
_spacing: list[tuple[int, int, int]] = []  # the thresholds before, while a server spaces them


@contextmanager
def _young_collections_spaced() -> Iterator[None]:
    """Within: young collections every ``GC_YOUNG`` allocations (at least); the thresholds
    before are back once the last server of the process stops."""
    before = gc.get_threshold()
    if not _spacing:
        gc.set_threshold(max(before[0], GC_YOUNG), *before[1:])
    _spacing.append(before)
    try:
        yield
    finally:
        first = _spacing[0]
        _spacing.pop()
        if not _spacing:
            gc.set_threshold(*first)


async def _serve_app(
    rt: Runtime,
    app: Any,
    config: Config,
    token: str,
    task_status: anyio.abc.TaskStatus[ServerInfo],
) -> None:
    async with anyio.create_task_group() as tasks:
        if current_native().name == "trio":
            from hypercorn.trio import serve as hypercorn_trio_serve

            bound = await tasks.start(hypercorn_trio_serve, app, config)
            url = bound[0]
        else:
            url = await tasks.start(_serve_asyncio, app, config)
        info = ServerInfo(url, token, os.getpid())
        discovery = None if rt.path is None else rt.path / SERVER_FILE
        try:
            await _advertise(rt, url)
            if discovery is not None:
                staged = discovery.with_suffix(".tmp")
                found = {"url": info.url, "pid": info.pid, "started": process_started(info.pid)}
                staged.write_text(json.dumps(found))
                staged.replace(discovery)
            task_status.started(info)
            await anyio.sleep_forever()
        finally:
            if discovery is not None:
                discovery.unlink(missing_ok=True)
            tasks.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await app.state.peers.aclose()


async def _advertise(rt: Runtime, url: str) -> None:
    """On a cluster node given no address: register ``url``, where it listens."""
    from satchel.actors.cluster import SessionPlacement

    placement = rt.supervisor.placement
    if isinstance(placement, SessionPlacement) and not placement.node.address:
        await placement.advertise(url)


async def _serve_asyncio(
    app: Any, config: Config, *, task_status: anyio.abc.TaskStatus[str]
) -> None:
    """uvicorn (``_http_server``: several times less CPU per request than hypercorn's
    asyncio worker) on sockets bound here, so port 0 can be reported; stopped gracefully
    when this task is cancelled."""
    from satchel._http_server import serve_uvicorn

    sockets = config.create_sockets().insecure_sockets
    try:
        await serve_uvicorn(
            app,
            sockets,
            keep_alive_s=config.keep_alive_timeout,
            graceful_s=config.graceful_timeout,
            task_status=task_status,
        )
    finally:
        for sock in sockets:
            sock.close()
