"""The ``satchel`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from satchel._errors import SatchelError
from satchel._runtime import open_runtime
from satchel._version import __version__
from satchel.actors import check_sessions
from satchel.storage import Batch, Store, open_store
from satchel.storage._keys import DEMO

_DEMO_TEXT = (
    "satchel keeps what agent sessions make: every artifact is hashed with BLAKE3, stored once "
    "however often it is saved, compressed with LZ4 when that pays, and verified on every read.\n"
) * 64


def _open(args: argparse.Namespace) -> Store:
    return open_store(
        None if args.memory else args.data, backend="memory" if args.memory else "rocksdb"
    )


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


async def _check(store: Store, fix: bool) -> int:
    report = await store.check(fix=fix)
    print(f"blobs: {report.blobs}, references: {report.references}")
    for label, problems in (
        ("dangling reference", report.dangling_references),
        ("refcount mismatch", report.refcount_mismatches),
        ("orphan chunks", report.orphan_chunks),
        ("corrupt blob", report.corrupt_blobs),
    ):
        for problem in problems:
            print(f"{label}: {problem}")
    sessions = check_sessions(store.kv, fix=fix)
    print(f"sessions: {sessions.sessions}")
    for problem in sessions.problems:
        print(f"session problem: {problem}")
    clean = report.clean and sessions.clean
    print("clean" if clean else ("repaired what could be" if fix else "problems found"))
    return 0 if clean or (fix and not report.corrupt_blobs) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="satchel", description=__doc__)
    parser.add_argument("--version", action="version", version=f"satchel {__version__}")
    place = parser.add_mutually_exclusive_group()
    place.add_argument(
        "--data", type=Path, help="data folder (default $SATCHEL_DATA or ./.satchel)"
    )
    place.add_argument("--memory", action="store_true", help="keep nothing: an in-memory store")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="store an artifact, read it back, check the store")
    demo.add_argument("--name", default="hello.txt", help="artifact name (default hello.txt)")
    check = commands.add_parser(
        "check", help="compare the blob index with its data, and sessions with their indexes"
    )
    check.add_argument("--fix", action="store_true", help="repair what can be repaired")
    run = commands.add_parser("run", help="run a Lua script (see docs/lua.md)")
    run.add_argument("script", type=Path, help="the Lua file")
    run.add_argument("args", nargs="*", help="script arguments (after --): the global ARGS")
    run_place = run.add_mutually_exclusive_group()
    run_place.add_argument("--data", type=Path, default=argparse.SUPPRESS, help="data folder")
    run_place.add_argument(
        "--memory", action="store_true", default=argparse.SUPPRESS, help="in-memory store"
    )
    run.add_argument("--session", help="run as a session script of session ID")
    run.add_argument("--allow-io", action="store_true", help="give the script io and all of os")
    return parser


async def _run(args: argparse.Namespace) -> int:
    try:
        source = args.script.read_bytes()
    except OSError as error:
        print(f"InvalidArgument: cannot read {args.script}: {error.strerror}", file=sys.stderr)
        return 2
    where = None if args.memory else args.data
    async with open_runtime(where, store="memory" if args.memory else "rocksdb") as rt:
        try:
            await rt.run_lua(
                source,
                name=args.script.name,
                args=args.args,
                session_id=args.session,
                allow_io=args.allow_io,
            )
        except SatchelError as error:
            print(f"{error.kind}: {error}", file=sys.stderr)
            trace = getattr(error, "lua_traceback", None)
            if trace:
                print(trace, file=sys.stderr)
            return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return trio.run(_run, args)
        with _open(args) as store:
            if args.command == "demo":
                return trio.run(_demo, store, args.name)
            return trio.run(_check, store, args.fix)
    except SatchelError as error:
        print(f"{error.kind}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
