"""Records as JSON, the same shapes Lua sees: times as RFC 3339 UTC strings, enums as their
values, tuples as arrays, and an artifact's ``type`` also under rs-llmspell's ``artifact_type``."""

from __future__ import annotations

import datetime as dt
import enum
import json
from typing import Any

import attrs

from .artifacts._artifact_model import ArtifactInfo


def _plain(instance: Any, field: Any, value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    return value


def to_wire(value: Any) -> Any:
    """Plain JSON data for a record, a list of records or plain data."""
    if attrs.has(type(value)):
        data = attrs.asdict(value, recurse=True, value_serializer=_plain)
        if isinstance(value, ArtifactInfo):
            data["artifact_type"] = data["type"]  # rs-llmspell's name for it
        return data
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    if isinstance(value, dict):
        return {key: to_wire(item) for key, item in value.items()}
    return _plain(None, None, value)


def dumps(value: Any) -> bytes:
    """A record (or plain data) as compact UTF-8 JSON."""
    return json.dumps(to_wire(value), ensure_ascii=False, separators=(",", ":")).encode()
