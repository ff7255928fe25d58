"""Sessions: create, read, lifecycle, variables, journal, delete, persistence across reopen."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satchel import (
    IntegrityError,
    InvalidArgumentError,
    InvalidStateTransitionError,
    Runtime,
    SessionHasChildrenError,
    SessionNotActiveError,
    SessionNotFoundError,
    SessionStatus,
    ValidationError,
    open_runtime,
)

# -- create and get -------------------------------------------------------------------------


@pytest.fixture
def rt(networked_rt: Runtime) -> Runtime:
    """This suite's runtimes: every local one, and PostgreSQL with S3."""
    return networked_rt


async def test_create_keeps_every_field(rt: Runtime) -> None:
    """Every field given at creation comes back from get, tags deduplicated in order."""
    parent = await rt.sessions.create(name="parent")
    meta = {"owner": "ana", "nested": {"list": [1, 2.5, None, True], "empty": {}}}
    sid = await rt.sessions.create(
        name="child",
        description="does things",
        tags=["b", "a", "b"],
        metadata=meta,
        parent_id=parent,
        config={"max_operations": 10},
    )
    info = await rt.sessions.get(sid)
    assert uuid.UUID(sid).version == 4
    assert (info.id, info.name, info.description) == (sid, "child", "does things")
    assert info.tags == ("b", "a")
    assert info.metadata == meta
    assert info.parent_session_id == parent
    assert info.status is SessionStatus.ACTIVE
    assert info.config.max_operations == 10
    assert (info.artifact_count, info.total_bytes, info.operation_count) == (0, 0, 0)
    assert info.ended_at is None and info.failure_reason is None
    assert info.created_at == info.updated_at


async def test_ids_are_unique_and_random(rt: Runtime) -> None:
    """Two sessions never share an id, and ids are UUIDv4."""
    ids = {await rt.sessions.create() for _ in range(200)}
    assert len(ids) == 200
    assert {uuid.UUID(i).version for i in ids} == {4}


async def test_unknown_parent_is_not_found(rt: Runtime) -> None:
    """Creating under a parent that does not exist raises SessionNotFound and stores nothing."""
    missing = str(uuid.uuid4())
    with pytest.raises(SessionNotFoundError, match=missing):
        await rt.sessions.create(name="orphan", parent_id=missing)
    assert await rt.sessions.list() == []


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"name": "x" * 256}, ValidationError),
        ({"name": "a\x00b"}, ValidationError),
        ({"name": 3}, InvalidArgumentError),
        ({"tags": "abc"}, InvalidArgumentError),
        ({"tags": ["x" * 65]}, ValidationError),
        ({"tags": [""]}, ValidationError),
        ({"tags": [f"t{i}" for i in range(65)]}, ValidationError),
        ({"metadata": {1: "x"}}, InvalidArgumentError),
        ({"metadata": {"x": object()}}, InvalidArgumentError),
        ({"metadata": {"x": float("nan")}}, ValidationError),
        ({"metadata": {"x": ["ok", "\udc80"]}}, ValidationError),
        ({"metadata": {"\udc80": 1}}, ValidationError),
        ({"name": "\udc80"}, ValidationError),
        ({"metadata": {"x": "y" * 70_000}}, ValidationError),
        ({"metadata": [1]}, InvalidArgumentError),
        ({"parent_id": "not-a-uuid"}, SessionNotFoundError),  # a key no session has
        ({"parent_id": ""}, InvalidArgumentError),
        ({"config": {"max_operations": 0}}, ValidationError),
        ({"config": {"max_operations": "3"}}, InvalidArgumentError),
        ({"config": {"idle_timeout_s": -1}}, ValidationError),
        ({"config": {"no_such_field": 1}}, InvalidArgumentError),
        ({"config": {"max_value_bytes": None}}, InvalidArgumentError),
        ({"config": "fast"}, InvalidArgumentError),
    ],
)
async def test_bad_create_input_is_refused(
    rt: Runtime, fields: dict[str, Any], error: type[Exception]
) -> None:
    """Each kind of bad input gets its typed error and leaves no session behind."""
    with pytest.raises(error):
        await rt.sessions.create(**fields)
    assert await rt.sessions.list() == []
    assert (await session_keys(rt)) == []


async def session_keys(rt: Runtime) -> list[bytes]:
    """Every key in the store except the kernel's reminders."""
    found = await rt.store.records.scan(b"\x00", b"\xff")
    return [k for k, _ in found if not k.startswith(b"rmd\x00")]


async def test_malformed_and_unknown_ids(rt: Runtime) -> None:
    """A malformed id is InvalidArgument; an unknown id or key is SessionNotFound."""
    with pytest.raises(InvalidArgumentError):
        rt.session("")
    with pytest.raises(SessionNotFoundError):
        await rt.session("../etc/passwd").info()  # a key no session has
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.get(str(uuid.uuid1()))  # any UUID is well formed
    unknown = rt.session(str(uuid.uuid4()))
    for call in (unknown.info(), unknown.get_state("k"), unknown.suspend(), unknown.delete()):
        with pytest.raises(SessionNotFoundError):
            await call
    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "k", 1)  # the manager now remembers this id's ref
    for bad in ("", [sid], b"x", None):
        with pytest.raises(InvalidArgumentError):
            await rt.sessions.set_state(bad, "k", 2)  # type: ignore[arg-type]
    assert await rt.sessions.get_state(sid, "k") == 1


# -- lifecycle ------------------------------------------------------------------------------

ALLOWED = {
    ("active", "suspend"): "suspended",
    ("suspended", "resume"): "active",
    ("active", "complete"): "completed",
    ("suspended", "complete"): "completed",
    ("active", "fail"): "failed",
    ("suspended", "fail"): "failed",
    ("completed", "archive"): "archived",
    ("failed", "archive"): "archived",
}
PATHS = {
    "active": [],
    "suspended": ["suspend"],
    "completed": ["complete"],
    "failed": ["fail"],
    "archived": ["complete", "archive"],
}
OPERATIONS = ["suspend", "resume", "complete", "fail", "archive"]


@pytest.mark.parametrize("start", list(PATHS))
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_lifecycle_table(rt: Runtime, start: str, operation: str) -> None:
    """Every (status, operation) pair does what the spec's table says, and nothing else."""
    session = rt.session(await rt.sessions.create())
    for step in PATHS[start]:
        await getattr(session, step)()
    expected = ALLOWED.get((start, operation))
    if expected is None:
        with pytest.raises(InvalidStateTransitionError, match=f"it is {start}"):
            await getattr(session, operation)()
        assert (await session.info()).status == start
    else:
        await getattr(session, operation)()
        info = await session.info()
        assert info.status == expected
        assert (info.ended_at is not None) == (expected in ("completed", "failed", "archived"))
    assert (await rt.sessions.check()).clean


async def test_fail_keeps_reason_and_only_active_sessions_accept_writes(rt: Runtime) -> None:
    """A failed session keeps its reason; writes to a non-active session are refused."""
    session = rt.session(await rt.sessions.create())
    await session.set_state("k", 1)
    await session.fail("tool crashed")
    info = await session.info()
    assert (info.status, info.failure_reason) == ("failed", "tool crashed")
    with pytest.raises(SessionNotActiveError, match="failed"):
        await session.set_state("k", 2)
    with pytest.raises(SessionNotActiveError):
        await session.delete_state("k")
    assert await session.get_state("k") == 1


# -- variables ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(value=json_values)
async def test_state_round_trips_json_like_values(value: Any) -> None:
    """Any JSON-like value set as a variable comes back equal."""
    async with open_runtime(store="memory") as rt:
        session = rt.session(await rt.sessions.create())
        await session.set_state("v", value)
        assert await session.get_state("v") == value


async def test_state_set_get_delete_list(rt: Runtime) -> None:
    """Variables are set, listed in key order, overwritten, deleted, and counted."""
    session = rt.session(await rt.sessions.create())
    await session.set_state("b", 1)
    await session.set_state("a", {"x": [1, 2]})
    await session.set_state("b", "two")
    assert await session.list_state() == ["a", "b"]
    assert await session.get_state("b") == "two"
    await session.delete_state("a")
    await session.delete_state("never-set")
    assert await session.list_state() == ["b"]
    assert await session.get_state("a") is None
    assert (await session.info()).operation_count == 5


async def test_state_keys_and_values_are_bounded(tmp_path: Path) -> None:
    """Keys must be 1-256 bytes; values are bounded by max_value_bytes; nothing is written."""
    async with open_runtime(tmp_path, session_defaults=None) as rt:
        session = rt.session(await rt.sessions.create(config={"max_value_bytes": 100}))
        with pytest.raises(ValidationError):
            await session.set_state("", 1)
        with pytest.raises(ValidationError):
            await session.set_state("k" * 257, 1)
        await session.set_state("k" * 256, 1)
        with pytest.raises(InvalidArgumentError):
            await session.set_state(1, 1)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="max_value_bytes"):
            await session.set_state("big", "x" * 200)
        with pytest.raises(InvalidArgumentError):
            await session.set_state("set", {1, 2})
        with pytest.raises(ValidationError, match="not valid Unicode"):
            await session.set_state("bad", {"a": ["\udc80"]})
        with pytest.raises(ValidationError, match=r"\['a'\]\[1\]: inf"):
            await session.set_state("inf", {"a": [1, float("inf")]})
        assert await session.list_state() == ["k" * 256]
        assert (await session.info()).operation_count == 1


async def test_sessions_do_not_see_each_others_variables(rt: Runtime) -> None:
    """A variable of one session is not visible from another."""
    one = rt.session(await rt.sessions.create())
    two = rt.session(await rt.sessions.create())
    await one.set_state("secret", 42)
    assert await two.get_state("secret") is None
    assert await two.list_state() == []


# -- journal --------------------------------------------------------------------------------


async def test_journal_records_every_change_in_order(rt: Runtime) -> None:
    """Create, variable changes and transitions each append one entry with its data."""
    session = rt.session(await rt.sessions.create(name="j", tags=["t"]))
    await session.set_state("k", [1])
    await session.delete_state("k")
    await session.suspend()
    await session.fail("why")
    entries = await session.timeline()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert [e.kind for e in entries] == [
        "session_created",
        "state_set",
        "state_deleted",
        "status_changed",
        "status_changed",
    ]
    assert entries[0].data["name"] == "j" and entries[0].data["tags"] == ["t"]
    assert entries[1].data == {"key": "k", "value": [1]}
    assert entries[4].data == {"from": "suspended", "to": "failed", "reason": "why"}
    assert all(a.at <= b.at for a, b in itertools.pairwise(entries))
    assert [e.seq for e in await session.timeline(offset=2, limit=2)] == [3, 4]
    with pytest.raises(ValidationError):
        await session.timeline(limit=-1)


async def test_refused_operations_leave_no_journal_entry(rt: Runtime) -> None:
    """An operation refused by validation or lifecycle writes nothing at all."""
    session = rt.session(await rt.sessions.create())
    with pytest.raises(ValidationError):
        await session.set_state("", 1)
    with pytest.raises(InvalidStateTransitionError):
        await session.resume()
    assert len(await session.timeline()) == 1


# -- delete ---------------------------------------------------------------------------------


async def test_delete_removes_everything(rt: Runtime) -> None:
    """Deleting removes the record, variables, journal and index entries."""
    session = rt.session(await rt.sessions.create(name="gone", tags=["x"]))
    await session.set_state("k", 1)
    await session.delete()
    with pytest.raises(SessionNotFoundError):
        await session.info()
    with pytest.raises(SessionNotFoundError):
        await session.timeline()
    assert await rt.sessions.list(tags=["x"]) == []
    assert (await session_keys(rt)) == []


async def test_cascade_delete_is_one_batch_even_with_live_children(rt: Runtime) -> None:
    """Cascade removes a tree whose sessions have live actors, in one write, leaving no key."""
    root = await rt.sessions.create(name="root")
    kids = [await rt.sessions.create(parent_id=root) for _ in range(3)]
    grandkid = await rt.sessions.create(parent_id=kids[0])
    for sid in [*kids, grandkid]:
        await rt.sessions.set_state(sid, "k", sid)
    assert all(_live(rt, sid) for sid in kids)
    if rt.store.kv is None:
        pytest.skip("counts the writes of the local backend")
    writes = []
    original = rt.store.kv.write

    def counting(batch: Any, **options: Any) -> None:
        writes.append(len(batch))
        original(batch, **options)

    rt.store.kv.write = counting  # type: ignore[method-assign]
    await rt.sessions.delete(root, cascade=True)
    rt.store.kv.write = original  # type: ignore[method-assign]
    assert len(writes) == 1
    assert (await session_keys(rt)) == []
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.get_state(kids[1], "k")


async def test_delete_with_children_needs_cascade(rt: Runtime) -> None:
    """A parent with children refuses deletion unless cascade, which deletes the whole tree."""
    root = await rt.sessions.create(name="root")
    child = await rt.sessions.create(name="child", parent_id=root)
    grandchild = await rt.sessions.create(name="grandchild", parent_id=child)
    other = await rt.sessions.create(name="other")
    with pytest.raises(SessionHasChildrenError, match=child):
        await rt.sessions.delete(root)
    assert [s.id for s in await rt.sessions.children(root)] == [child]
    await rt.sessions.delete(root, cascade=True)
    for gone in (root, child, grandchild):
        with pytest.raises(SessionNotFoundError):
            await rt.sessions.get(gone)
    assert [s.id for s in await rt.sessions.list()] == [other]
    assert (await rt.sessions.check()).clean


# -- persistence ----------------------------------------------------------------------------


async def test_everything_survives_reopen(tmp_path: Path) -> None:
    """Status, variables, counters and journal of every session, ended ones too, survive."""
    async with open_runtime(tmp_path) as rt:
        done = rt.session(await rt.sessions.create(name="done"))
        await done.set_state("result", {"ok": True})
        await done.complete()
        failed = rt.session(await rt.sessions.create(name="failed"))
        await failed.fail("boom")
        live = rt.session(await rt.sessions.create(name="live"))
        for i in range(5):
            await live.set_state(f"k{i}", i)
        before = {s.id: s for s in await rt.sessions.list()}
    async with open_runtime(tmp_path) as rt:
        after = {s.id: s for s in await rt.sessions.list()}
        assert after == before
        assert await rt.session(done.id).get_state("result") == {"ok": True}
        assert (await rt.sessions.get(failed.id)).failure_reason == "boom"
        assert await rt.session(live.id).list_state() == [f"k{i}" for i in range(5)]
        assert len(await rt.session(live.id).timeline()) == 6
        await rt.session(live.id).set_state("k5", 5)
        assert (await rt.sessions.get(live.id)).operation_count == 6


async def test_save_load_save_all_and_restore_recent(rt: Runtime) -> None:
    """load makes a session live, save_all saves the live ones, restore_recent wakes the newest."""
    ids = [await rt.sessions.create(name=f"s{i}") for i in range(4)]
    await rt.session(ids[1]).set_state("touched", True)
    assert [i for i in ids if _live(rt, i)] == [ids[1]]
    await rt.sessions.save(ids[0])
    assert await rt.sessions.load(ids[2]) == ids[2]
    assert [i for i in ids if _live(rt, i)] == [ids[0], ids[1], ids[2]]
    assert await rt.sessions.save_all() == 3
    recent = await rt.sessions.restore_recent(2)
    assert recent == [ids[1], ids[3]]
    assert all(_live(rt, sid) for sid in recent)
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.load(str(uuid.uuid4()))


def _live(rt: Runtime, sid: str) -> bool:
    return any(a.kind == "session" and a.id == sid for a in rt.actors())


async def test_errors_name_the_session_and_the_value(rt: Runtime) -> None:
    """A refused operation's message names the session and the value at fault."""
    sid = await rt.sessions.create()
    with pytest.raises(ValidationError, match=f"session {sid}: state key 'kkk.*257 bytes"):
        await rt.sessions.set_state(sid, "k" * 257, 1)
    with pytest.raises(InvalidArgumentError, match=f"session {sid}: .*set is not a JSON-like"):
        await rt.sessions.set_state(sid, "k", {1})


# -- check ----------------------------------------------------------------------------------


async def test_check_finds_and_repairs_derived_damage(rt: Runtime) -> None:
    """check reports a lost index entry and an orphaned variable, and fix repairs both."""
    from satchel.actors.sessions import _session_layout as layout
    from satchel.storage import Batch

    keep = await rt.sessions.create(name="keep", tags=["t"])
    gone = await rt.sessions.create(name="gone")
    await rt.sessions.set_state(gone, "k", 1)
    assert (await rt.sessions.check()).clean
    sid, gone_sid = layout.bytes_of(keep), layout.bytes_of(gone)
    damage = Batch()
    damage.delete(
        layout.tag_prefix("t")
        + (await rt.store.records.scan(layout.BY_CREATED, layout.BY_NAME, limit=1))[0][0][
            len(layout.BY_CREATED) :
        ]
    )
    damage.delete(layout.record_key(gone_sid))
    await rt.store.records.write(damage)
    report = await rt.sessions.check()
    assert not report.clean and report.sessions == 1
    assert any("missing" in p for p in report.problems)
    assert any(gone_sid.hex() in p for p in report.problems)
    assert (await rt.sessions.check(fix=True)).fixed
    assert (await rt.sessions.check()).clean
    assert [s.id for s in await rt.sessions.list(tags=["t"])] == [keep]
    assert layout.text_of(sid) == keep


async def test_check_fix_keeps_the_data_of_an_unreadable_record(rt: Runtime) -> None:
    """A record this satchel cannot read is reported, and fix removes none of its data."""
    from satchel.actors.sessions import _session_layout as layout
    from satchel.storage import Batch

    sid = await rt.sessions.create(name="future", tags=["t"])
    await rt.sessions.set_state(sid, "k", 1)
    before = await session_keys(rt)
    newer = Batch()
    newer.put(layout.record_key(layout.bytes_of(sid)), b"\x01\xff\xff")  # schema 65535
    await rt.store.records.write(newer)
    report = await rt.sessions.check(fix=True)
    assert report.sessions == 1 and any("newer" in p for p in report.problems)
    assert not report.fixed
    assert (await session_keys(rt)) == before


@pytest.mark.parametrize(
    ("field", "us"), [("created_us", 2**62), ("ended_us", 2**62), ("updated_us", -(2**62))]
)
async def test_a_stored_time_no_date_holds_reads_as_integrity_error(
    rt: Runtime, field: str, us: int
) -> None:
    """A session whose record or counters hold a time no date can (before the year 1 or past
    9999: a damaged record) reads as IntegrityError from get and list, not OverflowError."""
    import attrs

    from satchel.actors.sessions import _session_layout as layout
    from satchel.storage import Batch

    sid = await rt.sessions.create()
    record_key = layout.record_key(layout.bytes_of(sid))
    counters_key = layout.counters_key(layout.bytes_of(sid))
    raw_record, raw_counters = await rt.store.records.get_many([record_key, counters_key])
    assert raw_record is not None and raw_counters is not None
    damaged = Batch()
    if field == "updated_us":
        counters = layout.Counters.decode(raw_counters)._replace(updated_us=us)
        damaged.put(counters_key, counters.encode())
    else:
        record = attrs.evolve(layout.RECORD_CODEC.decode(raw_record), **{field: us})
        damaged.put(record_key, layout.RECORD_CODEC.encode(record))
    await rt.store.records.write(damaged)
    with pytest.raises(IntegrityError, match="session"):
        await rt.sessions.get(sid)
    with pytest.raises(IntegrityError, match="session"):
        await rt.sessions.list()


async def test_create_takes_the_spec_names_and_optional_nones(rt: Runtime) -> None:
    """parent_session_id works as parent_id does; None means default; sets are not tags."""
    parent = await rt.sessions.create(name=None, description=None, tags=None)
    child = await rt.sessions.create(parent_session_id=parent)
    assert (await rt.sessions.get(child)).parent_session_id == parent
    assert (await rt.sessions.get(parent)).name == ""
    with pytest.raises(InvalidArgumentError):
        await rt.sessions.create(parent_id=parent, parent_session_id=child)
    with pytest.raises(InvalidArgumentError):
        await rt.sessions.create(tags={"a", "b"})
