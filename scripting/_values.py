"""Lua values as plain data that can leave a Lua state (and cross to another process), and back.

A Lua value becomes plain data before it leaves its state: strings stay bytes, numbers and
booleans stay themselves, and a table becomes a dict of its raw entries, keys as they are. What
cannot be data (a function, a coroutine, a host object, a table nested too deep, a value with
too many entries) becomes an ``Opaque`` naming what it was; the host reports it where the value
is used, as it did for the Lua value itself (``_convert``). The same form is what the worker
processes send: nothing but plain values crosses the process boundary.

This module is imported by worker processes, which load only it, the engine and the errors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import lupa

#: Tables nested deeper than this become ``Opaque("deep")`` (a cycle, most likely).
MAX_DEPTH = 64
#: The values leaving a script at once (a call's arguments, a run's results) hold at most
#: this many table entries, all levels together: a
#: table shared many times over (``t = {t1, t1}``, ``t1 = {t2, t2}``, ...) would otherwise
#: convert into exponentially many.
MAX_ENTRIES = 1_000_000


class Opaque:
    """A Lua value that is not data: ``what`` is its Lua type, or ``deep``."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.what == self.what

    def __hash__(self) -> int:
        return hash(("Opaque", self.what))

    def __repr__(self) -> str:
        return f"Opaque({self.what!r})"


class TooLarge(ValueError):
    """A value with more than ``MAX_ENTRIES`` table entries."""


def to_plain(value: Any) -> Any:
    """A Lua value as plain data (``TooLarge`` past ``MAX_ENTRIES`` entries)."""
    return _plain(value, 0, [MAX_ENTRIES])


def all_to_plain(values: Any) -> list[Any]:
    """Lua values as plain data, ``MAX_ENTRIES`` entries for them all (what one message
    may carry)."""
    budget = [MAX_ENTRIES]
    return [_plain(value, 0, budget) for value in values]


def _plain(value: Any, depth: int, budget: list[int]) -> Any:
    if value is None or isinstance(value, bool | int | float | bytes):
        return value
    kind = lupa.lua_type(value)
    if kind != "table":
        return Opaque(str(kind or type(value).__name__))
    if depth >= MAX_DEPTH:
        return Opaque("deep")
    table: dict[Any, Any] = {}
    budget[0] -= 1  # the table itself, as a frame counts it
    for key, item in value.items():
        budget[0] -= 1
        if budget[0] < 0:
            raise TooLarge(
                f"a value of more than {MAX_ENTRIES} table entries cannot leave the script"
            )
        table[_key(key)] = _plain(item, depth + 1, budget)
    return table


def _key(key: Any) -> Any:
    """A table key as plain data: keys that are not strings, numbers or booleans cannot be
    dict keys here (a table is not hashable) and are refused wherever a key is read."""
    if isinstance(key, bool | int | float | bytes):
        return key
    return Opaque(str(lupa.lua_type(key) or type(key).__name__))


def rfc3339(moment: dt.datetime) -> str:
    """A time as the spec writes it: RFC 3339, UTC, microseconds, ``Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_lua(runtime: lupa.LuaRuntime, value: Any) -> Any:
    """Plain Python data as a Lua value in ``runtime`` (``TypeError`` for anything else).
    Text becomes bytes; ``None`` inside a map drops the key, inside a list leaves a hole."""
    if value is None or isinstance(value, bool | int | float | bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dt.datetime):
        return rfc3339(value).encode()
    if isinstance(value, Mapping):
        return runtime.table_from(
            {_lua_key(k): to_lua(runtime, v) for k, v in value.items() if v is not None}
        )
    if isinstance(value, list | tuple):
        table = runtime.table_from([])
        for index, item in enumerate(value, 1):
            if item is not None:
                table[index] = to_lua(runtime, item)
        return table
    raise TypeError(f"cannot give a {type(value).__name__} to a script")


def _lua_key(key: Any) -> bytes:
    return key if isinstance(key, bytes) else str(key).encode()
