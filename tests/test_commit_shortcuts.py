"""The shortcuts of a local commit: conditions checked without replaying the batch
(``storage/_overlay.check_conditions``) decide exactly what the long way does."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satchel import WriteConflictError
from satchel.storage import ABSENT, BLOBS, INDEX, Batch, Equals
from satchel.storage._overlay import Overlay, check_conditions

from .conftest import BACKENDS, make_kv

_keys_ = st.sampled_from([b"a", b"b", b"c", b"d"])
_expect = st.one_of(st.none(), st.just(ABSENT), st.builds(Equals, st.sampled_from([b"1", b"2"])))
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), _keys_, st.sampled_from([b"1", b"2"]), _expect, st.booleans()),
        st.tuples(st.just("delete"), _keys_, st.just(b""), _expect, st.booleans()),
        st.tuples(st.just("range"), _keys_, _keys_, st.none(), st.just(False)),
    ),
    min_size=1,
    max_size=8,
)


def _batch(ops: list[tuple[str, bytes, bytes, object, bool]]) -> Batch:
    batch = Batch()
    for op, key, value, expect, in_blobs in ops:
        space = BLOBS if in_blobs else INDEX
        if op == "range":
            batch.delete_range(key, value)
        elif space is BLOBS and op == "put":  # conditions apply to the index space only
            batch.put(key, value, BLOBS)
        elif space is BLOBS:
            batch.delete(key, BLOBS)
        elif op == "put":
            batch.put(key, value, expect=expect)  # type: ignore[arg-type]
        else:
            batch.delete(key, expect=expect)  # type: ignore[arg-type]
    return batch


def _verdict(check: object) -> str:
    try:
        check()  # type: ignore[operator]
    except WriteConflictError:
        return "conflict"
    return "holds"


@pytest.mark.parametrize("backend", BACKENDS)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stored=st.dictionaries(_keys_, st.sampled_from([b"1", b"2"])), ops=_ops)
def test_check_conditions_agrees_with_replaying_the_batch(
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    stored: dict[bytes, bytes],
    ops: list[tuple[str, bytes, bytes, object, bool]],
) -> None:
    """Keys written earlier in the batch (in either space), ranges, repeated conditions: the
    shortcut decides as the overlay does."""
    kv = make_kv(backend, tmp_path_factory.mktemp("kv"))
    try:
        before = Batch()
        for key, value in stored.items():
            before.put(key, value)
        kv.write(before)
        batch = _batch(ops)
        replayed = _verdict(lambda: Overlay(kv).apply(batch))
        assert _verdict(lambda: check_conditions(kv, batch)) == replayed
        assert _verdict(lambda: check_conditions(kv, batch, kv.get)) == replayed
    finally:
        kv.close()


def test_a_condition_on_a_key_written_earlier_sees_that_write(tmp_path: Path) -> None:
    """The case the shortcut must not take: the stored value would pass, the batch's own
    earlier put makes it fail (and the other way round)."""
    kv = make_kv("rocksdb", tmp_path)
    try:
        before = Batch()
        before.put(b"k", b"old")
        kv.write(before)
        failing = Batch()
        failing.put(b"k", b"new")
        failing.put(b"k", b"newer", expect=Equals(b"old"))
        with pytest.raises(WriteConflictError):
            kv.write(failing)
        passing = Batch()
        passing.delete(b"k")
        passing.put(b"k", b"again", expect=ABSENT)
        kv.write(passing)
        assert kv.get(b"k") == b"again"
    finally:
        kv.close()
