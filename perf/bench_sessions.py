"""pyperf benchmarks of sessions on RocksDB, each beside its floor in the same run.

* ``session create``: ``rt.sessions.create`` with a name, two tags and a small metadata map,
  persisted (one WriteBatch: record, counters, journal entry, six index keys). Floor, as the
  issue words it: encode the same session record and put it in one RocksDB WriteBatch.
* ``session create, same bytes``: the same operation, against the floor of writing the
  *same* nine keys and values in one WriteBatch (the record encoded in the loop, the other
  values prepared beforehand) — what satchel adds beyond the bytes it must write.
* ``set_state``: a variable set on a live session (an ask to its actor, which writes the
  variable, journal entry, counters and update index in one batch). Floor: a bare Trio
  request-reply whose server task puts the encoded value in one WriteBatch.
* ``session get``: ``rt.sessions.get`` of a session (no actor involved). Floor: multi-get
  its record and counters and decode them.
* ``session query ...`` over 100,000 sessions (limit 50), four filter shapes; floor (the
  same for each): reading 50 index keys and multi-getting and decoding their 50 records.
* ``reopen 100k + first get``: open the runtime on the 100,000-session folder and read one
  session. Floor: open the bare RocksDB folder and get one key.

The 100,000-session folder is built once (about a minute) in ``$SATCHEL_BENCH_DATA`` or
``/tmp/satchel-bench-100k`` and reused by every worker process.

Run (from the repository root)::

    python perf/bench_sessions.py -o perf/sessions.json
    python perf/report.py perf/storage.json perf/kernel.json perf/sessions.json \
        --notes perf/kernel_memory.md perf/sessions_notes.md
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyperf
import rocksdict
import trio

from satchel import Runtime, open_runtime
from satchel.actors import _validate as validate
from satchel.actors.sessions import _session_layout as layout
from satchel.actors.sessions._creation import created_data as _created_data
from satchel.storage import RocksStore

BIG = 100_000
TAGS = [f"tag{i}" for i in range(20)]
WORDS = ["research", "support", "billing", "planner", "coder", "review", "triage", "draft"]
DATA = Path(os.environ.get("SATCHEL_BENCH_DATA", "/tmp/satchel-bench-100k"))
METADATA = {"owner": "bench", "model": "m-1", "budget": {"tokens": 4000}}


def _fresh() -> Path:
    return Path(tempfile.mkdtemp(prefix="satchel-bench-"))


async def _create(rt: Runtime, i: int) -> str:
    return await rt.sessions.create(name=f"session {i}", tags=["agent", "bench"], metadata=METADATA)


def bench_create(loops: int) -> float:
    folder = _fresh()

    async def main() -> float:
        async with open_runtime(folder) as rt:
            start = trio.current_time()
            for i in range(loops):
                await _create(rt, i)
            return trio.current_time() - start

    try:
        return trio.run(main)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _sample_record() -> layout.SessionRecord:
    async def main() -> layout.SessionRecord:
        async with open_runtime(store="memory") as rt:
            sid = await _create(rt, 0)
            raw = rt.store.kv.get(layout.record_key(layout.bytes_of(sid)))
            assert raw is not None
            return layout.RECORD_CODEC.decode(raw)

    return trio.run(main)


def _time_batches(record: layout.SessionRecord, prepared: list[list[tuple[bytes, bytes]]]) -> float:
    """Time writing each prepared list of pairs as one bare WriteBatch, the first value being
    ``record`` encoded in the loop."""
    folder = _fresh()
    store = RocksStore(folder)
    try:
        db, plain = store._db, store._plain
        assert db is not None
        start = _now()
        for pairs in prepared:
            batch = rocksdict.WriteBatch(raw_mode=True)
            batch.put(pairs[0][0], layout.RECORD_CODEC.encode(record))
            for key, value in pairs[1:]:
                batch.put(key, value)
            db.write(batch, plain)
        return _now() - start
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)


def bench_create_floor(loops: int) -> float:
    record = _sample_record()
    keys = [layout.record_key(validate.new_session_id()[1]) for _ in range(loops)]
    return _time_batches(record, [[(key, b"")] for key in keys])


def _same_pairs(record: layout.SessionRecord) -> list[tuple[bytes, bytes]]:
    """The keys and values (record aside) ``create`` writes for a fresh id."""
    sid = validate.new_session_id()[1]
    now = record.created_us
    entry = layout.encode_entry(now, "session_created", _created_data(record))
    pairs = [
        (layout.record_key(sid), b""),
        (layout.counters_key(sid), layout.Counters(seq=1, updated_us=now).encode()),
        (layout.journal_key(sid, 1), entry),
    ]
    pairs += layout.index_entries(sid, record)
    pairs.append((layout.updated_key(sid, now), layout.u64(now)))
    return pairs


def bench_same_bytes_floor(loops: int) -> float:
    record = _sample_record()
    return _time_batches(record, [_same_pairs(record) for _ in range(loops)])


def _now() -> float:
    return pyperf.perf_counter()


def bench_set_state(loops: int) -> float:
    folder = _fresh()

    async def main() -> float:
        async with open_runtime(folder) as rt:
            session = rt.session(await _create(rt, 0))
            await session.set_state("step", {"n": 0, "note": "warm"})
            start = trio.current_time()
            for i in range(loops):
                await session.set_state("step", {"n": i, "note": "thinking"})
            return trio.current_time() - start

    try:
        return trio.run(main)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class _Slot:
    __slots__ = ("event", "value")

    def __init__(self, value: Any) -> None:
        self.event = trio.Event()
        self.value = value


def bench_set_state_floor(loops: int) -> float:
    folder = _fresh()
    store = RocksStore(folder)
    db, plain = store._db, store._plain
    assert db is not None
    key = layout.var_prefix(validate.new_session_id()[1]) + b"step"

    async def main() -> float:
        send, receive = trio.open_memory_channel[_Slot](256)

        async def server() -> None:
            async for slot in receive:
                batch = rocksdict.WriteBatch(raw_mode=True)
                batch.put(key, layout.encode_value(slot.value))
                db.write(batch, plain)
                slot.event.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(server)
            start = trio.current_time()
            for i in range(loops):
                slot = _Slot({"n": i, "note": "thinking"})
                await send.send(slot)
                await slot.event.wait()
            elapsed = trio.current_time() - start
            nursery.cancel_scope.cancel()
        return elapsed

    try:
        return trio.run(main)
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)


def bench_get(loops: int) -> float:
    folder = _fresh()

    async def main() -> float:
        async with open_runtime(folder) as rt:
            sid = await _create(rt, 0)
            start = trio.current_time()
            for _ in range(loops):
                await rt.sessions.get(sid)
            return trio.current_time() - start

    try:
        return trio.run(main)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_get_floor(loops: int) -> float:
    folder = _fresh()

    async def main() -> float:
        async with open_runtime(folder) as rt:
            sid = layout.bytes_of(await _create(rt, 0))
            kv = rt.store.kv
            keys = [layout.record_key(sid), layout.counters_key(sid)]
            start = _now()
            for _ in range(loops):
                raw_record, raw_counters = kv.get_many(keys)
                layout.RECORD_CODEC.decode(raw_record or b"")
                layout.Counters.decode(raw_counters or b"")
            return _now() - start

    try:
        return trio.run(main)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- 100,000 sessions ----------------------------------------------------------------------


def ensure_big_folder() -> Path:
    """The 100,000-session folder, built on first use."""
    marker = DATA / "BUILT"
    if marker.exists():
        return DATA
    shutil.rmtree(DATA, ignore_errors=True)
    trio.run(_build_big)
    marker.write_text(str(BIG))
    return DATA


async def _build_big() -> None:
    rng = random.Random(7)
    async with open_runtime(DATA, resident_cap=1000) as rt:
        parents: list[str] = []
        for i in range(BIG):
            parent = rng.choice(parents) if parents and i % 10 == 0 else None
            sid = await rt.sessions.create(
                name=f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}",
                description="a needle in the hay" if i % 5000 == 0 else "hay",
                tags=rng.sample(TAGS, 2),
                metadata={"owner": f"user{i % 100}"},
                parent_id=parent,
            )
            if i % 100 == 0:
                parents.append(sid)
            roll = rng.random()
            if roll < 0.15:
                await rt.sessions.suspend(sid)
            elif roll < 0.30:
                await rt.sessions.complete(sid)
            elif roll < 0.40:
                await rt.sessions.fail(sid, "bench")


def _some_parent(folder: Path) -> str:
    store = RocksStore(folder)
    try:
        key, _ = next(store.scan(layout.BY_PARENT, layout.BY_PARENT + b"\xff", limit=1))
        return layout.text_of(key[len(layout.BY_PARENT) : len(layout.BY_PARENT) + 16])
    finally:
        store.close()


QUERIES: dict[str, dict[str, Any]] = {
    "status + tag": {"status": "active", "tags": ["tag3"]},
    "two tags": {"tags": ["tag1", "tag5"]},
    "status by update time, newest first": {
        "status": "completed",
        "order_by": "updated_at",
        "descending": True,
    },
    "children of a parent": {"parent_session_id": None},
}


def bench_query(name: str) -> Any:
    def run(loops: int) -> float:
        folder = ensure_big_folder()
        query = dict(QUERIES[name], limit=50)
        if "parent_session_id" in query:
            query["parent_session_id"] = _some_parent(folder)

        async def main() -> float:
            async with open_runtime(folder) as rt:
                found = await rt.sessions.list(**query)
                assert found, name
                start = trio.current_time()
                for _ in range(loops):
                    await rt.sessions.list(**query)
                return trio.current_time() - start

        return trio.run(main)

    return run


def bench_query_floor(loops: int) -> float:
    folder = ensure_big_folder()
    store = RocksStore(folder)
    try:
        start = _now()
        for _ in range(loops):
            keys = [k[-16:] for k, _ in store.scan(layout.BY_CREATED, layout.BY_UPDATED, limit=50)]
            for raw in store.get_many([layout.record_key(sid) for sid in keys]):
                assert raw is not None
                layout.RECORD_CODEC.decode(raw)
        return _now() - start
    finally:
        store.close()


def bench_reopen(loops: int) -> float:
    folder = ensure_big_folder()
    store = RocksStore(folder)
    key, _ = next(store.scan(layout.BY_UPDATED, layout.BY_UPDATED + b"\xff", limit=1))
    store.close()
    target = layout.text_of(key[-16:])
    total = 0.0
    for _ in range(loops):

        async def main() -> float:
            start = _now()
            async with open_runtime(folder) as rt:
                await rt.sessions.get(target)
                return _now() - start

        total += trio.run(main)
    return total


def bench_reopen_floor(loops: int) -> float:
    folder = ensure_big_folder()
    key = layout.record_key(layout.bytes_of(_some_parent(folder)))
    total = 0.0
    for _ in range(loops):
        start = _now()
        store = RocksStore(folder)
        assert store.get(key) is not None
        total += _now() - start
        store.close()
    return total


def main() -> None:
    runner = pyperf.Runner()
    runner.metadata["description"] = "satchel sessions vs bare RocksDB and Trio"
    runner.bench_time_func("session create", bench_create)
    runner.bench_time_func("session create [floor]", bench_create_floor)
    runner.bench_time_func("session create, same bytes", bench_create)
    runner.bench_time_func("session create, same bytes [floor]", bench_same_bytes_floor)
    runner.bench_time_func("set_state", bench_set_state)
    runner.bench_time_func("set_state [floor]", bench_set_state_floor)
    runner.bench_time_func("session get", bench_get)
    runner.bench_time_func("session get [floor]", bench_get_floor)
    for name in QUERIES:
        runner.bench_time_func(f"session query 100k: {name}", bench_query(name))
        runner.bench_time_func(f"session query 100k: {name} [floor]", bench_query_floor)
    runner.bench_time_func("reopen 100k + first get", bench_reopen)
    runner.bench_time_func("reopen 100k + first get [floor]", bench_reopen_floor)


if __name__ == "__main__":
    main()
