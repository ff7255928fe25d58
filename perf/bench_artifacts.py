"""pyperf benchmarks of artifacts on RocksDB, each beside its floor in the same run.

* ``artifact store 1 MiB json, new content``: ``rt.artifacts.store`` of 1 MiB of compressible
  JSON lines, distinct every iteration (no dedup hit): staging with the storage actor (BLAKE3,
  LZ4, chunks), then the session actor's one batch (record, id and name entries, query
  indexes, journal, counters, blob reference). Floor: BLAKE3 + ``lz4.frame.compress`` + one
  raw RocksDB put of the same content (as ``blob put`` in bench_storage.py).
* ``artifact store, already present``: a 1 KiB content already stored, stored again as a new
  version (hash, find the blob, write the version). Floor: a session ``set_state`` in the same
  run (the issue's target is at most 3x it).
* ``artifact get 1 MiB json``: ``rt.artifacts.get`` by id (content verified, metadata decoded),
  after a reopen. Floor: raw get + decompress + BLAKE3 (as ``blob get``).
* ``artifact query 100k: ...`` over 100,000 artifacts in 1,000 sessions (limit 50), six shapes;
  floor (the same for each): read 50 keys of the all-versions index and multi-get and decode
  their 50 records.

The 100,000-artifact folder is built once (a few minutes) in ``$SATCHEL_BENCH_ARTIFACTS`` or
``/tmp/satchel-bench-artifacts-100k`` and reused by every worker process.

Run (from the repository root)::

    python perf/bench_artifacts.py -o perf/artifacts.json
    SATCHEL_BENCH_ONLY='artifact store*' python perf/bench_artifacts.py --inherit-environ \
        SATCHEL_BENCH_ONLY   # a subset
    python perf/report.py perf/storage.json perf/kernel.json perf/sessions.json \
        perf/artifacts.json --notes perf/kernel_memory.md perf/sessions_notes.md \
        perf/artifacts_notes.md
"""

from __future__ import annotations

import fnmatch
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import pyperf
import trio
from bench_sessions import bench_set_state
from bench_storage import (
    MIB,
    base_content,
    scratch_dir,
    time_blob_get_floor,
    time_blob_put_floor,
    variants,
)

from satchel import open_runtime
from satchel.actors.artifacts import _artifact_index as index
from satchel.actors.artifacts._artifact_model import ARTIFACT_CODEC
from satchel.storage import RocksStore
from satchel.storage import _keys as keys

SESSIONS = 1_000
PER_SESSION = 100
NAMES = 40
TAGS = [f"tag{i}" for i in range(20)]
TYPES = ["agent_output", "tool_result", "user_input", "system_generated"]
WORDS = ["plan", "result", "notes", "draft", "trace", "answer", "report", "log"]
DATA = Path(os.environ.get("SATCHEL_BENCH_ARTIFACTS", "/tmp/satchel-bench-artifacts-100k"))


# -- store and get -------------------------------------------------------------------------


def bench_store_new(loops: int) -> float:
    contents = variants(base_content(MIB, "json"), loops)

    async def main(folder: str) -> float:
        async with open_runtime(folder) as rt:
            sid = await rt.sessions.create()
            start = time.perf_counter()
            for content in contents:
                await rt.artifacts.store(sid, "out.json", content, type="tool_result")
            return time.perf_counter() - start

    with scratch_dir() as folder:
        return trio.run(main, folder)


def bench_store_new_floor(loops: int) -> float:
    return time_blob_put_floor(loops, MIB, "json")


def bench_store_present(loops: int) -> float:
    content = base_content(1024, "json")

    async def main(folder: str) -> float:
        async with open_runtime(folder) as rt:
            sid = await rt.sessions.create()
            await rt.artifacts.store(sid, "result.json", content, type="tool_result")
            start = time.perf_counter()
            for _ in range(loops):
                await rt.artifacts.store(sid, "result.json", content, type="tool_result")
            return time.perf_counter() - start

    with scratch_dir() as folder:
        return trio.run(main, folder)


def bench_get(loops: int) -> float:
    content = base_content(MIB, "json")

    async def put(folder: str) -> tuple[str, str]:
        async with open_runtime(folder) as rt:
            sid = await rt.sessions.create()
            ref = await rt.artifacts.store(sid, "out.json", content, type="tool_result")
            return sid, ref.id

    async def get(folder: str, sid: str, artifact_id: str) -> float:
        async with open_runtime(folder) as rt:
            start = time.perf_counter()
            for _ in range(loops):
                await rt.artifacts.get(sid, artifact_id)
            return time.perf_counter() - start

    with scratch_dir() as folder:
        sid, artifact_id = trio.run(put, folder)
        return trio.run(get, folder, sid, artifact_id)


def bench_get_floor(loops: int) -> float:
    return time_blob_get_floor(loops, MIB, "json")


# -- 100,000 artifacts -----------------------------------------------------------------------


def ensure_big_folder() -> Path:
    """The 100,000-artifact folder, built on first use."""
    marker = DATA / "BUILT"
    if marker.exists():
        return DATA
    shutil.rmtree(DATA, ignore_errors=True)
    trio.run(_build_big)
    marker.write_text(str(SESSIONS * PER_SESSION))
    return DATA


async def _build_big() -> None:
    rng = random.Random(11)
    async with open_runtime(DATA, resident_cap=100) as rt:
        sessions = [await rt.sessions.create(name=f"agent {i}") for i in range(SESSIONS)]
        for n, sid in enumerate(sessions):
            for j in range(PER_SESSION):
                size = rng.randrange(100, 4000)
                content = f"{n}:{j}:".encode() + rng.randbytes(size)
                await rt.artifacts.store(
                    sid,
                    f"{WORDS[j % len(WORDS)]}-{j % NAMES}.json",
                    content,
                    type=rng.choice(TYPES),
                    metadata={
                        "tags": rng.sample(TAGS, 2),
                        "team": f"t{rng.randrange(50)}",
                        "step": j,
                    },
                )
        # A caller with grants in ten other sessions (one whole name, one version each).
        caller = sessions[0]
        for owner in sessions[1:11]:
            latest = await rt.artifacts.list(owner)
            await rt.artifacts.share(owner, latest[0].name, caller, "read")
            await rt.artifacts.share(owner, latest[1].id, caller, "read")
        (DATA / "CALLER").write_text(caller)


QUERIES: dict[str, dict[str, Any]] = {
    "one session, by type, every version": {
        "session_id": None,
        "type": "tool_result",
        "all_versions": True,
    },
    "tag + type, every session": {"tags": ["tag3"], "type": "user_input"},
    "custom metadata, newest first": {"metadata": {"team": "t7"}, "descending": True},
    "size range, by size": {"min_size": 1000, "max_size": 1200, "order_by": "size"},
    "type, by name": {"type": "agent_output", "order_by": "name"},
    "as a session with grants, newest first": {"descending": True},
}


def bench_query(name: str) -> Any:
    def run(loops: int) -> float:
        folder = ensure_big_folder()
        caller = (folder / "CALLER").read_text()
        query = dict(QUERIES[name], limit=50)
        if "session_id" in query:
            query["session_id"] = caller

        async def main() -> float:
            async with open_runtime(folder) as rt:
                artifacts = rt.artifacts
                if name.startswith("as a session"):
                    artifacts = artifacts.as_session(caller)
                found = await artifacts.query(**query)
                assert found, name
                start = time.perf_counter()
                for _ in range(loops):
                    await artifacts.query(**query)
                return time.perf_counter() - start

        return trio.run(main)

    return run


def bench_query_floor(loops: int) -> float:
    folder = ensure_big_folder()
    store = RocksStore(folder)
    try:
        start = time.perf_counter()
        for _ in range(loops):
            entries = list(store.scan(index.ALL, index.LATEST, limit=50))
            wanted = [keys.ARTIFACT + index.parse_summary(v)[1] for _, v in entries]
            for raw in store.get_many(wanted):
                assert raw is not None
                ARTIFACT_CODEC.decode(raw)
        return time.perf_counter() - start
    finally:
        store.close()


def main() -> None:
    runner = pyperf.Runner()
    runner.metadata["description"] = "satchel artifacts vs bare RocksDB, BLAKE3 and LZ4"
    # SATCHEL_BENCH_ONLY (a glob on names) runs a subset; pyperf's workers inherit it.
    only = os.environ.get("SATCHEL_BENCH_ONLY")
    big = {"bytes_per_op": MIB}
    benches: list[tuple[str, Any, dict[str, Any]]] = [
        ("artifact store 1 MiB json, new content", bench_store_new, big),
        ("artifact store 1 MiB json, new content [floor]", bench_store_new_floor, big),
        ("artifact store, already present", bench_store_present, {}),
        ("artifact store, already present [floor]", bench_set_state, {}),
        ("artifact get 1 MiB json", bench_get, big),
        ("artifact get 1 MiB json [floor]", bench_get_floor, big),
    ]
    for name in QUERIES:
        benches.append((f"artifact query 100k: {name}", bench_query(name), {}))
        benches.append((f"artifact query 100k: {name} [floor]", bench_query_floor, {}))
    for label, func, metadata in benches:
        if only is None or fnmatch.fnmatchcase(label, only):
            runner.bench_time_func(label, func, metadata=metadata)


if __name__ == "__main__":
    main()
