"""Commands that move bytes between files and the data: ``artifacts get`` and ``put``,
``export`` and ``import``. Content streams both ways; ``-`` is stdin or stdout."""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import anyio.to_thread

from satchel._cli_errors import invalid
from satchel._cli_output import Output

if TYPE_CHECKING:  # the HTTP client (httpx) is imported by the commands that call
    import httpx

    from satchel._cli_client import Client

_CHUNK = 1 << 20
STDIO = "-"


def _artifact_path(args: argparse.Namespace, suffix: str = "") -> str:
    return f"/sessions/{args.session}/artifacts/{args.name}{suffix}"


async def artifacts_get(client: Client, args: argparse.Namespace, out: Output) -> int:
    params = {"version": args.version}
    if args.metadata:
        out.data(await client.call("GET", _artifact_path(args, "/metadata"), params=params))
        return 0
    target = None if args.output in (None, STDIO) else Path(args.output)
    with _written(target) as sink:
        async with client.stream("GET", _artifact_path(args), params=params) as answer:
            size = await _copy(answer, sink, out, args.name)
            version = answer.headers.get("x-satchel-version")
    if target is not None and out.as_json:
        out.data({"name": args.name, "version": int(version or 0), "size": size,
                  "output": str(target)})  # fmt: skip
    return 0


async def artifacts_put(client: Client, args: argparse.Namespace, out: Output) -> int:
    sizes = [_readable(Path(name)) if name != STDIO else None for name in args.files]
    if args.name is not None and len(args.files) > 1:
        raise invalid("--name names one file; give one file")
    if STDIO in args.files and args.name is None:
        raise invalid("content from stdin (-) needs --name")
    headers = {} if args.metadata is None else {"X-Satchel-Metadata": json.dumps(args.metadata)}
    params = {"type": args.type, "tags": args.tag or None, "mime_type": args.mime_type}
    stored = []
    with out.progress(transfer=True) as progress:
        known = None if None in sizes else sum(s or 0 for s in sizes)
        overall = progress.add_task("storing", total=known)
        for name, size in zip(args.files, sizes, strict=True):
            length = {} if size is None else {"Content-Length": str(size)}
            chunks = _chunks(name, lambda n: progress.advance(overall, n))
            ref = await client.call(
                "PUT",
                f"/sessions/{args.session}/artifacts/{args.name or Path(name).name}",
                params=params,
                headers={**headers, **length},
                content=chunks,
            )
            stored.append(ref)
    if out.as_json:
        out.data(stored)
    for ref in [] if out.as_json else stored:
        out.message(f"{ref['name']} v{ref['version']} {ref['size']} bytes {ref['id']}")
    return 0


async def export(client: Client, args: argparse.Namespace, out: Output) -> int:
    with _written(args.output) as sink:
        async with client.stream("GET", f"/sessions/{args.session}/export") as answer:
            size = await _copy(answer, sink, out, f"exporting {args.session}")
    if out.as_json:
        out.data({"session_id": args.session, "output": str(args.output), "size": size})
    else:
        out.message(f"exported {args.session} to {args.output}")
    return 0


async def import_(client: Client, args: argparse.Namespace, out: Output) -> int:
    size = _readable(args.file)
    with out.progress(transfer=True) as progress:
        task = progress.add_task(f"importing {args.file.name}", total=size)
        report = await client.call(
            "POST",
            "/import?new_id=true" if args.new_id else "/import",
            content=_chunks(str(args.file), lambda n: progress.advance(task, n)),
            headers={"Content-Length": str(size)},
        )
    out.data(report)
    return 0


async def _copy(answer: httpx.Response, sink: IO[bytes], out: Output, label: str) -> int:
    """Write a streamed answer to ``sink``; how many bytes."""
    total = int(answer.headers.get("content-length", 0)) or None
    written = 0
    with out.progress(transfer=True) as progress:
        task = progress.add_task(label, total=total)
        async for chunk in answer.aiter_bytes():
            sink.write(chunk)
            written += len(chunk)
            progress.advance(task, len(chunk))
    sink.flush()
    return written


@contextmanager
def _written(path: Path | None) -> Iterator[IO[bytes]]:
    """A file to write ``path`` through (stdout for ``None``): ``PATH.partial`` until it is
    complete, then renamed, so a broken transfer never leaves a file that looks whole."""
    if path is None:
        yield sys.stdout.buffer
        return
    staged = path.with_name(path.name + ".partial")
    try:
        sink = staged.open("wb")
    except OSError as error:
        raise invalid(f"cannot write {path}: {error.strerror}") from None
    try:
        with sink:
            yield sink
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    os.replace(staged, path)


def _readable(path: Path) -> int:
    """The size of the regular file at ``path``, refused with a plain message if it is not
    one this process can read."""
    try:
        info = path.stat()
    except OSError as error:
        raise invalid(f"cannot read {path}: {error.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise invalid(f"cannot read {path}: it is a folder, not a file")
    if not os.access(path, os.R_OK):
        raise invalid(f"cannot read {path}: permission denied")
    return info.st_size


async def _chunks(name: str, advance: Callable[[int], None]) -> AsyncIterator[bytes]:
    """The content of file ``name`` (stdin for ``-``), in chunks."""
    with _opened(name) as source:
        while chunk := await _read(source, name == STDIO):
            advance(len(chunk))
            yield chunk
            await anyio.lowlevel.checkpoint()


@contextmanager
def _opened(name: str) -> Iterator[IO[bytes]]:
    if name == STDIO:
        yield sys.stdin.buffer
        return
    try:
        source = Path(name).open("rb")  # noqa: SIM115 - closed below, once opening succeeded
    except OSError as error:
        raise invalid(f"cannot read {name}: {error.strerror}") from None
    with source:
        yield source


async def _read(source: IO[bytes], waits: bool) -> Any:
    # A pipe may keep a read waiting: in a thread, so the event loop runs meanwhile.
    if waits:
        return await anyio.to_thread.run_sync(source.read, _CHUNK)
    return source.read(_CHUNK)
