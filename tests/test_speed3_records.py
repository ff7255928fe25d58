"""Artifact records read through the hand-written structure decode exactly as cattrs' does:
the same values for the usual shapes, the same refusal (``IntegrityError``) for broken ones,
and version listings equal to the records' infos."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from satchel import IntegrityError, Runtime
from satchel.actors.artifacts import _artifact_layout as layout
from satchel.actors.artifacts._artifact_model import ARTIFACT_CODEC, ArtifactRecord
from satchel.storage._codec import converter

GOOD: dict[str, Any] = {
    "id": "01J00000000000000000000000",
    "session_id": "9b2d8a4e-0000-5000-8000-000000000000",
    "name": "report.json",
    "version": 3,
    "type": "report",
    "mime_type": "application/json",
    "description": "the plan",
    "tags": ["a", "b"],
    "custom": {"k": [1, 2.5, {"x": None}], "ok": True},
    "content_hash": "ab" * 32,
    "size": 1024,
    "stored_size": 1024,
    "compressed": False,
    "created_us": 1_700_000_000_000_000,
    "created_by": "9b2d8a4e-0000-5000-8000-000000000000",
}

#: Field values cattrs converts or refuses: the fast path must agree on each.
ODD: list[tuple[str, Any]] = [
    ("id", 12),
    ("version", "7"),
    ("version", "seven"),
    ("version", 2.9),
    ("version", None),
    ("description", None),
    ("description", 5),
    ("tags", []),
    ("tags", "ab"),
    ("tags", [1, None]),
    ("tags", {"a": 1}),
    ("tags", None),
    ("custom", {}),
    ("custom", {1: "one"}),
    ("custom", {"k": b"v"}),
    ("custom", [["a", 1]]),
    ("custom", None),
    ("compressed", 0),
    ("compressed", "yes"),
    ("created_us", "12"),
    ("created_us", [1]),
    ("size", b"1"),
]


def _encoded(raw: Any) -> bytes:
    return ARTIFACT_CODEC._header + msgpack.packb(raw, use_bin_type=True)


def _expected(data: bytes) -> ArtifactRecord | None:
    """cattrs' structure of the record stored as ``data``, or ``None`` where it refuses."""
    try:
        return converter.structure(msgpack.unpackb(data[3:], raw=False), ArtifactRecord)
    except Exception:
        return None


def _check(raw: Any) -> None:
    data = _encoded(raw)
    expected = _expected(data)
    if expected is None:
        with pytest.raises(IntegrityError):
            ARTIFACT_CODEC.decode(data)
        with pytest.raises(IntegrityError):
            ARTIFACT_CODEC.decode_as(data, layout._info_of, layout.to_info)
        return
    decoded = ARTIFACT_CODEC.decode(data)
    assert decoded == expected
    assert [type(getattr(decoded, f)) for f in attrs_fields()] == [
        type(getattr(expected, f)) for f in attrs_fields()
    ]
    try:
        info = layout.to_info(expected)
    except IntegrityError:  # a time no date holds: damaged, both ways
        with pytest.raises(IntegrityError):
            ARTIFACT_CODEC.decode_as(data, layout._info_of, layout.to_info)
        return
    assert ARTIFACT_CODEC.decode_as(data, layout._info_of, layout.to_info) == info


def attrs_fields() -> list[str]:
    return [f.name for f in ArtifactRecord.__attrs_attrs__]


@pytest.mark.parametrize(("field", "value"), ODD)
def test_odd_fields_decode_as_cattrs_decodes_them(field: str, value: Any) -> None:
    _check({**GOOD, field: value})


@pytest.mark.parametrize("field", sorted(GOOD))
def test_a_missing_field_is_refused_as_cattrs_refuses_it(field: str) -> None:
    raw = dict(GOOD)
    del raw[field]
    _check(raw)


@pytest.mark.parametrize("raw", [GOOD, {**GOOD, "extra": 1}, [1, 2], "text", None, 5])
def test_whole_records_decode_as_cattrs_decodes_them(raw: Any) -> None:
    _check(raw)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.text(max_size=5),
    st.binary(max_size=3),
)


@example(field="created_us", value=-62_135_596_800_000_001)  # before year 1 (found by CI)
@example(field="created_us", value=253_402_300_800_000_000)  # after 9999
@given(
    field=st.sampled_from(sorted(GOOD)),
    value=st.one_of(
        _SCALARS,
        st.lists(_SCALARS, max_size=3),
        st.dictionaries(st.text(max_size=3), _SCALARS, max_size=3),
    ),
)
def test_any_field_value_decodes_as_cattrs_decodes_it(field: str, value: Any) -> None:
    _check({**GOOD, field: value})


@pytest.mark.anyio
async def test_version_listing_equals_the_records_infos(rt: Runtime) -> None:
    sid = await rt.sessions.create()
    for n in range(3):
        await rt.artifacts.store(
            sid,
            "a.json",
            b"x" * n,
            type="report",
            metadata={"tags": ["t", str(n)], "description": f"v{n}", "n": n, "m": {"k": [n]}},
        )
    listed = await rt.artifacts.versions(sid, "a.json")
    records = rt.store.records
    from satchel.actors.sessions import _session_layout as session_layout

    stored = await layout.versions(records, session_layout.bytes_of(sid), b"a.json")
    assert listed == [layout.to_info(r) for r in stored]
    assert [i.version for i in listed] == [1, 2, 3]
    assert listed[2].tags == ("t", "2") and listed[2].custom == {"n": 2, "m": {"k": [2]}}
