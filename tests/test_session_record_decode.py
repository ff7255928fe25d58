"""Session records read through the hand-written structure decode exactly as cattrs' does:
the same values (and types) for the usual shapes, the same refusal (``IntegrityError``) for
broken ones."""

from __future__ import annotations

from typing import Any

import attrs
import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from satchel import IntegrityError
from satchel.actors.sessions import _session_layout as layout
from satchel.actors.sessions._session_layout import RECORD_CODEC, SessionRecord
from satchel.storage._codec import converter

GOOD: dict[str, Any] = {
    "id": "9b2d8a4e-0000-5000-8000-000000000000",
    "name": "plan",
    "description": "the plan",
    "tags": ["a", "b"],
    "metadata": {"owner": "u1", "k": [1, 2.5, {"x": None}]},
    "parent_id": None,
    "config": {"max_value_bytes": 1 << 20, "max_duration_s": 60.0, "rate_burst": None},
    "status": "active",
    "created_us": 1_700_000_000_000_000,
    "ended_us": None,
    "failure_reason": None,
    "deadlines": [[1_700_000_060_000_000, b"d"]],
    "budget_of": None,
    "key": "thread-1",
    "app": "support",
    "user": None,
}

#: Field values cattrs converts or refuses: the fast path must agree on each.
ODD: list[tuple[str, Any]] = [
    ("id", 12),
    ("name", None),
    ("tags", "ab"),
    ("tags", [1, None]),
    ("tags", None),
    ("metadata", {1: "one"}),
    ("metadata", None),
    ("metadata", [["a", 1]]),
    ("parent_id", 7),
    ("config", None),
    ("config", {"max_value_bytes": None}),
    ("config", {"max_duration_s": 5}),
    ("config", {"rate_burst": 2.5}),
    ("status", "sleeping"),
    ("status", None),
    ("created_us", "12"),
    ("created_us", 1.5),
    ("ended_us", "3"),
    ("deadlines", [[1, "d"]]),
    ("deadlines", [[1, b"d", 3]]),
    ("deadlines", [(1, b"d")]),
    ("deadlines", None),
    ("key", 5),
    ("user", b"u"),
]


def _encoded(raw: Any) -> bytes:
    return RECORD_CODEC._header + msgpack.packb(raw, use_bin_type=True)


def _expected(data: bytes) -> SessionRecord | None:
    """cattrs' structure of the record stored as ``data``, or ``None`` where it refuses."""
    try:
        return converter.structure(msgpack.unpackb(data[3:], raw=False), SessionRecord)
    except Exception:
        return None


def _types(record: SessionRecord) -> list[Any]:
    values = attrs.astuple(record, recurse=False)
    return [type(v) for v in values] + [type(v) for v in attrs.astuple(record.config)]


def _check(raw: Any) -> None:
    data = _encoded(raw)
    expected = _expected(data)
    if expected is None:
        with pytest.raises(IntegrityError):
            RECORD_CODEC.decode(data)
        return
    decoded = RECORD_CODEC.decode(data)
    assert decoded == expected
    assert _types(decoded) == _types(expected)


def test_the_usual_shape_decodes_as_cattrs_decodes_it() -> None:
    """A record of the usual shape decodes to what cattrs' structure gives, type for type."""
    _check(GOOD)


@pytest.mark.parametrize(("field", "value"), ODD)
def test_odd_fields_decode_as_cattrs_decodes_them(field: str, value: Any) -> None:
    """A field of an unusual type or value decodes (or is refused) as cattrs decides."""
    _check({**GOOD, field: value})


@pytest.mark.parametrize("field", sorted(GOOD))
def test_a_missing_field_is_refused_as_cattrs_refuses_it(field: str) -> None:
    """A record without one of its fields decodes as cattrs decides (defaults, or refused)."""
    _check({k: v for k, v in GOOD.items() if k != field})


def test_a_config_seen_before_is_shared_and_a_new_one_is_not() -> None:
    """Records with equal config maps share one config; a different map gets its own."""
    first = RECORD_CODEC.decode(_encoded(GOOD))
    again = RECORD_CODEC.decode(_encoded({**GOOD, "name": "other"}))
    other = RECORD_CODEC.decode(_encoded({**GOOD, "config": {"max_value_bytes": 1024}}))
    assert again.config is first.config
    assert other.config.max_value_bytes == 1024 and other.config != first.config


_text = st.text(max_size=8)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)


@given(
    name=_text,
    tags=st.lists(_text, max_size=4),
    metadata=st.dictionaries(_text, _json, max_size=3),
    optional=st.lists(st.none() | _text, min_size=6, max_size=6),
    status=st.sampled_from(["active", "suspended", "completed", "failed", "archived"]),
    ended=st.none() | st.integers(0, 2**62),
    deadlines=st.lists(
        st.tuples(st.integers(0, 2**62), st.sampled_from([b"d", b"i", b"r", b"x"])), max_size=3
    ),
    config=st.fixed_dictionaries(
        {"max_value_bytes": st.integers(1, 1 << 20)},
        optional={"max_bytes": st.integers(1, 10**6), "retention_days": st.floats(1, 30)},
    ),
)
def test_any_usual_record_decodes_as_cattrs_decodes_it(
    name: str,
    tags: list[str],
    metadata: dict[str, Any],
    optional: list[str | None],
    status: str,
    ended: int | None,
    deadlines: list[tuple[int, bytes]],
    config: dict[str, Any],
) -> None:
    """Any record of the usual shape decodes as cattrs' structure decodes it."""
    parent, reason, budget, key, app, user = optional
    _check(
        {
            **GOOD,
            "name": name,
            "tags": tags,
            "metadata": metadata,
            "parent_id": parent,
            "failure_reason": reason,
            "budget_of": budget,
            "key": key,
            "app": app,
            "user": user,
            "status": status,
            "ended_us": ended,
            "deadlines": [list(d) for d in deadlines],
            "config": config,
        }
    )


def test_a_record_encoded_by_the_layout_reads_back() -> None:
    """What the layout writes reads back equal, through the fast path."""
    record = RECORD_CODEC.decode(_encoded(GOOD))
    assert RECORD_CODEC.decode(RECORD_CODEC.encode(record)) == record
    assert layout.RECORD_CODEC is RECORD_CODEC
