"""What the records would read after batches not yet written: for conditions checked at commit.

A transaction's conditions are checked against the committed state as its own earlier
operations (and, in a group commit, the batches ahead of it in the group) leave it. An
``Overlay`` holds those pending operations over a key-value store's reads.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import final

from satchel.runtime._errors import WriteConflictError

from ._kv import ABSENT, INDEX, Batch, Condition, Conditions, KeyValueStore, Space


@final
class Overlay:
    """The index space of ``kv`` as the batches applied to this overlay would leave it."""

    __slots__ = ("_kv", "_points", "_ranges")

    def __init__(self, kv: KeyValueStore) -> None:
        self._kv = kv
        self._points: dict[bytes, bytes | None] = {}
        self._ranges: list[tuple[bytes, bytes]] = []

    def get(self, key: bytes) -> bytes | None:
        """The value ``key`` would have."""
        if key in self._points:
            return self._points[key]
        for lower, upper in self._ranges:
            if lower <= key < upper:
                return None
        return self._kv.get(key)

    def _apply(self, op: str, space: Space, key: bytes, value: bytes | None) -> None:
        if space is not INDEX:
            return
        if op == "delete_range":
            assert value is not None
            self._points = {k: v for k, v in self._points.items() if not key <= k < value}
            self._ranges.append((key, value))
        else:
            self._points[key] = value  # a put's value, or None for a delete

    def apply(self, batch: Batch) -> None:
        """Check the conditions of ``batch`` as it goes (``WriteConflictError`` if one fails,
        and then nothing of it stays applied), and keep its operations."""
        conditions: Conditions | None = batch.conditions
        if not conditions:
            for op in batch.ops:
                self._apply(*op)
            return
        saved_points, saved_ranges = dict(self._points), list(self._ranges)
        pending = iter(conditions)
        next_check = next(pending, None)
        try:
            for index, op in enumerate(batch.ops):
                while next_check is not None and next_check[0] == index:
                    _require(next_check[1], op[2], self.get(op[2]))
                    next_check = next(pending, None)
                self._apply(*op)
        except WriteConflictError:
            self._points, self._ranges = saved_points, saved_ranges
            raise


_OP_NAME = itemgetter(0)
_OP_KEY = itemgetter(2)


def check_conditions(
    kv: KeyValueStore, batch: Batch, get: Callable[[bytes], bytes | None] | None = None
) -> None:
    """Check the conditions of ``batch`` against ``kv`` as the batch's earlier operations
    leave it (``WriteConflictError`` if one fails), as ``Overlay(kv).apply(batch)`` does;
    ``get``: what reads an index key of ``kv`` (``kv.get`` if not given).

    The common batch has no range delete and writes each conditioned key first with its
    condition: its conditions are then checked against ``kv`` as it is, without replaying
    the batch. (One ``get`` a key: RocksDB's ``multi_get`` of a few keys costs more.)"""
    conditions = batch.conditions
    if not conditions:
        return
    ops = batch.ops
    op_keys = list(map(_OP_KEY, ops))
    first: Callable[[bytes], int]
    if len(ops) <= 32:
        first = op_keys.index  # a scan of a short batch costs less than a dict
    else:
        # A large batch (a fork copies thousands of keys with a condition each): a scan per
        # condition would make the check quadratic.
        firsts: dict[bytes, int] = {}
        for position, key in enumerate(op_keys):
            firsts.setdefault(key, position)
        first = firsts.__getitem__
    for position, _ in conditions:
        if first(op_keys[position]) != position:  # the key is written earlier in the batch
            break
    else:
        if "delete_range" not in map(_OP_NAME, ops):
            read = kv.get if get is None else get
            for position, condition in conditions:
                key = op_keys[position]
                current = read(key)
                if condition is ABSENT:
                    if current is None:
                        continue
                elif current == condition.value:  # type: ignore[union-attr]
                    continue
                _require(condition, key, current)  # raises
            return
    Overlay(kv).apply(batch)  # replay the batch


def _require(condition: Condition, key: bytes, current: bytes | None) -> None:
    if condition is ABSENT:
        if current is not None:
            raise WriteConflictError(f"record {key!r} exists; the write expected none")
    elif current != condition.value:  # type: ignore[union-attr]
        state = "is missing" if current is None else "changed"
        raise WriteConflictError(f"record {key!r} {state} since it was read")
