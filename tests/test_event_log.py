"""A session's event log: ordered appends with a state delta in the same write, reading the
last events or those after a time, pop, clear, and the log through replay, fork and import."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satchel import (
    IntegrityError,
    InvalidArgumentError,
    InvalidStateTransitionError,
    Runtime,
    SessionNotActiveError,
    SessionNotFoundError,
    ValidationError,
    open_runtime,
    session_id_for,
)
from satchel.actors import export_session, import_session


def datas(events: list[Any]) -> list[Any]:
    """The data of each event."""
    return [e.data for e in events]


@pytest.mark.parametrize(
    ("state", "error", "message"),
    [
        ({"a": math.nan, 1: 1}, InvalidArgumentError, "a state key must be a string, not int"),
        ({"a": math.nan, "": 1}, ValidationError, "a state key must not be empty"),
        ({"a": object(), 1: 1}, InvalidArgumentError, "a state key must be a string, not int"),
        ({"a": 1 << 70, "b" * 300: 1}, ValidationError, "is 300 bytes; the limit is 256"),
    ],
)
async def test_an_appends_state_names_are_all_checked_before_its_values(
    rt: Runtime, state: dict[Any, Any], error: type[Exception], message: str
) -> None:
    """A state map with a bad value and a bad name after it is refused for the name (every
    name is checked before any value), and nothing is written."""
    sid = await rt.sessions.create()
    with pytest.raises(error, match=message) as raised:
        await rt.sessions.append_events(sid, [], state=state)
    assert type(raised.value) is error
    assert await rt.sessions.list_state(sid) == []


async def test_append_applies_its_state_delta_in_the_same_write(rt: Runtime) -> None:
    """An append numbers its events, sets and deletes variables, and is one journal entry."""
    sid = await rt.sessions.create(key="t")
    await rt.sessions.set_state(sid, "old", 1)
    last = await rt.sessions.append_events(
        "t", [{"n": 1}, {"n": 2}], state={"turn": 1, "none": None}, delete=["old"]
    )
    assert last == 2
    assert await rt.sessions.state(sid) == {"turn": 1, "none": None}
    assert [(e.position, e.data) for e in await rt.sessions.events(sid)] == [
        (1, {"n": 1}),
        (2, {"n": 2}),
    ]
    entry = (await rt.sessions.timeline(sid))[-1]
    assert (entry.kind, entry.data["first"], entry.data["events"]) == (
        "events_appended",
        1,
        [{"n": 1}, {"n": 2}],
    )
    assert (await rt.sessions.get(sid)).operation_count == 2
    assert (await rt.check()).clean


async def test_reading_the_last_events_and_those_after_a_time(rt: Runtime) -> None:
    """``last`` and ``after`` read from the end; both together narrow each other."""
    sid = await rt.sessions.create()
    for n in range(10):
        await rt.sessions.append_event(sid, {"n": n}, at=1000 + n)
    assert datas(await rt.sessions.events(sid, last=3)) == [{"n": 7}, {"n": 8}, {"n": 9}]
    assert datas(await rt.sessions.events(sid, after=1007)) == [{"n": 8}, {"n": 9}]
    assert datas(await rt.sessions.events(sid, last=1, after=1000)) == [{"n": 9}]
    assert await rt.sessions.events(sid, last=0) == []
    assert len(await rt.sessions.events(sid, last=100)) == 10
    first = (await rt.sessions.events(sid))[0]
    assert first.at == datetime.fromtimestamp(1000, UTC)


async def test_an_append_may_only_change_variables(rt: Runtime) -> None:
    """An append of no events with a state delta changes the variables, no position."""
    sid = await rt.sessions.create()
    assert await rt.sessions.append_events(sid, [], state={"k": 1}) == 0
    assert await rt.sessions.append_events(sid, [], delete=["k"], expect_position=0) == 0
    assert (await rt.sessions.state(sid), await rt.sessions.events(sid)) == ({}, [])
    assert await rt.sessions.append_event(sid, {"n": 1}) == 1
    assert (await rt.check()).clean


async def test_pop_and_clear(rt: Runtime) -> None:
    """Pop takes the last event (positions are not given again); clear empties the log."""
    sid = await rt.sessions.create()
    assert await rt.sessions.pop_event(sid) is None
    await rt.sessions.append_events(sid, [{"a": 1}, {"a": 2}], state={"k": 1})
    popped = await rt.sessions.pop_event(sid)
    assert popped is not None and (popped.position, popped.data) == (2, {"a": 2})
    assert await rt.sessions.state(sid) == {"k": 1}  # the delta stays
    assert await rt.sessions.append_event(sid, {"a": 3}) == 3
    assert [e.position for e in await rt.sessions.events(sid)] == [1, 3]
    assert await rt.sessions.clear_events(sid) == 2
    assert await rt.sessions.clear_events(sid) == 0
    assert await rt.sessions.events(sid) == []
    assert await rt.sessions.last_event_position(sid) == 3
    assert await rt.sessions.append_event(sid, {"a": 4}) == 4
    assert (await rt.check()).clean


async def test_expect_position_refuses_a_stale_writer(rt: Runtime) -> None:
    """An append that expects another last position is refused and writes nothing."""
    sid = await rt.sessions.create()
    seen = await rt.sessions.last_event_position(sid)
    await rt.sessions.append_event(sid, {"by": "first"}, expect_position=seen)
    with pytest.raises(InvalidStateTransitionError):
        await rt.sessions.append_event(sid, {"by": "stale"}, state={"x": 1}, expect_position=seen)
    assert datas(await rt.sessions.events(sid)) == [{"by": "first"}]
    assert await rt.sessions.state(sid) == {}


async def test_expect_created_at_refuses_a_writer_from_before_a_recreate(rt: Runtime) -> None:
    """An append expecting the session's creation time is refused once the session was
    deleted and created again under its key, though the log reached the same position."""
    sid = await rt.sessions.create(key="thread")
    born = (await rt.sessions.get(sid)).created_at
    seen = await rt.sessions.append_event(sid, {"n": 1}, expect_position=0, expect_created_at=born)
    await rt.sessions.delete(sid)
    assert await rt.sessions.create(key="thread") == sid
    await rt.sessions.append_event(sid, {"by": "other"})
    with pytest.raises(InvalidStateTransitionError, match="created again"):
        await rt.sessions.append_event(
            sid, {"by": "stale"}, state={"x": 1}, expect_position=seen, expect_created_at=born
        )
    assert datas(await rt.sessions.events(sid)) == [{"by": "other"}]
    assert await rt.sessions.state(sid) == {}
    now = (await rt.sessions.get(sid)).created_at
    assert now != born
    await rt.sessions.append_event(sid, {"n": 2}, expect_created_at=now.isoformat())


async def test_expect_state_is_a_compare_and_set(rt: Runtime) -> None:
    """An append expecting variables to hold given values lands only while they do (a
    missing one reads as None, and a value of another type differs), and a refused one
    writes nothing."""
    sid = await rt.sessions.create()
    await rt.sessions.append_event(sid, {"n": 1}, state={"token": "a"}, expect_state={"t": None})
    await rt.sessions.append_event(
        sid, {"n": 2}, state={"token": "b", "one": 1}, expect_state={"token": "a"}
    )
    for stale in ({"token": "a"}, {"one": True}, {"one": 1.0}, {"token": "b", "gone": 0}):
        with pytest.raises(InvalidStateTransitionError, match="not what the append expects"):
            await rt.sessions.append_event(sid, {"n": "stale"}, state={"x": 1}, expect_state=stale)
    await rt.sessions.append_event(sid, {"n": 3}, expect_state={"token": "b", "one": 1})
    assert datas(await rt.sessions.events(sid)) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert await rt.sessions.state(sid) == {"token": "b", "one": 1}


@pytest.mark.parametrize(
    ("stored", "expected"),
    [([1], [True]), ({"n": 1}, {"n": 1.0}), ([0, 1], [False, True]), ({"a": 1}, {"a": 1, "b": 2})],
)
async def test_expect_state_compares_kinds_at_every_depth(
    rt: Runtime, stored: object, expected: object
) -> None:
    """Inside arrays and maps too, a boolean, an integer and a float differ (Python's ``==``
    alone took ``[True]`` for a stored ``[1]``)."""
    sid = await rt.sessions.create()
    await rt.sessions.append_event(sid, {"n": 1}, state={"k": stored})
    with pytest.raises(InvalidStateTransitionError, match="not what the append expects"):
        await rt.sessions.append_event(sid, {"n": 2}, expect_state={"k": expected})
    await rt.sessions.append_event(sid, {"n": 3}, expect_state={"k": stored})


async def test_expect_state_of_a_tuple_it_stored(rt: Runtime) -> None:
    """A tuple is stored as an array, and expecting the tuple written passes (it was refused
    as ``[1, 2] != (1, 2)``)."""
    sid = await rt.sessions.create()
    await rt.sessions.append_event(sid, {"n": 1}, state={"k": (1, 2), "m": {"t": (3,)}})
    await rt.sessions.append_event(sid, {"n": 2}, expect_state={"k": (1, 2), "m": {"t": (3,)}})
    assert len(await rt.sessions.events(sid)) == 2


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ({"events": [{}], "expect_created_at": 12.5}, InvalidArgumentError),
        ({"events": [{}], "expect_created_at": "not a time"}, InvalidArgumentError),
        ({"events": []}, ValidationError),
        ({"events": [], "state": {}}, ValidationError),
        ({"events": {"a": 1}}, InvalidArgumentError),
        ({"events": [1]}, InvalidArgumentError),
        ({"events": [{"x": object()}]}, InvalidArgumentError),
        ({"events": [{"x": "y" * 2_000_000}]}, ValidationError),
        ({"events": [{}], "state": {"": 1}}, ValidationError),
        ({"events": [{}], "state": {"k": 1}, "delete": ["k"]}, InvalidArgumentError),
        ({"events": [{}], "delete": "k"}, InvalidArgumentError),
        ({"events": [{}], "expect_position": -1}, InvalidArgumentError),
        ({"events": [{}], "expect_state": ["k"]}, InvalidArgumentError),
        ({"events": [{}], "expect_state": {"": 1}}, ValidationError),
        ({"events": [{}], "expect_state": {"k": object()}}, InvalidArgumentError),
        ({"events": [{}], "at": "yesterday"}, ValidationError),
    ],
)
async def test_bad_appends_write_nothing(
    rt: Runtime, call: dict[str, Any], error: type[Exception]
) -> None:
    """Each bad append gets its typed error, and the log, variables and journal stay."""
    sid = await rt.sessions.create()
    before = await rt.sessions.timeline(sid)
    with pytest.raises(error):
        await rt.sessions.append_events(sid, **call)
    assert await rt.sessions.events(sid) == []
    assert await rt.sessions.timeline(sid) == before


async def test_only_live_sessions_take_events(rt: Runtime) -> None:
    """A suspended session refuses appends; a missing one is SessionNotFound."""
    sid = await rt.sessions.create()
    await rt.sessions.suspend(sid)
    with pytest.raises(SessionNotActiveError):
        await rt.sessions.append_event(sid, {"a": 1})
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.events("no-such-key")
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.append_event("no-such-key", {"a": 1})


async def test_replay_and_fork_see_the_log(rt: Runtime) -> None:
    """Replay applies appends' deltas; a fork from an entry has the log as it was there."""
    sid = await rt.sessions.create()
    await rt.sessions.append_event(sid, {"n": 1}, state={"k": 1})
    at = (await rt.sessions.timeline(sid))[-1].seq
    await rt.sessions.append_event(sid, {"n": 2}, state={"k": 2})
    await rt.sessions.pop_event(sid)
    assert (await rt.sessions.replay(sid)).state == {"k": 2}
    early = await rt.sessions.fork(sid, at=at)
    assert datas(await rt.sessions.events(early)) == [{"n": 1}]
    late = await rt.sessions.fork(sid)
    assert datas(await rt.sessions.events(late)) == [{"n": 1}]
    assert await rt.sessions.append_event(late, {"n": 3}) == 3
    assert (await rt.check()).clean


async def test_archives_carry_the_log(rt: Runtime) -> None:
    """An exported session imports with its log, under its id or a new one."""
    sid = await rt.sessions.create()
    await rt.sessions.append_events(sid, [{"n": 1}, {"n": 2}, {"n": 3}])
    await rt.sessions.pop_event(sid)
    sink = io.BytesIO()
    await export_session(rt.sessions, rt.artifacts, rt.store, sid, sink)
    copy = (
        await import_session(
            rt.sessions, rt.artifacts, rt.store, io.BytesIO(sink.getvalue()), new_id=True
        )
    ).session_id
    await rt.sessions.delete(sid)
    await import_session(rt.sessions, rt.artifacts, rt.store, io.BytesIO(sink.getvalue()))
    for session in (sid, copy):
        assert datas(await rt.sessions.events(session)) == [{"n": 1}, {"n": 2}]
        assert await rt.sessions.append_event(session, {"n": 4}) == 4
    assert (await rt.check()).clean


async def test_the_log_survives_a_restart_and_a_delete_removes_it(tmp_path: Path) -> None:
    """Events are stored; deleting the session leaves none of its keys."""
    async with open_runtime(tmp_path / "data") as rt:
        await rt.sessions.create(key="k")
        await rt.sessions.append_events("k", [{"i": i} for i in range(5)])
    async with open_runtime(tmp_path / "data") as rt:
        assert len(await rt.sessions.events(session_id_for("k"))) == 5
        await rt.sessions.delete("k")
        assert (await rt.check()).clean
        await rt.sessions.create(key="k")
        assert await rt.sessions.events("k") == []
        assert await rt.sessions.append_event("k", {"i": 0}) == 1


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers(1, 4)),
            st.tuples(st.just("pop"), st.just(0)),
            st.tuples(st.just("clear"), st.just(0)),
        ),
        max_size=15,
    )
)
async def test_the_log_matches_a_model(ops: list[tuple[str, int]]) -> None:
    """Any sequence of appends, pops and clears leaves the log a plain list model predicts,
    and a fork reads the same."""
    async with open_runtime(store="memory") as rt:
        sid = await rt.sessions.create()
        model: list[tuple[int, int]] = []
        last = 0
        for op, count in ops:
            if op == "append":
                await rt.sessions.append_events(sid, [{"v": last + i} for i in range(1, count + 1)])
                model += [(last + i, last + i) for i in range(1, count + 1)]
                last += count
            elif op == "pop":
                await rt.sessions.pop_event(sid)
                model = model[:-1]
            else:
                await rt.sessions.clear_events(sid)
                model = []
        got = [(e.position, e.data["v"]) for e in await rt.sessions.events(sid)]
        assert got == model
        fork = await rt.sessions.fork(sid)
        assert [(e.position, e.data["v"]) for e in await rt.sessions.events(fork)] == model
        assert (await rt.check()).clean


async def test_state_hooks_see_an_appends_variables(rt: Runtime) -> None:
    """An append's state changes pass the ``state_changed`` hooks key by key: one may cancel
    the whole append or change a value, as for ``set_state``."""
    from satchel import HookCancelledError, HookPoint, HookResult

    def guard(context: Any) -> HookResult:
        if context.data["key"] == "role":
            return HookResult.cancel("role is read-only")
        if context.data["key"] == "secret" and not context.data["deleted"]:
            return HookResult.modify({"value": "***"})
        return HookResult.proceed()

    rt.hooks.register(HookPoint.STATE_CHANGED, guard, name="guard")
    sid = await rt.sessions.create()
    with pytest.raises(HookCancelledError):
        await rt.sessions.append_event(sid, {"n": 1}, state={"role": "admin", "x": 1})
    assert (await rt.sessions.state(sid), await rt.sessions.events(sid)) == ({}, [])
    await rt.sessions.append_event(sid, {"n": 2}, state={"secret": "hunter2"})
    assert await rt.sessions.state(sid) == {"secret": "***"}
    entry = (await rt.sessions.timeline(sid))[-1]
    assert entry.data["state"] == {"secret": "***"} and entry.data["hooks"]


async def test_times_never_go_back_along_the_log(rt: Runtime) -> None:
    """An earlier time than the last event's is raised to it, so reading after a time from
    the end finds every later event."""
    sid = await rt.sessions.create()
    for at in (1000, 3000, 1200, 4000):
        await rt.sessions.append_event(sid, {"at": at}, at=at)
    assert [e.data["at"] for e in await rt.sessions.events(sid, after=1500)] == [3000, 1200, 4000]
    times = [e.at.timestamp() for e in await rt.sessions.events(sid)]
    assert times == sorted(times)


@pytest.mark.parametrize("at", [-1, 3e11, 1e30, float("nan")])
async def test_times_out_of_range_are_refused(rt: Runtime, at: float) -> None:
    """A time before 1970 or past the year 9999 is a ValidationError; nothing is written."""
    sid = await rt.sessions.create()
    with pytest.raises(ValidationError):
        await rt.sessions.append_event(sid, {"n": 1}, at=at)
    assert await rt.sessions.events(sid) == []


async def test_pops_and_clears_count_against_the_operation_quota(rt: Runtime) -> None:
    """Pop and clear are operations: past ``max_operations`` they are refused."""
    from satchel import QuotaExceededError

    sid = await rt.sessions.create(config={"max_operations": 2})
    await rt.sessions.append_events(sid, [{"n": 1}, {"n": 2}])
    await rt.sessions.pop_event(sid)
    with pytest.raises(QuotaExceededError):
        await rt.sessions.clear_events(sid)
    assert (await rt.sessions.get(sid)).operation_count == 2


async def _archive_with_entry(
    rt: Runtime, at: int, kind: str | None, data: dict[str, Any]
) -> bytes:
    """The archive of a new session with one event, its journal entry ``at`` replaced by one
    of ``kind`` (the entry's own if ``None``) holding ``data``; the session is deleted."""
    from satchel.actors.sessions import _session_layout as layout

    sid = await rt.sessions.create()
    await rt.sessions.append_event(sid, {"n": 1})
    sink = io.BytesIO()
    await export_session(rt.sessions, rt.artifacts, rt.store, sid, sink)
    await rt.sessions.delete(sid)

    def corrupt(member: bytes) -> bytes:
        entries = msgpack.unpackb(member)
        seq, raw = entries[at]
        at_us, was, _, cause = layout.decode_entry_with_cause(raw)
        entries[at] = [seq, layout.encode_entry(at_us, kind or was, data, cause)]
        packed: bytes = msgpack.packb(entries)
        return packed

    return _with_member(sink.getvalue(), "journal.msgpack", corrupt)


def _with_member(archive: bytes, name: str, change: Any) -> bytes:
    """``archive`` with member ``name`` replaced by ``change(its bytes)``, manifest updated."""
    import json

    import blake3

    from .test_archive import build, members

    items = members(archive)
    manifest = json.loads(items[0][1])
    edited = []
    for member, data in items[1:]:
        if member == name:
            data = change(data)
            for entry in manifest["members"]:
                if entry["name"] == name:
                    entry["size"], entry["blake3"] = len(data), blake3.blake3(data).hexdigest()
        edited.append((member, data))
    return build([("manifest.json", json.dumps(manifest).encode()), *edited])


@pytest.mark.parametrize(
    "bad",
    [
        {"events": [{}], "at": 1},  # no first
        {"first": -5, "events": [{}], "at": 1},
        {"first": 1, "events": 7, "at": 1},
        {"first": 2**63, "events": [{}], "at": 1},
        {"first": 1, "events": [{}], "at": "x"},
        {"first": 1, "events": [{}], "at": 1, "deleted": 5},
        {"first": 1, "events": [{}], "at": 1, "deleted": None},
    ],
)
async def test_archives_with_malformed_event_entries_are_refused(
    rt: Runtime, bad: dict[str, Any]
) -> None:
    """An archive whose journal holds a malformed append is refused, nothing imported."""
    archive = await _archive_with_entry(rt, -1, None, bad)
    with pytest.raises(ValidationError):
        await import_session(rt.sessions, rt.artifacts, rt.store, io.BytesIO(archive))
    assert await rt.sessions.list() == []


async def test_a_modified_replay_keeps_its_pins_through_appends(rt: Runtime) -> None:
    """Variables pinned by a modified replay stay pinned through appends' state deltas."""
    sid = await rt.sessions.create()
    await rt.sessions.append_event(sid, {"n": 1}, state={"model": "a", "other": 1})
    await rt.sessions.append_event(sid, {"n": 2}, state={"model": "b"}, delete=["other"])
    pins = {"model": "PINNED", "other": "PINNED"}
    result = await rt.sessions.replay(sid, mode="modified", modifications=pins)
    assert result.state == pins


async def test_check_finds_and_fixes_a_log_that_left_the_journal(rt: Runtime) -> None:
    """A log key lost or changed behind the runtime's back is a check problem, and
    ``fix`` writes the log again from the journal, so positions are not given twice."""
    from satchel.actors.sessions import _event_log as event_log
    from satchel.actors.sessions import _session_layout as layout
    from satchel.storage import Batch

    sid = await rt.sessions.create()
    await rt.sessions.append_events(sid, [{"n": 1}, {"n": 2}, {"n": 3}])
    await rt.sessions.pop_event(sid)
    assert (await rt.check()).clean
    broken = Batch()
    broken.delete(event_log.last_key(layout.bytes_of(sid)))
    broken.put(event_log.event_key(layout.bytes_of(sid), 9), b"junk")
    rt.store.kv.write(broken)
    found = await rt.sessions.check()
    assert any("event log" in p for p in found.problems)
    fixed = await rt.sessions.check(fix=True)
    assert fixed.fixed and (await rt.sessions.check()).clean
    assert [e.position for e in await rt.sessions.events(sid)] == [1, 2]
    assert await rt.sessions.append_event(sid, {"n": 4}) == 4


async def test_a_session_is_created_with_its_variables(rt: Runtime) -> None:
    """``create(state=)`` writes the variables with the session: one journal entry, which
    replay and fork apply; bad state creates nothing."""
    sid = await rt.sessions.create(key="s", state={"a": 1, "b": {"c": [1, 2]}})
    assert await rt.sessions.state(sid) == {"a": 1, "b": {"c": [1, 2]}}
    assert [e.kind for e in await rt.sessions.timeline(sid)] == ["session_created"]
    assert (await rt.sessions.replay(sid)).state == {"a": 1, "b": {"c": [1, 2]}}
    fork = await rt.sessions.fork(sid)
    assert await rt.sessions.state(fork) == {"a": 1, "b": {"c": [1, 2]}}
    pinned = await rt.sessions.replay(sid, mode="modified", modifications={"a": "P"})
    assert pinned.state["a"] == "P"
    for bad, error in (({"": 1}, ValidationError), ({"x": object()}, InvalidArgumentError)):
        with pytest.raises(error):
            await rt.sessions.create(key="bad", state=bad)
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.get("bad")
    assert (await rt.check()).clean


async def test_variables_read_by_prefix(rt: Runtime) -> None:
    """``state(prefix=)`` reads only the variables whose names start with it."""
    sid = await rt.sessions.create(state={"c:1": 1, "c:2": 2, "w:1": 3, "c": 4})
    assert await rt.sessions.state(sid, prefix="c:") == {"c:1": 1, "c:2": 2}
    assert await rt.sessions.state(sid, prefix="zz") == {}
    assert len(await rt.sessions.state(sid)) == 4


#: A time past the year 9999, which no date can hold: only a damaged record stores it.
PAST_9999_US = 2**62


@pytest.mark.parametrize("read", [{}, {"last": 1}, {"after": 0}])
async def test_an_event_stored_with_a_time_no_date_holds_is_an_integrity_error(
    rt: Runtime, read: dict[str, Any]
) -> None:
    """An event whose stored time no date can hold (a damaged record) reads as
    IntegrityError, whether the whole log is read or only its end."""
    from satchel.actors.sessions import _event_log as event_log
    from satchel.actors.sessions import _session_layout as layout
    from satchel.storage import Batch

    sid = await rt.sessions.create()
    await rt.sessions.append_event(sid, {"n": 1})
    damaged = Batch()
    damaged.put(
        event_log.event_key(layout.bytes_of(sid), 1),
        event_log.encode_event(PAST_9999_US, {"n": 1}),
    )
    await rt.store.records.write(damaged)
    with pytest.raises(IntegrityError, match="session event"):
        await rt.sessions.events(sid, **read)


@pytest.mark.parametrize("created", ["0001-01-01T00:00:00+10:00", "9999-12-31T23:59:59-10:00"])
async def test_expect_created_at_past_what_a_utc_date_holds_is_refused(
    rt: Runtime, created: str
) -> None:
    """An ``expect_created_at`` whose offset carries it before the year 1 or past 9999 in
    UTC is a ValidationError, and the append writes nothing."""
    sid = await rt.sessions.create()
    with pytest.raises(ValidationError, match="expect_created_at"):
        await rt.sessions.append_event(sid, {"n": 1}, expect_created_at=created)
    assert await rt.sessions.events(sid) == []
    assert rt.control.statistics().supervisor.failed_actors == 0  # it once crashed the actor


async def test_an_expecting_append_on_a_damaged_creation_time_is_an_integrity_error(
    rt: Runtime,
) -> None:
    """An append expecting a creation time, on a session whose stored record holds one no
    date can (a damaged record), is refused with IntegrityError."""
    import attrs

    from satchel.actors.sessions import _session_layout as layout
    from satchel.storage import Batch

    sid = await rt.sessions.create()
    born = (await rt.sessions.get(sid)).created_at
    key = layout.record_key(layout.bytes_of(sid))
    raw = await rt.store.records.get(key)
    assert raw is not None
    record = attrs.evolve(layout.RECORD_CODEC.decode(raw), created_us=PAST_9999_US)
    damaged = Batch()
    damaged.put(key, layout.RECORD_CODEC.encode(record))
    await rt.store.records.write(damaged)
    with pytest.raises(IntegrityError, match="session record"):
        await rt.sessions.append_event(sid, {"n": 1}, expect_created_at=born)


class _NoOffset(tzinfo):
    """A time zone that gives no offset (its times are naive, hence UTC)."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None


class _BrokenOffset(tzinfo):
    """A time zone whose offset is no timedelta."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return 5  # type: ignore[return-value]


async def test_times_in_odd_time_zones_are_utc_or_refused(rt: Runtime) -> None:
    """A time whose zone gives no offset is taken as UTC, and one whose zone gives a broken
    offset is InvalidArgument, for ``at`` and ``expect_created_at`` alike."""
    sid = await rt.sessions.create()
    created = (await rt.sessions.get(sid)).created_at
    naive = created.replace(tzinfo=_NoOffset())
    await rt.sessions.append_event(sid, {"n": 1}, at=naive, expect_created_at=naive)
    assert (await rt.sessions.events(sid))[0].at == created
    broken = created.replace(tzinfo=_BrokenOffset())
    with pytest.raises(InvalidArgumentError, match="time zone"):
        await rt.sessions.append_event(sid, {"n": 2}, at=broken)
    with pytest.raises(InvalidArgumentError, match="time zone"):
        await rt.sessions.append_event(sid, {"n": 2}, expect_created_at=broken)
    assert len(await rt.sessions.events(sid)) == 1


async def test_appends_to_a_live_session_read_its_log_end_once(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live session's actor reads where its log ends once, then counts on from what it
    wrote; a pop, a clear and a delete and re-create of its key leave the positions right."""
    from satchel.actors.sessions._session_records import SessionRecords

    reads: list[bytes] = []
    log_end = SessionRecords.event_log_end

    async def counted(self: SessionRecords, sid: bytes) -> tuple[int, int]:
        reads.append(sid)
        return await log_end(self, sid)

    monkeypatch.setattr(SessionRecords, "event_log_end", counted)
    sid = await rt.sessions.create(key="thread")
    assert [await rt.sessions.append_event(sid, {"n": n}) for n in range(4)] == [1, 2, 3, 4]
    assert len(reads) == 1
    await rt.sessions.append_events(sid, [], state={"k": 1})
    await rt.sessions.pop_event(sid)
    assert await rt.sessions.append_event(sid, {"n": 5}) == 5
    await rt.sessions.clear_events(sid)
    assert await rt.sessions.append_event(sid, {"n": 6}) == 6
    assert len(reads) == 1
    await rt.sessions.delete(sid)
    assert await rt.sessions.create(key="thread") == sid
    assert await rt.sessions.append_event(sid, {"n": 1}) == 1
    assert [e.position for e in await rt.sessions.events(sid)] == [1]


@pytest.mark.parametrize(
    "damage",
    [
        b"\xc1 not msgpack",
        msgpack.packb([1, ["a", "list"], {}]),
        msgpack.packb([1, "events_appended", {"events": [{"n": 1}], "at": 1}]),
        msgpack.packb([1, "session_forked", {"variables": {}, "artifacts": "none"}]),
        msgpack.packb([1, "events_appended", {"first": 1, "events": [], "at": 1, "deleted": 5}]),
    ],
)
async def test_a_damaged_journal_entry_is_a_problem_check_reports(damage: bytes) -> None:
    """A journal entry that does not decode, or is not of a journal entry's shape, is a
    problem ``check`` names, not an error that ends it; and ``fix`` rebuilds no event log
    from a journal it cannot read whole."""
    from satchel.actors.sessions import _session_layout as layout
    from satchel.storage import Batch

    async with open_runtime(store="memory") as rt:
        sid = await rt.sessions.create()
        await rt.sessions.append_events(sid, [{"n": 1}, {"n": 2}])
        await rt.sessions.set_state(sid, "k", 1)
        kept = await rt.sessions.create()
        batch = Batch()
        batch.put(layout.journal_key(layout.bytes_of(sid), 2), damage)
        rt.store.kv.write(batch)
        found = await rt.sessions.check()
        assert any(f"session {sid}: journal entry 2" in p for p in found.problems), found
        assert not any(kept in p for p in found.problems)
        await rt.sessions.check(fix=True)
        assert [e.data for e in await rt.sessions.events(sid)] == [{"n": 1}, {"n": 2}]


@pytest.mark.parametrize("new_id", [False, True])
@pytest.mark.parametrize(
    "bad",
    [
        {"variables": {}, "artifacts": "none"},
        {"variables": [], "artifacts": []},
        {"variables": {}, "artifacts": [{"id": "a"}]},
        {"variables": {}, "artifacts": [], "events": [[1, 5]]},
        {"variables": {}, "artifacts": [], "events": [[0, 5, {}]]},
        {"variables": {}, "artifacts": [], "last_event": "x"},
        {"variables": {}, "artifacts": [], "events": [[2, 5, {}]], "last_event": 1},
    ],
)
async def test_archives_with_a_malformed_fork_entry_are_refused(
    rt: Runtime, bad: dict[str, Any], new_id: bool
) -> None:
    """An archive whose first journal entry is a fork's of the wrong shape (the log an
    import rebuilds comes from it) is refused, nothing imported, as or beside the original."""
    archive = await _archive_with_entry(rt, 0, "session_forked", bad)
    with pytest.raises(ValidationError, match="session_forked"):
        await import_session(
            rt.sessions, rt.artifacts, rt.store, io.BytesIO(archive), new_id=new_id
        )
    assert await rt.sessions.list() == []
