"""pyperf benchmarks of satchel's actor kernel, each beside its floor in the same run.

* ``ask``: one request-reply to a live actor whose handler returns at once. Floor: a bare Trio
  request-reply — a server task reading ``(message, Event-slot)`` from a memory channel.
* ``tell``: one told message, amortised over 10,000 tells to one actor followed by one ask
  (so every message was handled). Floor: 10,000 ``send`` on a bare memory channel read by a
  task that does nothing with them.
* ``activate from rocksdb``: an ask to an actor that is not live, whose ``on_start`` reads its
  state (a ~300-byte record) from RocksDB; the first message of each id. Floor: ``ask`` to a
  live actor plus the same RocksDB get and decode.

Run (from the repository root)::

    python perf/bench_kernel.py -o perf/kernel.json
    python perf/report.py perf/storage.json perf/kernel.json

Memory per idle actor is not a pyperf figure: ``perf/kernel_memory.py`` measures it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import attrs
import pyperf
import trio

from satchel.runtime import Actor, ActorSpec, open_supervisor
from satchel.storage import Batch, RecordCodec, Store, open_store

TELLS = 10_000


@attrs.frozen
class State:
    """What an actor loads on activation (a small session-like record)."""

    name: str
    tags: tuple[str, ...]
    variables: dict[str, Any]
    counter: int


CODEC = RecordCodec(State, kind="bench-state", version=1)
STATE = State("bench", ("a", "b"), {f"k{i}": "v" * 16 for i in range(10)}, 7)


class Echo(Actor[Any]):
    """Answers every message with itself."""

    def __init__(self, actor_id: str, store: Store | None = None) -> None:
        self.actor_id = actor_id
        self.store = store
        self.state: State | None = None

    async def on_start(self) -> None:
        if self.store is not None:
            raw = self.store.kv.get(f"bench\x00{self.actor_id}".encode())
            self.state = None if raw is None else CODEC.decode(raw)

    async def receive(self, message: Any) -> Any:
        return message


def bench_ask(loops: int) -> float:
    async def main() -> float:
        async with open_supervisor() as supervisor:
            supervisor.register(ActorSpec(kind="echo", factory=Echo))
            ref = supervisor.ref("echo", "a")
            await ref.ask(0)
            start = trio.current_time()
            for i in range(loops):
                await ref.ask(i)
            return trio.current_time() - start

    return trio.run(main)


class _Slot:
    __slots__ = ("event", "value")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.value: Any = None


def bench_ask_floor(loops: int) -> float:
    async def main() -> float:
        send, receive = trio.open_memory_channel[tuple[Any, _Slot]](256)

        async def server() -> None:
            async for message, slot in receive:
                slot.value = message
                slot.event.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(server)
            start = trio.current_time()
            for i in range(loops):
                slot = _Slot()
                await send.send((i, slot))
                await slot.event.wait()
            elapsed = trio.current_time() - start
            nursery.cancel_scope.cancel()
        return elapsed

    return trio.run(main)


def bench_tell(loops: int) -> float:
    async def main() -> float:
        async with open_supervisor() as supervisor:
            supervisor.register(ActorSpec(kind="echo", factory=Echo, mailbox_capacity=1024))
            ref = supervisor.ref("echo", "a")
            await ref.ask(0)
            start = trio.current_time()
            for _ in range(loops):
                for i in range(TELLS):
                    await ref.tell(i)
                await ref.ask(0)
            return trio.current_time() - start

    return trio.run(main)


def bench_tell_floor(loops: int) -> float:
    async def main() -> float:
        send, receive = trio.open_memory_channel[int](1024)
        done = trio.Event()

        async def server() -> None:
            count = 0
            async for _ in receive:
                count += 1
                if count == TELLS:
                    count = 0
                    done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(server)
            start = trio.current_time()
            for _ in range(loops):
                done = trio.Event()
                for i in range(TELLS):
                    await send.send(i)
                await done.wait()
            elapsed = trio.current_time() - start
            nursery.cancel_scope.cancel()
        return elapsed

    return trio.run(main)


def _stored_states(store: Store, count: int) -> None:
    encoded = CODEC.encode(STATE)
    for start in range(0, count, 1000):
        batch = Batch()
        for i in range(start, min(count, start + 1000)):
            batch.put(f"bench\x00id{i}".encode(), encoded)
        store.kv.write(batch)


def bench_activate(loops: int) -> float:
    folder = Path(tempfile.mkdtemp(prefix="satchel-bench-"))
    try:
        with open_store(folder) as store:
            _stored_states(store, loops)

            async def main() -> float:
                async with open_supervisor(resident_cap=loops + 10) as supervisor:
                    supervisor.register(
                        ActorSpec(kind="s", factory=lambda i: Echo(i, store), idle_timeout=None)
                    )
                    start = trio.current_time()
                    for i in range(loops):
                        await supervisor.ref("s", f"id{i}").ask(i)
                    return trio.current_time() - start

            return trio.run(main)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_activate_floor(loops: int) -> float:
    folder = Path(tempfile.mkdtemp(prefix="satchel-bench-"))
    try:
        with open_store(folder) as store:
            _stored_states(store, loops)

            async def main() -> float:
                async with open_supervisor() as supervisor:
                    supervisor.register(ActorSpec(kind="echo", factory=Echo))
                    ref = supervisor.ref("echo", "live")
                    await ref.ask(0)
                    start = trio.current_time()
                    for i in range(loops):
                        CODEC.decode(store.kv.get(f"bench\x00id{i}".encode()) or b"")
                        await ref.ask(i)
                    return trio.current_time() - start

            return trio.run(main)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    runner = pyperf.Runner()
    runner.metadata["description"] = "satchel actor kernel vs bare Trio"
    runner.bench_time_func("ask", bench_ask)
    runner.bench_time_func("ask [floor]", bench_ask_floor)
    runner.bench_time_func("tell", bench_tell, inner_loops=TELLS)
    runner.bench_time_func("tell [floor]", bench_tell_floor, inner_loops=TELLS)
    runner.bench_time_func("activate from rocksdb", bench_activate)
    runner.bench_time_func("activate from rocksdb [floor]", bench_activate_floor)


if __name__ == "__main__":
    main()
