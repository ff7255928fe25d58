"""Blob records read through the hand-written structure decode exactly as cattrs' does: the
same values for the usual shape, the same refusal (``IntegrityError``) for any other."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from satchel import IntegrityError
from satchel.storage._blobmeta import META_CODEC, BlobMeta
from satchel.storage._codec import converter

GOOD: dict[str, Any] = {
    "size": 1024,
    "stored_size": 600,
    "chunk_size": 1 << 20,
    "chunk_count": 1,
    "data_id": b"\x01" * 16,
    "lz4_map": b"",
    "chunk_digests": b"\x02" * 32,
    "refcount": 3,
    "stored_digests": b"\x03" * 32,
}


def _check(raw: Any) -> None:
    """Decode ``raw`` both ways: the codec gives what cattrs gives, or both refuse it."""
    data = META_CODEC._header + msgpack.packb(raw, use_bin_type=True)
    try:
        expected = converter.structure(raw, BlobMeta)
    except Exception:
        with pytest.raises(IntegrityError):
            META_CODEC.decode(data)
        return
    decoded = META_CODEC.decode(data)
    assert decoded == expected
    for field in BlobMeta.__attrs_attrs__:
        assert type(getattr(decoded, field.name)) is type(getattr(expected, field.name))


def test_a_record_of_the_usual_shape_decodes_to_its_fields() -> None:
    """A usual blob record decodes to exactly the record encoded."""
    meta = BlobMeta(**GOOD)
    assert META_CODEC.decode(META_CODEC.encode(meta)) == meta
    _check(GOOD)


@pytest.mark.parametrize("field", sorted(GOOD))
def test_a_missing_field_decodes_as_cattrs_decodes_it(field: str) -> None:
    """A record missing one field gets cattrs' answer (a default, or a refusal)."""
    _check({k: v for k, v in GOOD.items() if k != field})


_BYTES_FIELDS = {"data_id", "lz4_map", "chunk_digests", "stored_digests"}


def _values(field: str) -> st.SearchStrategy[Any]:
    """Values of every kind for ``field`` (small ints where cattrs would make ``bytes(n)``)."""
    small = field in _BYTES_FIELDS
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**16), 2**16) if small else st.integers(-(2**63), 2**64 - 1),
        st.floats(allow_nan=False, max_value=2**16 if small else None),
        st.text(max_size=4),
        st.binary(max_size=4),
        st.lists(st.integers(0, 255), max_size=3),
    )


@given(st.sampled_from(sorted(GOOD)).flatmap(lambda f: st.tuples(st.just(f), _values(f))))
def test_any_field_value_decodes_as_cattrs_decodes_it(case: tuple[str, Any]) -> None:
    """Whatever one field holds, the codec and cattrs agree on the record or both refuse."""
    field, value = case
    _check({**GOOD, field: value})


def test_a_usual_record_is_decoded_without_cattrs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hand-written structure is what decodes a record of the usual shape."""

    def refuse(raw: Any, cls: type) -> BlobMeta:
        raise AssertionError("cattrs was asked")

    monkeypatch.setattr(META_CODEC, "_structure", refuse)
    meta = BlobMeta(**GOOD)
    assert META_CODEC.decode(META_CODEC.encode(meta)) == meta
