"""pyperf benchmarks of satchel's storage layer, each beside its floor (the bare libraries).

Every satchel operation ``<op>`` has a twin ``<op> [floor]`` that does the raw work the operation
cannot avoid with the libraries alone, measured in the same run:

* blob put: ``store.blobs.put`` + ``commit`` of a batch holding the owner record, with fresh
  content and a fresh owner every iteration (dedup never hits). Floor: BLAKE3 digest (satchel's
  threading rule) + ``lz4.frame.compress`` when satchel would compress + the cheaper bare way
  to keep the bytes: one raw ``Rdict`` put under 64 KiB, a new file (open, write, close) from
  64 KiB on, as satchel keeps chunks (``storage/_chunk_files.py``; RocksDB's log checksums
  every value in software, so a raw put of a large value costs several times a file write).
* blob get: ``store.blobs.read`` of a stored blob. Floor: the bytes back the same bare way
  (``Rdict`` get, or open + read + close) + ``lz4.frame`` decompress (if stored compressed) +
  BLAKE3 digest.
* record put / get: ``RecordCodec`` encode + ``kv.write`` of a one-put batch; ``kv.get`` +
  decode. Floor: a raw ``Rdict`` put / get of the same already-encoded bytes.

Each value runs in a fresh RocksDB folder under /tmp (deleted afterwards); reads run after a
close and reopen, so they come from SST/blob files as in a long-lived store, not the memtable.
Async work runs as one ``trio.run`` per value, timed inside it, setup excluded.

Run (from the repository root)::

    python perf/bench_storage.py -o perf/storage.json          # full run
    python perf/bench_storage.py --fast -o perf/storage.json   # about half the processes
    python perf/bench_storage.py --only 'blob get 1 MiB*'      # a subset (glob on names)
    python perf/report.py perf/storage.json                    # writes perf/RESULTS.md
"""

import argparse
import fnmatch
import functools
import hashlib
import importlib.metadata
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import cycle, islice
from pathlib import Path

import attrs
import blake3
import lz4.frame
import pyperf
import rocksdict
import trio

from satchel.storage import Batch, BlobLimits, RecordCodec, Store, open_store
from satchel.storage._blobformat import _THREADED_HASH_FROM
from satchel.storage._chunk_files import LARGE_VALUE

KIB = 1 << 10
MIB = 1 << 20
SIZES: dict[str, int] = {"1 KiB": KIB, "1 MiB": MIB, "64 MiB": 64 * MIB}
CONTENTS = ("json", "random")
#: Sizes from here on run with a quarter of the processes (each value takes ~0.1-0.5 s).
HEAVY_FROM = 16 * MIB
LIMITS = BlobLimits()
#: satchel's rule (storage/_blobformat.py ``new_hasher``): BLAKE3 threads from 2 MiB on.
THREADED_HASH_FROM = _THREADED_HASH_FROM
RECORD_KEYS = 1024
OWNER_RECORD = b"\x01\x00\x01" + b"o" * 120
LIBRARIES = ("satchel", "rocksdict", "blake3", "lz4", "trio", "msgpack", "cattrs", "pyperf")
REPO = Path(__file__).resolve().parent.parent
#: The code these benchmarks exercise; its fingerprint goes into every run's metadata.
SOURCE_FILES = ("storage/*.py", "satchel/_errors.py")
WORDS = (
    *("agent", "session", "tool", "call", "result", "artifact", "blob", "store", "commit"),
    *("read", "stream", "token", "model", "prompt", "reply", "error", "retry", "plan"),
    *("step", "file", "patch", "diff", "test", "build", "deploy", "user", "system"),
)

TimeFunc = Callable[..., float]


# -- content -----------------------------------------------------------------------------


def json_text(size: int, seed: int = 7) -> bytes:
    """JSON-lines text of ``size`` bytes that LZ4 compresses about 2.3x."""
    rng = random.Random(seed)
    lines: list[str] = []
    total = 0
    while total < size:
        record = {
            "seq": len(lines),
            "session": f"{rng.getrandbits(64):016x}",
            "kind": rng.choice(WORDS),
            "ts": 1_700_000_000 + len(lines) * rng.randrange(1, 50),
            "tokens": rng.randrange(100_000),
            "ok": rng.random() < 0.9,
            "text": " ".join(rng.choices(WORDS, k=rng.randrange(4, 16))),
        }
        line = json.dumps(record, separators=(",", ":")) + "\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


@functools.lru_cache(maxsize=2)
def base_content(size: int, kind: str) -> bytes:
    """``size`` bytes of ``kind`` content; large JSON tiles a period that no chunk aligns to."""
    if kind == "random":
        return os.urandom(size)
    period = min(size, MIB + 4099)
    block = json_text(period)
    return (block * (size // period + 1))[:size]


def variants(base: bytes, count: int) -> list[bytes]:
    """``count`` distinct copies of ``base``: the first 8 bytes hold a counter."""
    return [i.to_bytes(8, "big") + base[8:] for i in range(count)]


def floor_compresses(size: int, kind: str) -> bool:
    """Whether satchel stores such content compressed (so the floor compresses it too)."""
    return kind == "json" and size >= LIMITS.compress_min


def floor_digest(data: bytes) -> bytes:
    """BLAKE3 with satchel's threading rule, straight from the library."""
    threads = blake3.blake3.AUTO if len(data) >= THREADED_HASH_FROM else 1
    return blake3.blake3(data, max_threads=threads).digest()


# -- scratch stores ----------------------------------------------------------------------


@contextmanager
def scratch_dir() -> Iterator[str]:
    """A fresh folder under /tmp, deleted afterwards."""
    path = tempfile.mkdtemp(prefix="satchel-bench-", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def open_raw(path: str) -> rocksdict.Rdict:
    """The floor's bare RocksDB: raw mode, default options (WAL on, no fsync)."""
    return rocksdict.Rdict(path, options=rocksdict.Options(raw_mode=True))


@contextmanager
def raw_db(path: str) -> Iterator[rocksdict.Rdict]:
    """``open_raw`` as a context manager that closes the database."""
    db = open_raw(path)
    try:
        yield db
    finally:
        db.close()


# -- blob put ----------------------------------------------------------------------------


async def _blob_put_loop(store: Store, contents: Sequence[bytes], owners: Sequence[bytes]) -> float:
    blobs = store.blobs
    start = time.perf_counter()
    for content, owner in zip(contents, owners, strict=True):
        staged = await blobs.put(content)
        batch = Batch()
        batch.put(owner, OWNER_RECORD)
        await blobs.commit(batch, add=[(staged, owner)])
    return time.perf_counter() - start


def time_blob_put(loops: int, size: int, kind: str) -> float:
    """satchel: put + commit with a fresh owner record, ``loops`` distinct contents."""
    contents = variants(base_content(size, kind), loops)
    owners = [b"bench\x00" + i.to_bytes(8, "big") for i in range(loops)]
    with scratch_dir() as path, open_store(path) as store:
        elapsed: float = trio.run(_blob_put_loop, store, contents, owners)
    return elapsed


def floor_keep(folder: str, db: rocksdict.Rdict, key: bytes, stored: bytes) -> None:
    """Keep ``stored`` the cheaper bare way: a raw put under 64 KiB, a new file from 64 KiB."""
    if len(stored) < LARGE_VALUE:
        db[key] = stored
        return
    fd = os.open(os.path.join(folder, key.hex()), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(stored)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def floor_fetch(folder: str, db: rocksdict.Rdict, key: bytes, size: int) -> bytes:
    """What ``floor_keep`` kept (``size``: its length)."""
    if size < LARGE_VALUE:
        return db[key]  # type: ignore[no-any-return]
    fd = os.open(os.path.join(folder, key.hex()), os.O_RDONLY)
    try:
        return os.read(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def time_blob_put_floor(loops: int, size: int, kind: str) -> float:
    """Floor: digest + compress (when satchel would) + keep the bytes (``floor_keep``)."""
    contents = variants(base_content(size, kind), loops)
    compress = floor_compresses(size, kind)
    with scratch_dir() as path, raw_db(os.path.join(path, "db")) as db:
        start = time.perf_counter()
        for content in contents:
            key = floor_digest(content)
            floor_keep(path, db, key, lz4.frame.compress(content) if compress else content)
        return time.perf_counter() - start


# -- blob get ----------------------------------------------------------------------------


async def _store_blob(store: Store, content: bytes) -> str:
    staged = await store.blobs.put(content)
    owner = b"bench\x00owner"
    batch = Batch()
    batch.put(owner, OWNER_RECORD)
    await store.blobs.commit(batch, add=[(staged, owner)])
    return staged.ref.hash


async def _blob_get_loop(store: Store, blob: str, loops: int) -> float:
    read = store.blobs.read
    start = time.perf_counter()
    for _ in range(loops):
        await read(blob)
    return time.perf_counter() - start


def time_blob_get(loops: int, size: int, kind: str) -> float:
    """satchel: ``read`` (whole content, verified) of one stored blob."""
    content = base_content(size, kind)
    with scratch_dir() as path:
        with open_store(path) as store:
            blob = trio.run(_store_blob, store, content)
        with open_store(path) as store:
            elapsed: float = trio.run(_blob_get_loop, store, blob, loops)
    return elapsed


def time_blob_get_floor(loops: int, size: int, kind: str) -> float:
    """Floor: raw get + decompress (if stored compressed) + digest."""
    content = base_content(size, kind)
    compress = floor_compresses(size, kind)
    key = floor_digest(content)
    stored = lz4.frame.compress(content) if compress else content
    with scratch_dir() as path:
        folder = os.path.join(path, "db")
        with raw_db(folder) as db:
            floor_keep(path, db, key, stored)
        with raw_db(folder) as db:
            start = time.perf_counter()
            for _ in range(loops):
                kept = floor_fetch(path, db, key, len(stored))
                floor_digest(lz4.frame.decompress(kept) if compress else kept)
            return time.perf_counter() - start


# -- records -----------------------------------------------------------------------------


@attrs.frozen
class SessionRecord:
    """A session-like record of 15 fields, nested metadata included."""

    id: str
    owner: str
    title: str
    state: str
    created_at: float
    updated_at: float
    turns: int
    tokens_in: int
    tokens_out: int
    model: str
    parent: str | None
    tags: tuple[str, ...]
    artifacts: tuple[str, ...]
    metadata: dict[str, str]
    version: int


CODEC = RecordCodec(SessionRecord, kind="bench-session", version=1)


def sample_record() -> SessionRecord:
    """A typical session record (~300 bytes encoded)."""
    return SessionRecord(
        id="s-5f0c2e9b7a4d4c1e",
        owner="user-1842",
        title="Refactor the blob store's commit path",
        state="running",
        created_at=1_700_000_000.25,
        updated_at=1_700_000_321.5,
        turns=17,
        tokens_in=48_211,
        tokens_out=9_377,
        model="model-large-2025",
        parent=None,
        tags=("storage", "perf", "refactor"),
        artifacts=(blake3.blake3(b"a").hexdigest(), blake3.blake3(b"b").hexdigest()),
        metadata={"client": "cli", "region": "eu-west", "priority": "normal"},
        version=3,
    )


def record_keys(count: int) -> list[bytes]:
    """Index keys in the shape satchel gives records: a tag, a NUL, a counter."""
    return [b"sess\x00" + i.to_bytes(8, "big") for i in range(count)]


def time_record_put(loops: int) -> float:
    """satchel: encode + a one-put ``Batch`` + ``kv.write``, a fresh key each time."""
    record = sample_record()
    keys = record_keys(loops)
    with scratch_dir() as path, open_store(path) as store:
        kv, encode = store.kv, CODEC.encode
        start = time.perf_counter()
        for key in keys:
            batch = Batch()
            batch.put(key, encode(record))
            kv.write(batch)
        return time.perf_counter() - start


def time_record_put_floor(loops: int) -> float:
    """Floor: a raw put of the already-encoded bytes, a fresh key each time."""
    data = CODEC.encode(sample_record())
    keys = record_keys(loops)
    with scratch_dir() as path, raw_db(path) as db:
        start = time.perf_counter()
        for key in keys:
            db[key] = data
        return time.perf_counter() - start


def _fill_records(path: str) -> None:
    data = CODEC.encode(sample_record())
    with open_store(path) as store:
        batch = Batch()
        for key in record_keys(RECORD_KEYS):
            batch.put(key, data)
        store.kv.write(batch)


def time_record_get(loops: int) -> float:
    """satchel: ``kv.get`` + decode, cycling over 1,024 stored records."""
    keys = list(islice(cycle(record_keys(RECORD_KEYS)), loops))
    with scratch_dir() as path:
        _fill_records(path)
        with open_store(path) as store:
            get, decode = store.kv.get, CODEC.decode
            start = time.perf_counter()
            for key in keys:
                decode(get(key))  # type: ignore[arg-type]
            return time.perf_counter() - start


def time_record_get_floor(loops: int) -> float:
    """Floor: a raw get, cycling over 1,024 stored records."""
    data = CODEC.encode(sample_record())
    keys = list(islice(cycle(record_keys(RECORD_KEYS)), loops))
    with scratch_dir() as path:
        with raw_db(path) as db:
            for key in record_keys(RECORD_KEYS):
                db[key] = data
        with raw_db(path) as db:
            start = time.perf_counter()
            for key in keys:
                db[key]
            return time.perf_counter() - start


# -- runner ------------------------------------------------------------------------------


def add_cmdline_args(cmd: list[str], args: argparse.Namespace) -> None:
    """Pass ``--only`` on to pyperf's worker processes."""
    if args.only:
        cmd.extend(["--only", args.only])


@functools.cache
def library_versions() -> str:
    """``name version`` of every library the numbers depend on."""
    return ", ".join(f"{name} {importlib.metadata.version(name)}" for name in LIBRARIES)


@functools.cache
def satchel_source() -> str:
    """A fingerprint of the code measured (it may change between runs while others work)."""
    digest = hashlib.sha1()
    for path in sorted(p for pattern in SOURCE_FILES for p in REPO.glob(pattern)):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"{'+'.join(SOURCE_FILES)} sha1 {digest.hexdigest()[:10]}"


@functools.cache
def git_head() -> str:
    """The commit checked out when the benchmark ran."""
    found = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True
    )
    return found.stdout.decode().strip() or "unknown"


@contextmanager
def fewer_processes(runner: pyperf.Runner, heavy: bool) -> Iterator[None]:
    """For heavy benchmarks, a quarter of the processes (at least 3)."""
    args = runner.args
    saved = args.processes
    if heavy and not args.worker:
        args.processes = max(3, saved // 4)
    try:
        yield
    finally:
        args.processes = saved


def bench(
    runner: pyperf.Runner, name: str, func: TimeFunc, *args: object, size: int | None = None
) -> None:
    """Register ``name`` unless ``--only`` excludes it; blob benchmarks carry their size."""
    only: str | None = runner.args.only
    if only and not fnmatch.fnmatchcase(name, only):
        return
    metadata: dict[str, object] = {
        "libraries": library_versions(),
        "satchel_source": satchel_source(),
        "git_head": git_head(),
    }
    if size is not None:
        metadata["bytes_per_op"] = size
    with fewer_processes(runner, size is not None and size >= HEAVY_FROM):
        runner.bench_time_func(name, func, *args, metadata=metadata)


def main() -> None:
    runner = pyperf.Runner(add_cmdline_args=add_cmdline_args)
    runner.argparser.add_argument("--only", help="run only benchmarks whose name matches (glob)")
    runner.parse_args()
    for op, func, floor in (
        ("put", time_blob_put, time_blob_put_floor),
        ("get", time_blob_get, time_blob_get_floor),
    ):
        for label, size in SIZES.items():
            for kind in CONTENTS:
                name = f"blob {op} {label} {kind}"
                bench(runner, name, func, size, kind, size=size)
                bench(runner, f"{name} [floor]", floor, size, kind, size=size)
    bench(runner, "record put", time_record_put)
    bench(runner, "record put [floor]", time_record_put_floor)
    bench(runner, "record get", time_record_get)
    bench(runner, "record get [floor]", time_record_get_floor)


if __name__ == "__main__":
    main()
