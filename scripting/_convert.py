"""Script values as Python data, on the host side.

A script's arguments arrive as plain data (``_values``): strings as bytes, tables as dicts of
their raw entries, what is not data as ``Opaque``. Content stays bytes, text is decoded as
UTF-8. A table whose keys are all positive integers is an array (holes become ``None``); any
other is a map with string keys; an empty table is an empty array (arguments that want a map
accept it). Python values go back as Lua tables, strings and numbers; integers stay integers.
"""

from __future__ import annotations

from typing import Any

from satchel.runtime._errors import InvalidArgumentError

from ._values import MAX_DEPTH, Opaque
from ._values import rfc3339 as rfc3339

#: An array may have holes, but not many more slots than values (no sparse-table bombs).
_MAX_HOLE_RATIO = 4


def text(value: Any, what: str) -> str:
    """A Lua string as Python text."""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise InvalidArgumentError(f"{what} must be UTF-8 text") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise InvalidArgumentError(f"{what} must be a string, not {lua_type_name(value)}")


def lua_type_name(value: Any) -> str:
    """The Lua type name of a value the bridge received."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, bytes):
        return "string"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, Opaque):
        return "table" if value.what == "deep" else value.what
    return type(value).__name__


def from_lua(value: Any, depth: int = 0) -> Any:
    """A script's value as plain Python data (strings as text)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, bytes):
        return text(value, "a string in this value")
    if (isinstance(value, Opaque) and value.what == "deep") or depth >= MAX_DEPTH:
        raise InvalidArgumentError(f"tables nest deeper than {MAX_DEPTH} levels (a cycle?)")
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"a {lua_type_name(value)} cannot leave the script")
    entries = list(value.items())
    if not entries:
        return []
    if all(type(k) is int and k > 0 for k, _ in entries):
        top = max(k for k, _ in entries)
        if top <= len(entries) * _MAX_HOLE_RATIO:
            array: list[Any] = [None] * top
            for k, v in entries:
                array[k - 1] = from_lua(v, depth + 1)
            return array
    mapping = {}
    for k, v in entries:
        if isinstance(k, bytes):
            key = text(k, "a table key")
        elif isinstance(k, int | float) and not isinstance(k, bool):
            key = str(k)
        else:
            raise InvalidArgumentError(f"a table key must be a string, not {lua_type_name(k)}")
        mapping[key] = from_lua(v, depth + 1)
    return mapping


def mapping_from_lua(value: Any, what: str) -> dict[str, Any] | None:
    """An optional table argument that must be a map (``{}`` included)."""
    if value is None:
        return None
    converted = from_lua(value)
    if converted == []:
        return {}
    if not isinstance(converted, dict):
        raise InvalidArgumentError(f"{what} must be a table of named fields")
    return converted
