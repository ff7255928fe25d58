"""Writes blobs and records in a loop, printing each after its write returns (crash test).

Usage: python crash_writer.py DATA_DIR RUN_ID. Runs until killed.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import trio

from satchel.storage import Batch, BlobLimits, RocksStore, Store

LIMITS = BlobLimits(chunk_size=4096, compress_min=256)


def content_for(run: str, index: int) -> bytes:
    """The deterministic content of write ``index`` of run ``run`` (some repeat, for dedup)."""
    if index % 7 == 0:
        return b"shared content across runs\n" * 300
    rng = random.Random(f"{run}/{index}")
    size = rng.choice([0, 100, 5000, 20_000, 40_000])
    if index % 2:
        return rng.randbytes(size)
    return (f"line {index} of run {run}\n" * (size // 16 + 1)).encode()[:size]


def owner_key(run: str, index: int) -> bytes:
    """The record key that owns write ``index`` of run ``run``."""
    return f"t\x00{run}/{index:06d}".encode()


async def pieces(data: bytes) -> object:
    for start in range(0, len(data), 3000):
        await trio.lowlevel.checkpoint()
        yield data[start : start + 3000]


async def main(folder: str, run: str) -> None:
    # Chunk values of 2 KiB and more are files here (64 KiB and more by default), so kills
    # also land between a chunk file and the index commit that names it.
    with Store(RocksStore(folder, file_values_from=2048), Path(folder), LIMITS) as store:
        await store.blobs.recover()
        index = 0
        while True:
            data = content_for(run, index)
            staged = await store.blobs.put(pieces(data) if index % 3 == 0 else data)  # type: ignore[arg-type]
            batch = Batch()
            key = owner_key(run, index)
            batch.put(key, staged.ref.hash.encode())
            await store.blobs.commit(batch, add=[(staged, key)])
            print(f"put {index} {staged.ref.hash}", flush=True)
            if index % 5 == 4:
                gone = owner_key(run, index - 3)
                batch = Batch()
                batch.delete(gone)
                await store.blobs.commit(batch, drop=[(store.kv.get(gone).decode(), gone)])  # type: ignore[union-attr]
                print(f"del {index - 3}", flush=True)
            index += 1


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
