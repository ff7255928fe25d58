"""The persisted indexes artifact queries read, written in the batch of each store or delete.

Every version has a *suffix*: its creation time (8 bytes) and id (16 bytes). The
creation-ordered indexes (all versions, latest versions, per session, per type, per tag, per
custom metadata pair) are keyed ``prefix + suffix``, so a query scanning one of them tests each
version it meets against the others with one multi-get, as session queries do. The all-versions
entry's value holds the size and where the record is, so size and name filters need no
record. Two order indexes (size, case-folded name) serve the other orders.

Types, tags and metadata pairs are keyed by a 16-byte BLAKE3 digest of their value, so any
text (NUL included) makes a fixed-length key.
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Iterable, Mapping
from typing import Any

import blake3

from satchel.storage import _keys as keys

from .. import _validate as validate
from ._artifact_model import ArtifactRecord

ALL = keys.ARTIFACT_INDEX + b"a"  # + suffix -> size(8) + record key tail
LATEST = keys.ARTIFACT_INDEX + b"l"  # + suffix -> b"" (the latest version of each name)
SESSION = keys.ARTIFACT_INDEX + b"s"  # + session(16) + suffix -> b""
TYPE = keys.ARTIFACT_INDEX + b"t"  # + digest(16) + suffix -> b""
TAG = keys.ARTIFACT_INDEX + b"g"  # + digest(16) + suffix -> b""
META = keys.ARTIFACT_INDEX + b"m"  # + digest(16) + suffix -> b""
BY_SIZE = keys.ARTIFACT_INDEX + b"z"  # + size(8) + suffix -> b""
BY_NAME = keys.ARTIFACT_INDEX + b"n"  # + case-folded name + NUL + suffix -> b""

SUFFIX_BYTES = 8 + 16
_U64 = struct.Struct(">Q")


def suffix(created_us: int, aid: bytes) -> bytes:
    """The creation time and id that end every index key of a version."""
    return _U64.pack(max(0, created_us)) + aid


def suffix_of(record: ArtifactRecord) -> bytes:
    """The suffix of a stored version."""
    return suffix(record.created_us, validate.artifact_id(record.id))


def session_prefix(sid: bytes) -> bytes:
    """The per-session index of ``sid``."""
    return SESSION + sid


@functools.lru_cache(maxsize=4096)
def type_prefix(kind: str) -> bytes:
    """The index of one artifact type."""
    return TYPE + _digest(b"type", kind.encode())


@functools.lru_cache(maxsize=4096)
def tag_prefix(tag: str) -> bytes:
    """The index of one tag."""
    return TAG + _digest(b"tag", tag.encode())


def meta_prefix(key: str, value: Any) -> bytes:
    """The index of one custom metadata pair (``value`` compared as canonical JSON)."""
    if type(value) is str or type(value) is int or type(value) is bool:
        return _scalar_meta_prefix(key, value, type(value) is bool)
    return META + _digest(b"meta", key.encode() + b"\x00" + canonical(value))


@functools.lru_cache(maxsize=4096)
def _scalar_meta_prefix(key: str, value: str | int | bool, _is_bool: bool) -> bytes:
    # ``_is_bool`` keeps True and 1 apart in the cache, as they are in JSON.
    return META + _digest(b"meta", key.encode() + b"\x00" + canonical(value))


def name_order_key(name: str) -> bytes:
    """Names order case-insensitively."""
    return name.casefold().encode()


def canonical(value: Any) -> bytes:
    """``value`` as JSON with sorted keys and integral floats as integers, so equal values
    (``1`` and ``1.0``, maps in any key order) encode alike; ``true`` stays apart from ``1``."""
    return json.dumps(
        _normalized(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def _normalized(value: Any) -> Any:
    if type(value) is float and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _normalized(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalized(v) for v in value]
    return value


def _digest(family: bytes, value: bytes) -> bytes:
    return blake3.blake3(family + b"\x00" + value).digest(length=16)


def summary(size: int, record_tail: bytes) -> bytes:
    """The all-versions entry's value: the size and the record key after its tag."""
    return _U64.pack(size) + record_tail


def parse_summary(value: bytes) -> tuple[int, bytes]:
    """``(size, record key tail)`` of an all-versions entry."""
    return _U64.unpack_from(value)[0], value[8:]


def entries(
    record: ArtifactRecord, record_tail: bytes, known_suffix: bytes | None = None
) -> list[tuple[bytes, bytes]]:
    """Every index entry of one version except the latest-version one."""
    end = suffix_of(record) if known_suffix is None else known_suffix
    sid = record_tail[:16]
    found = [
        (ALL + end, summary(record.size, record_tail)),
        (SESSION + sid + end, b""),
        (type_prefix(record.type) + end, b""),
        (BY_SIZE + _U64.pack(record.size) + end, b""),
        (BY_NAME + name_order_key(record.name) + b"\x00" + end, b""),
    ]
    found.extend((tag_prefix(tag) + end, b"") for tag in record.tags)
    found.extend((meta_prefix(k, v) + end, b"") for k, v in record.custom.items())
    return found


def keys_of(records: Iterable[ArtifactRecord], tails: Iterable[bytes]) -> list[bytes]:
    """Every index key of these versions, the latest-version one included."""
    found: list[bytes] = []
    for record, tail in zip(records, tails, strict=True):
        found.extend(key for key, _ in entries(record, tail))
        found.append(LATEST + suffix_of(record))
    return found
