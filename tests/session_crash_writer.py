"""Runs a deterministic plan of session operations, printing each after it returns (crash test).

Usage: python session_crash_writer.py DATA_DIR RUN_ID. Runs the plan (long enough to be
killed first) and exits. DATA_DIR may be a postgresql:// store URL instead, with the S3 bucket
for its large values in $SATCHEL_CRASH_OBJECTS.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator
from typing import Any

import trio

from satchel import open_runtime

# name -> (status, variables, artifacts: artifact name -> content of each version)
Model = dict[str, tuple[str, dict[str, Any], dict[str, list[bytes]]]]
Op = tuple[str, str, Any]  # (operation, session name, argument)


def content(rng: random.Random, pool: list[bytes]) -> bytes:
    """Artifact content: often bytes seen before (dedup), small or over the 64 KiB that the
    session hashes itself (then the storage actor stages it)."""
    if pool and rng.random() < 0.3:
        return rng.choice(pool)
    size = rng.choice([rng.randrange(1, 2000), rng.randrange(70_000, 200_000)])
    # Large content is incompressible, so it stays over 64 KiB stored: a chunk file on
    # RocksDB, an object in S3 on PostgreSQL.
    data = rng.randbytes(size) if size > 2000 else rng.randbytes(16) * (size // 16 + 1)
    pool.append(data[:size])
    return data[:size]


def plan(run: str, count: int) -> Iterator[tuple[Op, Model]]:
    """The operations of run ``run`` and the model state after each one."""
    rng = random.Random(run)
    model: Model = {}
    parents: dict[str, str | None] = {}
    pool: list[bytes] = []
    for i in range(count):
        active = sorted(n for n, (status, _, _) in model.items() if status == "active")
        if i % 8 == 0 or not active:
            parent = rng.choice(sorted(model)) if model and rng.random() < 0.4 else None
            op: Op = ("create", f"{run}-s{i:05d}", parent)
            model[op[1]] = ("active", {}, {})
            parents[op[1]] = parent
        else:
            name = rng.choice(active)
            status, variables, artifacts = model[name]
            roll = rng.random()
            if roll < 0.5:
                op = ("set", name, (f"k{rng.randrange(5)}", {"i": i, "run": run}))
                variables = {**variables, op[2][0]: op[2][1]}
            elif roll < 0.65:
                op = ("store", name, (f"a{rng.randrange(3)}.bin", content(rng, pool)))
                artifacts = {**artifacts, op[2][0]: [*artifacts.get(op[2][0], []), op[2][1]]}
            elif roll < 0.7:
                op = ("drop", name, f"a{rng.randrange(3)}.bin")
                if op[2] not in artifacts:
                    op = ("set", name, ("k0", {"i": i, "run": run}))
                    variables = {**variables, "k0": op[2][1]}
                artifacts = {k: v for k, v in artifacts.items() if k != op[2]}
            elif roll < 0.8:
                op = ("unset", name, f"k{rng.randrange(5)}")
                variables = {k: v for k, v in variables.items() if k != op[2]}
            elif roll < 0.88:
                op, status = ("suspend", name, None), "suspended"
            elif roll < 0.94:
                op, status = ("complete", name, None), "completed"
            else:
                op = ("delete", name, None)
            if op[0] == "delete":
                # A cascading delete: the session and every session below it.
                gone = {name}
                while extra := {n for n, p in parents.items() if p in gone} - gone:
                    gone |= extra
                for dead in gone:
                    del model[dead], parents[dead]
            else:
                model[name] = (status, variables, artifacts)
        yield op, {n: (s, dict(v), dict(a)) for n, (s, v, a) in model.items()}


def place(where: str, objects: str | None = None) -> dict[str, Any]:
    """``open_runtime``'s arguments for a data folder, or a PostgreSQL store URL with its S3
    bucket (``objects``, else ``$SATCHEL_CRASH_OBJECTS``)."""
    if where.startswith("postgresql://"):
        return {"store": where, "objects": objects or os.environ.get("SATCHEL_CRASH_OBJECTS")}
    return {"path": where}


async def main(where: str, run: str) -> None:
    ids: dict[str, str] = {}
    async with open_runtime(**place(where)) as rt:
        for n, (op, _) in enumerate(plan(run, 100_000)):
            kind, name, arg = op
            if kind == "create":
                parent = None if arg is None else ids[arg]
                ids[name] = await rt.sessions.create(name=name, parent_id=parent)
            elif kind == "set":
                await rt.sessions.set_state(ids[name], *arg)
            elif kind == "store":
                await rt.artifacts.store(ids[name], arg[0], arg[1], type="tool_result")
            elif kind == "drop":
                await rt.artifacts.delete(ids[name], arg)
            elif kind == "unset":
                await rt.sessions.delete_state(ids[name], arg)
            elif kind == "delete":
                await rt.sessions.delete(ids[name], cascade=True)
            else:
                await getattr(rt.sessions, kind)(ids[name])
            print(f"ok {n}", flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2])
