"""Sessions keyed by the caller (a framework's thread or session id), and scoped by
application and user."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satchel import (
    InvalidArgumentError,
    Runtime,
    SessionExistsError,
    SessionNotFoundError,
    ValidationError,
    open_runtime,
    session_id_for,
)
from satchel.actors import _validate
from satchel.actors.sessions import _session_layout as layout


async def test_a_key_names_its_session_everywhere(rt: Runtime) -> None:
    """A keyed session is reached by its key or its id in every call, and reads back its key."""
    sid = await rt.sessions.create(key="thread-1", name="t")
    assert sid != "thread-1" and uuid.UUID(sid)
    info = await rt.sessions.get("thread-1")
    assert (info.id, info.key) == (sid, "thread-1")
    await rt.sessions.set_state("thread-1", "step", 1)
    assert await rt.sessions.get_state(sid, "step") == 1
    ref = await rt.artifacts.store("thread-1", "a.txt", b"x", type="tool_result")
    assert ref.session_id == sid
    assert (await rt.session("thread-1").get_artifact("a.txt")).content == b"x"
    assert [e.kind for e in await rt.sessions.timeline("thread-1")][-1] == "artifact_stored"
    await rt.sessions.delete("thread-1")
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.get(sid)
    assert (await rt.check()).clean


async def test_a_key_is_taken_once(rt: Runtime) -> None:
    """Creating a key that exists is SessionExists and changes nothing; after a delete the
    key can be used again."""
    sid = await rt.sessions.create(key="k", name="first")
    with pytest.raises(SessionExistsError):
        await rt.sessions.create(key="k", name="second")
    assert (await rt.sessions.get("k")).name == "first"
    await rt.sessions.delete(sid)
    assert await rt.sessions.create(key="k", name="again") == sid
    assert (await rt.sessions.get("k")).name == "again"
    assert (await rt.check()).clean


async def test_a_uuid_key_is_the_id(rt: Runtime) -> None:
    """A key that is a UUID is the session's id itself."""
    chosen = str(uuid.uuid4())
    assert await rt.sessions.create(key=chosen) == chosen
    assert (await rt.sessions.get(chosen)).key == chosen


async def test_a_key_looked_up_before_it_exists_works_once_created(rt: Runtime) -> None:
    """A call for a key with no session yet is SessionNotFound; right after the create, the
    same key works."""
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.get_state("late", "x")
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.set_state("late", "x", 1)
    await rt.sessions.create(key="late")
    await rt.sessions.set_state("late", "x", 2)
    assert await rt.sessions.get_state("late", "x") == 2


async def test_a_call_for_a_session_that_does_not_exist_starts_no_actor(rt: Runtime) -> None:
    """On a local store an ask for an unknown or deleted session is answered
    SessionNotFound without starting an actor for it; the same session, once created,
    starts one."""
    started = rt.supervisor.totals.activations
    for call in (
        rt.sessions.get_state("nobody", "x"),
        rt.sessions.set_state("nobody", "x", 1),
        rt.sessions.append_event("nobody", {"e": 1}),
        rt.session("nobody").list_state(),
    ):
        with pytest.raises(SessionNotFoundError, match="Session not found: "):
            await call
    assert rt.supervisor.totals.activations == started
    sid = await rt.sessions.create(key="nobody")
    await rt.sessions.set_state("nobody", "x", 2)
    assert rt.supervisor.totals.activations == started + 1
    await rt.sessions.delete(sid)
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.get_state(sid, "x")
    assert not rt.supervisor.is_live("session", sid)


async def test_an_ask_for_a_missing_session_is_still_a_cancellation_point(rt: Runtime) -> None:
    """An ask answered SessionNotFound without an actor still checks for cancellation: a
    cancelled caller gets Cancelled, not the answer."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        with contextlib.suppress(SessionNotFoundError):
            await rt.sessions.get_state("nobody", "x")
            pytest.fail("answered inside a cancelled scope")
    assert scope.cancelled_caught


async def test_polling_for_a_keyed_session_lets_its_creator_run(rt: Runtime) -> None:
    """A task asking for a keyed session in a loop until another task creates it lets that
    task run (the refusals yield to the scheduler now and then)."""
    polls = 0

    async def poll() -> None:
        nonlocal polls
        while True:
            try:
                assert await rt.sessions.get_state("late", "x") == 1
                return
            except SessionNotFoundError:
                polls += 1
                assert polls < 100_000, "the creator never ran"

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(poll)
        await anyio.lowlevel.checkpoint()
        await rt.sessions.create(key="late", state={"x": 1})


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"key": ""}, InvalidArgumentError),
        ({"key": "a\x00b"}, ValidationError),
        ({"key": "x" * 257}, ValidationError),
        ({"key": 5}, InvalidArgumentError),
        ({"user": "u"}, InvalidArgumentError),
        ({"app": ""}, ValidationError),
        ({"app": "a", "user": "x" * 300}, ValidationError),
    ],
)
async def test_bad_keys_and_scopes_are_refused(
    rt: Runtime, fields: dict[str, object], error: type[Exception]
) -> None:
    """Each bad key, app or user gets its typed error, and no session is made."""
    with pytest.raises(error):
        await rt.sessions.create(**fields)  # type: ignore[arg-type]
    assert await rt.sessions.list() == []


async def test_listing_by_app_and_user(rt: Runtime) -> None:
    """``list(app=)`` and ``list(app=, user=)`` find the sessions created with them, with the
    other filters and paging."""
    made = {}
    for app, user, n in [("a", "u1", 2), ("a", "u2", 1), ("b", "u1", 1)]:
        for i in range(n):
            made[(app, user, i)] = await rt.sessions.create(
                app=app, user=user, key=f"{app}{user}{i}"
            )
    await rt.sessions.create(name="no scope")
    ids = lambda found: [s.id for s in found]  # noqa: E731
    assert ids(await rt.sessions.list(app="a")) == [
        made[("a", "u1", 0)],
        made[("a", "u1", 1)],
        made[("a", "u2", 0)],
    ]
    assert ids(await rt.sessions.list(app="a", user="u1")) == [
        made[("a", "u1", 0)],
        made[("a", "u1", 1)],
    ]
    assert ids(await rt.sessions.list(app="b", user="u1")) == [made[("b", "u1", 0)]]
    assert ids(await rt.sessions.list(app="a", user="u1", limit=1, descending=True)) == [
        made[("a", "u1", 1)]
    ]
    assert await rt.sessions.list(app="c") == []
    info = await rt.sessions.get(made[("a", "u2", 0)])
    assert (info.app, info.user, info.key) == ("a", "u2", "au20")
    assert (await rt.check()).clean


async def test_a_fork_takes_a_key_and_keeps_the_scope(rt: Runtime) -> None:
    """A fork may be keyed, and belongs to the origin's app and user."""
    await rt.sessions.create(key="src", app="a", user="u")
    await rt.sessions.set_state("src", "v", 1)
    fork = await rt.sessions.fork("src", key="dst")
    info = await rt.sessions.get("dst")
    assert (info.id, info.app, info.user) == (fork, "a", "u")
    assert await rt.sessions.get_state("dst", "v") == 1
    with pytest.raises(SessionExistsError):
        await rt.sessions.fork("src", key="dst")
    assert (await rt.check()).clean


async def test_a_keyed_fork_racing_a_creation_of_its_key_is_refused(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keyed fork whose key is taken after its check (another process's creation) fails
    with SessionExists at the write and leaves the other session whole."""
    from satchel.actors.sessions import _creation

    await rt.sessions.create(key="src")
    await rt.sessions.set_state("src", "v", 1)
    checked = _creation.refuse_taken

    async def then_taken(sessions: object, record: layout.SessionRecord, sid: bytes) -> None:
        await checked(sessions, record, sid)  # type: ignore[arg-type]
        await rt.sessions.create(key="dst", name="the other")  # lands between check and write

    monkeypatch.setattr(_creation, "refuse_taken", then_taken)
    with pytest.raises(SessionExistsError):
        await rt.sessions.fork("src", key="dst")
    info = await rt.sessions.get("dst")
    assert info.name == "the other"
    assert await rt.sessions.get_state("dst", "v") is None
    assert (await rt.check()).clean


@pytest.mark.parametrize("key", [None, "free-key"])
async def test_contention_on_a_create_or_fork_is_no_taken_key(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    """A create or fork whose write loses to other writers (WriteConflictError, as PostgreSQL
    gives after retries) raises that conflict, not SessionExists, when its key is free."""
    from satchel import WriteConflictError

    origin = await rt.sessions.create()

    def contended() -> Any:
        async def once(*args: Any, **kwargs: Any) -> Any:
            monkeypatch.undo()  # the next write goes through
            raise WriteConflictError("other writers kept holding the records")

        return once

    monkeypatch.setattr(type(rt.store.records), "write", contended())
    with pytest.raises(WriteConflictError):
        await rt.sessions.create(key=key)
    monkeypatch.setattr(type(rt.store.blobs), "commit", contended())
    with pytest.raises(WriteConflictError):
        await rt.sessions.fork(origin, key=key)
    if key is not None:
        with pytest.raises(SessionNotFoundError):
            await rt.sessions.get(key)
        assert await rt.sessions.create(key=key) == session_id_for(key)  # nothing was taken
    assert (await rt.check()).clean


async def test_keyed_sessions_survive_a_restart(tmp_path: Path) -> None:
    """Keys, apps and users are stored and indexed."""
    async with open_runtime(tmp_path / "data") as rt:
        await rt.sessions.create(key="t", app="a", user="u")
    async with open_runtime(tmp_path / "data") as rt:
        assert [s.key for s in await rt.sessions.list(app="a", user="u")] == ["t"]
        assert (await rt.check()).clean


def test_records_of_the_first_schema_still_read() -> None:
    """A session record written before keys existed reads back with no key, app or user."""
    record = layout.SessionRecord(
        id=str(uuid.uuid4()), name="old", description="", tags=(), metadata={},
        parent_id=None, config=layout.RECORD_CODEC.decode(
            layout.RECORD_CODEC.encode(_any_record())
        ).config, status=_any_record().status, created_us=1,
    )  # fmt: skip
    current = layout.RECORD_CODEC.encode(record)
    fields = msgpack.unpackb(current[3:])
    for gone in ("key", "app", "user"):
        del fields[gone]
    old = b"\x01\x00\x01" + msgpack.packb(fields)
    decoded = layout.RECORD_CODEC.decode(old)
    assert (decoded.name, decoded.key, decoded.app, decoded.user) == ("old", None, None, None)


def _any_record() -> layout.SessionRecord:
    from satchel import SessionConfig, SessionStatus

    return layout.SessionRecord(
        id=str(uuid.uuid4()), name="", description="", tags=(), metadata={}, parent_id=None,
        config=SessionConfig(), status=SessionStatus.ACTIVE, created_us=0,
    )  # fmt: skip


async def test_one_actor_per_session_whatever_names_it(rt: Runtime) -> None:
    """Asking a session's actor by key, by id or in capitals reaches one actor, and the
    journal keeps every write."""
    from satchel.actors._messages import SetState

    sid = await rt.sessions.create(key="thread-1")
    await rt.sessions.set_state(sid, "a", 1)
    await rt.ask("session", "thread-1", SetState("b", 2))
    await rt.ask("session", sid.upper(), SetState("c", 3))
    await rt.sessions.set_state("thread-1", "d", 4)
    live = [a.id for a in rt.control.actors("session")]
    assert live == [sid]
    kinds = [e.kind for e in await rt.sessions.timeline(sid)]
    assert kinds == ["session_created", *["state_set"] * 4]
    assert (await rt.sessions.replay(sid)).state == await rt.sessions.state(sid)


async def test_hex_like_keys_name_their_own_session(rt: Runtime) -> None:
    """Keys that read as hexadecimal ("42", "cafe") are keys like any other."""
    sid = await rt.sessions.create(key="42")
    assert (await rt.sessions.timeline("42"))[0].correlation_id == sid
    child = await rt.sessions.create(key="cafe", parent_session_id="42")
    assert (await rt.sessions.get(child)).parent_session_id == sid
    assert [s.id for s in await rt.sessions.children("42")] == [child]


async def test_a_key_looked_up_early_still_counts_against_its_budget(rt: Runtime) -> None:
    """A holder's id looked up before the holder exists does not free the sessions its
    scripts make from its operation budget."""
    holder_id = session_id_for("tenant-42")
    other = await rt.sessions.create()
    await rt.run_lua(f'return pcall(Session.get, "{holder_id}")', session_id=other)
    holder = await rt.sessions.create(key="tenant-42", config={"max_operations": 5})
    done = await rt.run_lua(
        """
        local done = 0
        for i = 1, 4 do
          local made, child = pcall(Session.create, {parent_session_id = Session.getCurrent()})
          if made then
            done = done + 1
            for j = 1, 3 do
              if pcall(Session.setState, child, "k" .. j, j) then done = done + 1 end
            end
          end
        end
        return done
        """,
        session_id=holder,
    )
    assert done == [5]


async def test_reused_keys_do_not_inherit_correlation(rt: Runtime) -> None:
    """A key deleted and created again without a parent is its own root."""
    root = await rt.sessions.create()
    first = await rt.sessions.create(key="k", parent_session_id=root)
    assert (await rt.sessions.timeline("k"))[0].correlation_id == root
    await rt.sessions.delete(first)
    again = await rt.sessions.create(key="k")
    seen = []
    async with rt.events.subscribe(session_id=again) as events:
        await rt.sessions.set_state("k", "x", 1)
        seen.append(await anext(events))
    assert seen[0].correlation_id == again


async def test_the_nil_uuid_is_no_key(rt: Runtime) -> None:
    """Creating a session keyed by the nil UUID is refused."""
    with pytest.raises(InvalidArgumentError):
        await rt.sessions.create(key="00000000-0000-0000-0000-000000000000")


async def test_a_user_needs_its_app_when_listing(rt: Runtime) -> None:
    """Listing by user without the app is an InvalidArgument, not an empty page."""
    with pytest.raises(InvalidArgumentError):
        await rt.sessions.list(user="u")


def test_an_archived_record_whose_key_names_another_id_is_refused() -> None:
    """On import, a record's key must name the record's own id, and its user its app."""
    import attrs

    from satchel.actors.archives import _archive_read

    record = _any_record()
    with pytest.raises(ValidationError):
        _archive_read._read_scope(attrs.evolve(record, key="thread-1"))
    with pytest.raises(ValidationError):
        _archive_read._read_scope(attrs.evolve(record, user="u"))
    with pytest.raises(ValidationError):
        _archive_read._read_scope(attrs.evolve(record, app="a\x00b"))
    _archive_read._read_scope(attrs.evolve(record, id=session_id_for("t"), key="t", app="a"))


@settings(max_examples=300, deadline=None)
@given(key=st.text(min_size=1, max_size=60).filter(lambda k: "\x00" not in k))
def test_a_key_names_the_uuid5_it_always_did(key: str) -> None:
    """The id derived from a key is uuid.uuid5 of the satchel key namespace, as before the
    derivation was written out by hand (ids in existing stores must not move)."""
    try:
        derived = session_id_for(key)
    except (InvalidArgumentError, ValidationError):
        return
    try:
        as_uuid = uuid.UUID(key)
    except ValueError:
        as_uuid = None
    if as_uuid is not None and len(key) == 36:
        assert derived == str(as_uuid)
    else:
        assert derived == str(uuid.uuid5(_validate._KEY_NAMESPACE, key))


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=8))
def test_a_key_names_the_same_session_when_remembered(keys: list[str]) -> None:
    """Naming a session by key gives the derived id on every call, remembered or not, and a
    key refused once is refused again."""
    for key in [*keys, *reversed(keys)]:
        try:
            expected = _validate.session_id_for(key)
        except (InvalidArgumentError, ValidationError) as error:
            with pytest.raises(type(error)):
                _validate.session_id(key)
            continue
        assert _validate.session_id(key) == expected
