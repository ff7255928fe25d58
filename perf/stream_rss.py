"""Stream 1 GiB into an artifact and back out, and report the process's peak memory.

The content is produced piece by piece (1 MiB pieces of JSON lines with a counter, so no
two pieces are alike) and never held whole; reading it back streams verified chunks and
hashes them. Peak RSS is the kernel's high-water mark of the process (``ru_maxrss``); it is
printed before the runtime opens, after it opens, after the store and after the read.

Run (from the repository root)::

    python perf/stream_rss.py [--gib N] [--data DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import tempfile
import time
from collections.abc import AsyncIterator

import trio

from satchel import open_runtime
from satchel.storage import BlobLimits

MIB = 1 << 20


def peak_mib() -> float:
    """The process's peak resident set so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def piece(n: int) -> bytes:
    """1 MiB of JSON lines, distinct for each ``n``."""
    line = b'{"seq":%d,"kind":"tool_result","text":"step output line"}\n' % n
    return (line * (MIB // len(line) + 1))[:MIB]


async def produce(count: int, digest: hashlib._Hash) -> AsyncIterator[bytes]:
    for n in range(count):
        data = piece(n)
        digest.update(data)
        yield data


async def main(gib: int, folder: str) -> None:
    count = gib * 1024
    print(f"before open: peak RSS {peak_mib():.1f} MiB")
    # The default content limit is 100 MiB; raise it for this run.
    limits = BlobLimits(max_size=(gib + 1) << 30)
    async with open_runtime(folder, limits=limits) as rt:
        sid = await rt.sessions.create(name="stream")
        print(f"after open:  peak RSS {peak_mib():.1f} MiB")
        sent = hashlib.sha256()
        start = time.perf_counter()
        ref = await rt.artifacts.store(sid, "big.jsonl", produce(count, sent), type="tool_result")
        took = time.perf_counter() - start
        print(
            f"stored {ref.size / MIB:.0f} MiB in {took:.1f} s "
            f"({ref.size / took / 1e6:.0f} MB/s): peak RSS {peak_mib():.1f} MiB"
        )
        got = hashlib.sha256()
        start = time.perf_counter()
        async for chunk in rt.artifacts.stream(sid, ref.id):
            got.update(chunk)
        took = time.perf_counter() - start
        assert got.digest() == sent.digest(), "content differs"
        print(
            f"read back {ref.size / MIB:.0f} MiB in {took:.1f} s "
            f"({ref.size / took / 1e6:.0f} MB/s), same SHA-256: peak RSS {peak_mib():.1f} MiB"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=int, default=1)
    parser.add_argument("--data", help="data folder (default: a temporary one, deleted)")
    args = parser.parse_args()
    target = args.data or tempfile.mkdtemp(prefix="satchel-stream-")
    try:
        trio.run(main, args.gib, target)
    finally:
        if not args.data:
            shutil.rmtree(target, ignore_errors=True)
