"""Record codec: round trips, schema versions, damaged records."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from satchel import IntegrityError, RecordVersionError
from satchel.storage import RecordCodec


@attrs.frozen
class Note:
    """A record with the kinds of fields satchel stores."""

    id: str
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    digest: bytes
    parent: str | None = None
    count: int = 0


@attrs.frozen
class NoteV2:
    """Note after a schema change: ``count`` renamed to ``uses``."""

    id: str
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    digest: bytes
    parent: str | None = None
    uses: int = 0


NOTE = Note("n1", ("a", "b"), {"k": [1, 2.5, {"x": None}], "ok": True}, b"\x00\xff" * 16)


def rename_count(raw: dict[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2 of Note."""
    raw["uses"] = raw.pop("count")
    return raw


def test_round_trip() -> None:
    """A record decodes to an equal record, bytes and nested metadata included."""
    codec = RecordCodec(Note, kind="note", version=1)
    assert codec.decode(codec.encode(NOTE)) == NOTE


def test_header_carries_the_version() -> None:
    """Encoded records start with the format byte and the schema version."""
    assert RecordCodec(Note, kind="note", version=7).encode(NOTE)[:3] == b"\x01\x00\x07"


def test_newer_version_is_refused() -> None:
    """A record from a newer schema raises RecordVersionError naming both versions."""
    data = RecordCodec(Note, kind="note", version=3).encode(NOTE)
    with pytest.raises(RecordVersionError, match=r"note record is schema version 3.*version 1"):
        RecordCodec(Note, kind="note", version=1).decode(data)


def test_older_version_is_upgraded() -> None:
    """A version-1 record is brought to version 2 by the registered upgrade."""
    old = RecordCodec(Note, kind="note", version=1).encode(attrs.evolve(NOTE, count=4))
    new = RecordCodec(NoteV2, kind="note", version=2, upgrades={1: rename_count})
    assert new.decode(old).uses == 4


def test_older_version_without_upgrade_is_refused() -> None:
    """Without an upgrade path from an old version, decoding says so instead of guessing."""
    old = RecordCodec(Note, kind="note", version=1).encode(NOTE)
    with pytest.raises(RecordVersionError, match="from version 2 on"):
        RecordCodec(NoteV2, kind="note", version=2).decode(old)


@pytest.mark.parametrize("data", [b"", b"\x01\x00", b"\x02\x00\x01\x80", b"\x01\x00\x01\xc1"])
def test_damaged_records_are_integrity_errors(data: bytes) -> None:
    """Truncated, unknown-format or malformed records raise IntegrityError."""
    with pytest.raises(IntegrityError):
        RecordCodec(Note, kind="note", version=1).decode(data)


def test_record_of_wrong_shape_is_integrity_error() -> None:
    """Valid msgpack that does not fit the record class raises IntegrityError."""
    with pytest.raises(IntegrityError, match="does not fit"):
        RecordCodec(Note, kind="note", version=1).decode(b"\x01\x00\x01\x81\xa1x\x01")


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(
    metadata=st.dictionaries(st.text(max_size=8), json_like, max_size=6), tags=st.lists(st.text())
)
def test_any_json_like_metadata_round_trips(metadata: dict[str, Any], tags: list[str]) -> None:
    """Arbitrary JSON-like metadata survives encode and decode unchanged."""
    codec = RecordCodec(Note, kind="note", version=1)
    note = attrs.evolve(NOTE, metadata=metadata, tags=tuple(tags))
    assert codec.decode(codec.encode(note)) == note
