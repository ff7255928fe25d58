"""The shortcuts of a local commit: conditions checked without replaying the batch
(``storage/_overlay.check_conditions``) and a one-reference blob commit planned in fewer steps
(``storage/_blob_plan.plan_one``) decide and write exactly what the long ways do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satchel import WriteConflictError
from satchel.storage import ABSENT, BLOBS, INDEX, Batch, Equals, Store, open_store
from satchel.storage import _keys as keys
from satchel.storage._blob_plan import CommitPlan, assume, moves_of, plan_commit, plan_one
from satchel.storage._blobs import BlobStore
from satchel.storage._check import check_blobs
from satchel.storage._local_ports import LocalRecords
from satchel.storage._memory import MemoryStore
from satchel.storage._overlay import Overlay, check_conditions

from .conftest import BACKENDS, make_kv

pytestmark = pytest.mark.anyio

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
@given(
    stored=st.dictionaries(_keys_, st.sampled_from([b"1", b"2"])),
    ops=_ops,
    padding=st.sampled_from([0, 40]),
)
def test_check_conditions_agrees_with_replaying_the_batch(
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    stored: dict[bytes, bytes],
    ops: list[tuple[str, bytes, bytes, object, bool]],
    padding: int,
) -> None:
    """Keys written earlier in the batch (in either space), ranges, repeated conditions, in
    short batches and in long ones (which look keys up another way): the shortcut decides as
    the overlay does."""
    kv = make_kv(backend, tmp_path_factory.mktemp("kv"))
    try:
        before = Batch()
        for key, value in stored.items():
            before.put(key, value)
        kv.write(before)
        filler = [("put", b"f%02d" % n, b"0", None, False) for n in range(padding)]
        batch = _batch(filler + ops)
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


def test_a_condition_inside_an_earlier_range_delete_sees_it(tmp_path: Path) -> None:
    """A range deleted earlier in the batch holds the conditioned key without naming it."""
    kv = make_kv("rocksdb", tmp_path)
    try:
        before = Batch()
        before.put(b"b", b"1")
        kv.write(before)
        failing = Batch()
        failing.delete_range(b"a", b"c")
        failing.put(b"b", b"2", expect=Equals(b"1"))
        with pytest.raises(WriteConflictError):
            kv.write(failing)
        passing = Batch()
        passing.delete_range(b"a", b"c")
        passing.put(b"b", b"3", expect=ABSENT)
        kv.write(passing)
        assert kv.get(b"b") == b"3"
    finally:
        kv.close()


# -- plan_one ------------------------------------------------------------------------------

TEXT = b"content planned both ways " * 40


@pytest.fixture
def store() -> Iterator[Store]:
    with open_store(backend="memory") as opened:
        yield opened


def _long_way(store: Store, batch: Batch, add: list[tuple[object, bytes]]) -> CommitPlan:
    blobs = store.blobs
    moves = moves_of(add, ())  # type: ignore[arg-type]
    read = assume(blobs._known, blobs._uploads, moves)
    assert read is not None  # guessed, as plan_one guesses
    return plan_commit(batch, moves, read, True, blobs._metas, blobs._uploads, blobs._encode_whole)


def _short_way(store: Store, batch: Batch, add: list[tuple[object, bytes]]) -> CommitPlan | None:
    blobs = store.blobs
    (move,) = moves_of(add, ())  # type: ignore[arg-type]
    return plan_one(batch, move, blobs._known.get(move[0]), blobs._metas, blobs._uploads)


def _same(short: CommitPlan | None, long: CommitPlan) -> None:
    assert short is not None
    assert list(short.batch.ops) == list(long.batch.ops)
    assert short.batch.conditions == long.batch.conditions
    assert (short.read, short.guessed, short.counts) == (long.read, long.guessed, long.counts)
    assert (short.adopted, short.released) == (long.adopted, long.released)
    assert (short.referenced, short.deduplicated) == (long.referenced, long.deduplicated)
    assert short.cleanup is None and long.cleanup is None


def _caller(owner: bytes) -> Batch:
    batch = Batch()
    batch.put(b"h\x00" + owner, b"head", expect=ABSENT)
    batch.put(owner, b"record")
    return batch


async def test_plan_one_of_new_content_held_in_memory(store: Store) -> None:
    staged = await store.blobs.put_inline(TEXT)
    add = [(staged, b"t\x00a")]
    _same(_short_way(store, _caller(b"t\x00a"), add), _long_way(store, _caller(b"t\x00a"), add))


async def test_plan_one_of_new_content_uploaded(store: Store) -> None:
    writer = store.blobs.writer()
    await writer.add(TEXT)
    staged = await writer.finish()
    add = [(staged, b"t\x00a")]
    _same(_short_way(store, _caller(b"t\x00a"), add), _long_way(store, _caller(b"t\x00a"), add))
    await store.blobs.discard(staged)


async def test_plan_one_of_content_seen_stored(store: Store) -> None:
    first = await store.blobs.put_inline(TEXT)
    await store.blobs.commit(_caller(b"t\x00a"), add=[(first, b"t\x00a")])
    for item in (await store.blobs.put_inline(TEXT), first.ref, first.ref.hash):
        add = [(item, b"t\x00b")]
        _same(_short_way(store, _caller(b"t\x00b"), add), _long_way(store, _caller(b"t\x00b"), add))


async def test_plan_one_leaves_other_commits_to_the_long_way(store: Store) -> None:
    """A release, a blob it has not seen, and an upload of content stored already."""
    first = await store.blobs.put_inline(TEXT)
    assert _short_way(store, Batch(), [(first.ref.hash, b"t\x00a")]) is None  # not seen
    await store.blobs.commit(_caller(b"t\x00a"), add=[(first, b"t\x00a")])
    (drop,) = moves_of((), [(first.ref, b"t\x00a")])
    assert (
        plan_one(Batch(), drop, store.blobs._known.get(drop[0]), store.blobs._metas, set()) is None
    )
    writer = store.blobs.writer()
    await writer.add(TEXT)
    uploaded = await writer.finish()
    assert _short_way(store, Batch(), [(uploaded, b"t\x00b")]) is None
    await store.blobs.commit(_caller(b"t\x00b"), add=[(uploaded, b"t\x00b")])
    assert uploaded._layout is not None
    assert uploaded._layout.data_id not in store.blobs.uploads_in_flight  # its chunks went
    assert await store.records.get(keys.ref_key(first.ref.digest, b"t\x00b")) == b""
    assert (await store.check()).clean


class _CleanupLater:
    """A record store whose first write that frees chunks runs ``hook`` first: another
    writer's commit lands between a release and its cleanup."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.hook: Callable[[], Awaitable[None]] | None = None

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return await self.inner.get(*args, **kwargs)

    async def get_many(self, *args: Any, **kwargs: Any) -> Any:
        return await self.inner.get_many(*args, **kwargs)

    async def scan(self, *args: Any, **kwargs: Any) -> Any:
        return await self.inner.scan(*args, **kwargs)

    async def write(self, batch: Batch, **kwargs: Any) -> Any:
        frees = any(op == "delete_range" and space is BLOBS for op, space, *_ in batch.ops)
        if frees and self.hook is not None:
            hook, self.hook = self.hook, None
            await hook()
        return await self.inner.write(batch, **kwargs)


async def test_a_staging_committed_again_does_not_reuse_chunks_being_freed() -> None:
    """Two writers on one record store: B drops the only reference to a blob and frees its
    chunks a round trip later; meanwhile A commits the same staging again. A's second commit
    writes the chunks under a new data id, so B's cleanup leaves the blob whole (it used to
    write them under the old id, whose chunks B's cleanup then deleted)."""
    records = LocalRecords(MemoryStore())
    a, b = BlobStore(records), BlobStore(_CleanupLater(records))  # type: ignore[arg-type]
    content = b"some small artifact content " * 20
    staged = await a.put_inline(content)
    first = Batch()
    first.put(b"owner1", b"r")
    await a.commit(first, add=[(staged, b"owner1")])

    async def commit_again() -> None:
        second = Batch()
        second.put(b"owner2", b"r")
        await a.commit(second, add=[(staged, b"owner2")])

    b.records.hook = commit_again  # type: ignore[attr-defined]
    release = Batch()
    release.delete(b"owner1")
    await b.commit(release, drop=[(staged.ref, b"owner1")])
    assert await a.references(staged.ref) == [b"owner2"]
    assert await a.read(staged.ref) == content
    assert (await check_blobs(a)).clean
