"""The OpenAI Agents SDK's own session-protocol tests, run on SatchelSession and on the SDK's
SQLiteSession (the reference), and SatchelSession's own behaviour beside them.

Ported from openai-agents 0.24.0, the version the ``openai-agents`` extra pins: PyPI sdist
openai_agents-0.24.0.tar.gz (sha256
4b4b285f4fed81fdf1b4ac426a9101658d9cd29b4fb1aaeee18f639b77e704e3), tag v0.24.0 of
github.com/openai/openai-agents-python. (The stored git snapshot of that repository, commit
7f7a44f8dc0650296bd5ab6c745c9bcbaa6ac3b7, is 0.22.0; its copies of these tests assert the
same.) Each ported test keeps its name and, where it had one, its docstring:

- tests/memory/test_session.py: test_sqlite_session_memory_direct,
  test_sqlite_session_memory_pop_item, test_session_memory_pop_different_sessions,
  test_sqlite_session_get_items_with_limit, test_sqlite_session_unicode_content,
  test_sqlite_session_special_characters_and_sql_injection,
  test_sqlite_session_concurrent_access, test_session_settings_default,
  test_session_settings_constructor, test_session_settings_constructor_normalizes_dictionary,
  test_session_settings_rejects_unknown_dictionary_fields,
  test_get_items_uses_session_settings_limit,
  test_get_items_explicit_limit_overrides_session_settings
- tests/extensions/memory/test_async_sqlite_session.py: test_async_sqlite_session_basic_flow,
  test_async_sqlite_session_add_empty_items_list, test_async_sqlite_session_pop_from_empty_session,
  test_async_sqlite_session_get_items_with_limit_more_than_available,
  test_async_sqlite_session_get_items_same_timestamp_consistent_order,
  test_async_sqlite_session_pop_item_same_timestamp_returns_latest
- tests/extensions/memory/test_sqlalchemy_session.py:
  test_concurrent_pop_item_returns_each_row_once,
  test_get_items_limit_returns_fewer_when_history_exhausted
- tests/extensions/memory/test_redis_session.py: test_data_integrity_with_problematic_strings,
  test_concurrent_access

Changes made in porting, and only these: the session comes from the ``session_backend``
fixture instead of a backend's constructor, and closing it is the fixture's; the two
same-timestamp tests keep their assertions but not the SQL that rewrote ``created_at`` (what
they check is that order is insertion order); docstrings are one sentence (two tests had
none). Not ported: the tests of one backend's internals (corrupt rows, connections, locks,
WAL, ``close()``).
The SDK's Runner-with-session tests are in test_openai_agents_runner.py.

The SDK runs on asyncio only, so these tests run on asyncio only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from agents import TResponseInputItem, set_tracing_disabled
from agents.memory import Session, SessionSettings, SQLiteSession
from anyio.from_thread import start_blocking_portal

import satchel.sync
from satchel import InvalidArgumentError, Runtime, open_runtime
from satchel.integrations.openai_agents import KEY_PREFIX, SatchelSession

from .openai_support import slowed

# Runs of the SDK trace to OpenAI unless told not to; no test here should reach a network.
set_tracing_disabled(True)


@dataclass
class Backend:
    """Sessions of one backing store, shared by one test: two ids are two sessions of it, and
    two instances of one id share one history."""

    name: str
    make: Callable[..., Session]
    # Reachable from another thread's running loop (Runner.run_sync runs in one).
    cross_loop: bool = True
    # Reachable from other threads' loops while the test's own loop is blocked: true where
    # the runtime runs in a loop of its own (the synchronous form), not in the test's.
    threads_while_loop_blocked: bool = True
    # Two instances of one id share one history (not with SQLite ":memory:").
    shared_store: bool = True
    runtime: Runtime | None = None
    opened: list[Session] = field(default_factory=list)


#: The SDK's SQLiteSession in memory and on file (the reference), and SatchelSession on a
#: memory store, on RocksDB at each durability, and on RocksDB in a loop of its own.
BACKENDS = [
    "sqlite-memory",
    "sqlite-file",
    "satchel-memory",
    "satchel-rocksdb",
    "satchel-rocksdb-machine",
    "satchel-thread",
]


@contextlib.asynccontextmanager
async def open_backend(kind: str, folder: Path) -> AsyncIterator[Backend]:
    """The sessions of one store of the named kind, closed at the end."""
    async with contextlib.AsyncExitStack() as stack:
        backend = Backend(kind, lambda *a, **k: None)  # type: ignore[arg-type,return-value]
        if kind.startswith("sqlite"):
            where: Any = folder / "sessions.db" if kind == "sqlite-file" else ":memory:"

            def make_sqlite(session_id: str, session_settings: Any = None) -> Session:
                session = SQLiteSession(session_id, where, session_settings=session_settings)
                backend.opened.append(session)
                return session

            backend.make = make_sqlite
            backend.shared_store = kind == "sqlite-file"
        else:
            loop = None
            if kind == "satchel-thread":
                portal = stack.enter_context(start_blocking_portal("asyncio"))
                rt = stack.enter_context(
                    portal.wrap_async_context_manager(open_runtime(folder / "satchel"))
                )
                loop = portal.call(asyncio.get_running_loop)
            else:
                store = "memory" if kind == "satchel-memory" else "rocksdb"
                durability = "machine" if kind.endswith("machine") else "process"
                rt = await stack.enter_async_context(
                    open_runtime(folder / "satchel", store=store, durability=durability)
                )

            def make_satchel(session_id: str, session_settings: Any = None) -> Session:
                session = SatchelSession(
                    session_id, rt, session_settings=session_settings, loop=loop
                )
                backend.opened.append(session)
                return session

            backend.make = make_satchel
            backend.runtime = rt
            backend.threads_while_loop_blocked = kind == "satchel-thread"
        try:
            yield backend
        finally:
            for session in backend.opened:
                if isinstance(session, SQLiteSession):
                    session.close()


@pytest.fixture
def anyio_backend() -> str:
    """The SDK runs on asyncio only."""
    return "asyncio"


@pytest.fixture(params=BACKENDS)
async def session_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each backend in turn."""
    async with open_backend(request.param, tmp_path) as backend:
        yield backend


# --- SatchelSession's own behaviour (not from the SDK) -------------------------------------


@pytest.fixture(params=["memory", "rocksdb"])
async def rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    """An open runtime on each store."""
    async with open_runtime(tmp_path / "satchel", store=request.param) as runtime:
        yield runtime


async def test_backend_implements_the_protocol(session_backend: Backend) -> None:
    """Every backend passes the SDK's runtime-checkable Session protocol."""
    session = session_backend.make("protocol_check")
    assert isinstance(session, Session)
    assert session.session_id == "protocol_check"


async def test_one_keyed_satchel_session_per_sdk_session(rt: Runtime) -> None:
    """An SDK session is the satchel session keyed openai-agents:<id> in the app
    openai-agents, created by its first write, each item one event."""
    session = SatchelSession("thread-1", rt, user="ana")
    assert await session.get_items() == []
    assert await rt.sessions.list(app="openai-agents") == []
    await session.add_items([{"role": "user", "content": "hi"}])
    info = await rt.sessions.get("openai-agents:thread-1")
    assert (info.key, info.app, info.user, info.name) == (
        "openai-agents:thread-1",
        "openai-agents",
        "ana",
        "thread-1",
    )
    assert info.id == session.satchel_id
    assert session.key == KEY_PREFIX + "thread-1"
    events = await rt.sessions.events(info.id)
    assert [(e.position, e.data) for e in events] == [(1, {"role": "user", "content": "hi"})]


async def test_an_sdk_id_never_names_another_satchel_session(rt: Runtime) -> None:
    """A session id that is a UUID, or another session's key, stays a session of its own."""
    other = await rt.sessions.create(key="thread-1")
    for session_id in (other, "thread-1", str(uuid.uuid4())):
        session = SatchelSession(session_id, rt)
        await session.add_items([{"role": "user", "content": session_id}])
        assert session.satchel_id != other
    assert await rt.sessions.events(other) == []
    assert len(await rt.sessions.list(app="openai-agents")) == 3


async def test_add_items_is_one_atomic_append(rt: Runtime) -> None:
    """A list of items is one journaled append, and a list with one bad item writes none."""
    session = SatchelSession("atomic", rt)
    items: list[TResponseInputItem] = [{"role": "user", "content": f"m{n}"} for n in range(3)]
    await session.add_items(items)
    kinds = [entry.kind for entry in await rt.sessions.timeline(session.satchel_id)]
    assert kinds == ["session_created", "events_appended"]
    bad = cast(TResponseInputItem, {"role": "user", "content": b"bytes are not JSON"})
    with pytest.raises(TypeError):
        await session.add_items([*items, bad])
    with pytest.raises(TypeError):
        await session.add_items(cast(list[TResponseInputItem], ["not a dict"]))
    assert await session.get_items() == items
    assert len(await rt.sessions.timeline(session.satchel_id)) == 2


async def test_non_json_values_raise_type_error_as_sqlite_does(tmp_path: Path) -> None:
    """An item SQLiteSession cannot store raises TypeError from SatchelSession too."""
    bad = cast(TResponseInputItem, {"role": "user", "content": object()})
    sqlite = SQLiteSession("bad", tmp_path / "s.db")
    with pytest.raises(TypeError):
        await sqlite.add_items([bad])
    sqlite.close()
    async with SatchelSession.from_path("bad", tmp_path / "satchel") as session:
        with pytest.raises(InvalidArgumentError):  # a TypeError
            await session.add_items([bad])
        assert await session.get_items() == []


async def test_clear_session_keeps_the_satchel_session(rt: Runtime) -> None:
    """clear_session removes the items but keeps the session, its variables and its journal."""
    session = SatchelSession("kept", rt)
    await session.add_items([{"role": "user", "content": "hi"}])
    await rt.sessions.set_state(session.satchel_id, "topic", "greetings")
    await session.clear_session()
    assert await session.get_items() == []
    assert await session.pop_item() is None
    assert await rt.sessions.get_state(session.satchel_id, "topic") == "greetings"
    kinds = [entry.kind for entry in await rt.sessions.timeline(session.satchel_id)]
    assert kinds[-1] == "events_cleared"
    await session.add_items([{"role": "user", "content": "again"}])
    assert [e.position for e in await rt.sessions.events(session.satchel_id)] == [2]


async def test_unknown_sessions_read_empty_and_write_nothing(rt: Runtime) -> None:
    """Reading, popping or clearing a session never written creates nothing."""
    session = SatchelSession("never", rt)
    assert await session.get_items() == []
    assert await session.get_items(limit=3) == []
    assert await session.pop_item() is None
    await session.clear_session()
    await session.add_items([])
    assert await rt.sessions.list() == []


async def test_negative_limit_gives_everything_as_sqlite_does(rt: Runtime) -> None:
    """A negative limit reads the whole history, as SQLiteSession's LIMIT -1 does."""
    session = SatchelSession("negative", rt)
    items: list[TResponseInputItem] = [{"role": "user", "content": str(n)} for n in range(3)]
    await session.add_items(items)
    assert await session.get_items(limit=-1) == items


async def test_session_ids_that_do_not_fit_a_key_are_refused(rt: Runtime) -> None:
    """An id over 242 UTF-8 bytes, empty, with NUL or not a string is refused at once."""
    SatchelSession("x" * 242, rt)
    for bad in ("x" * 243, "", "a\x00b"):
        with pytest.raises(ValueError, match="session_id must be"):
            SatchelSession(bad, rt)
    with pytest.raises(TypeError):
        SatchelSession(cast(str, 42), rt)


async def test_history_survives_a_restart(tmp_path: Path) -> None:
    """Items written at machine durability are read back by a new runtime on the folder."""
    items: list[TResponseInputItem] = [{"role": "user", "content": "kept"}]
    async with SatchelSession.from_path("restart", tmp_path, durability="machine") as session:
        await session.add_items(items)
    async with SatchelSession.from_path("restart", tmp_path) as session:
        assert await session.get_items() == items


def test_the_synchronous_form_runs_its_runtime_in_a_thread(tmp_path: Path) -> None:
    """``with SatchelSession.from_path(...)`` serves calls from any loop and thread."""
    items: list[TResponseInputItem] = [{"role": "user", "content": "sync"}]
    with SatchelSession.from_path("sync", tmp_path) as session:
        asyncio.run(session.add_items(items))
        assert asyncio.run(session.get_items()) == items
    with SatchelSession.from_path("sync", tmp_path) as session:
        assert asyncio.run(session.pop_item()) == items[0]


def test_a_background_sync_runtime_serves_a_session(tmp_path: Path) -> None:
    """On ``satchel.sync.open_runtime(..., background=True)`` a session serves calls from
    any loop, each handed to the runtime's; a runtime without its own thread is refused."""
    items: list[TResponseInputItem] = [{"role": "user", "content": "sync"}]
    with satchel.sync.open_runtime(tmp_path / "a", background=True) as rt:
        session = SatchelSession("sync", rt)
        asyncio.run(session.add_items(items))
        assert asyncio.run(session.get_items()) == items
        assert rt.sessions.get(session.satchel_id).key == KEY_PREFIX + "sync"
    with (
        satchel.sync.open_runtime(tmp_path / "b") as rt,
        pytest.raises(TypeError, match="background=True"),
    ):
        SatchelSession("sync", rt)


@pytest.mark.parametrize("opened", ["from_path", "sync runtime"])
def test_calls_made_while_the_runtime_closes_end(tmp_path: Path, opened: str) -> None:
    """Threads, each on a loop of its own, calling a session whose runtime runs in a thread
    of its own while that runtime closes: every call ends, none waiting for ever on a loop
    that stopped, and calls after it raise RuntimeClosedError (reads raised
    StoreClosedError)."""
    for round_ in range(4):
        closed = threading.Event()
        with contextlib.ExitStack() as stack:
            folder = tmp_path / f"{round_}"
            if opened == "from_path":
                session = stack.enter_context(SatchelSession.from_path("s", folder))
            else:
                rt = stack.enter_context(satchel.sync.open_runtime(folder, background=True))
                session = SatchelSession("s", rt)
            threads = [
                threading.Thread(target=_call_until_closed, args=(session, closed), daemon=True)
                for _ in range(4)
            ]
            for thread in threads:
                thread.start()
            asyncio.run(session.add_items([{"role": "user", "content": "first"}]))
        closed.set()
        for thread in threads:
            thread.join(30)  # a liveness bound: every call ends within it, or it hung
        assert not any(thread.is_alive() for thread in threads)
        with pytest.raises(satchel.RuntimeClosedError):
            asyncio.run(session.get_items())
        with pytest.raises(satchel.RuntimeClosedError):
            asyncio.run(session.add_items([{"role": "user", "content": "late"}]))


def _call_until_closed(session: SatchelSession, closed: threading.Event) -> None:
    """Write and read through ``session`` until a call after ``closed`` is set fails."""

    async def calls() -> None:
        while True:
            try:
                await session.add_items([{"role": "user", "content": "x"}])
                await session.get_items(1)
            except satchel.SatchelError:  # the runtime closed (RuntimeClosedError, mostly)
                if closed.is_set():
                    return

    asyncio.run(calls())


async def test_a_cancelled_write_settles_before_the_cancellation(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller cancelled during add_items or pop_item gets CancelledError once the write is
    done, never with its outcome unknown."""
    session = SatchelSession("cancel", rt)
    items: list[TResponseInputItem] = [{"role": "user", "content": "a"}]
    slowed(rt, monkeypatch)
    slowed(rt, monkeypatch, method="pop_event")
    task = asyncio.create_task(session.add_items(items))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await session.get_items() == items
    task2 = asyncio.create_task(session.pop_item())
    await asyncio.sleep(0)
    task2.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task2
    assert await session.get_items() == []


async def test_calls_from_another_threads_loop_are_handed_to_the_runtimes(rt: Runtime) -> None:
    """A session used from a worker thread's own loop runs each call in the runtime's loop."""
    session = SatchelSession("hop", rt)
    items: list[TResponseInputItem] = [{"role": "user", "content": "from a thread"}]

    def in_thread() -> list[TResponseInputItem]:
        asyncio.run(session.add_items(items))
        return asyncio.run(session.get_items())

    assert await asyncio.to_thread(in_thread) == items
    assert await session.get_items() == items


def _item_ids(items: list[TResponseInputItem]) -> list[str]:
    return [cast(str, cast(dict[str, Any], item)["id"]) for item in items]


# --- tests/memory/test_session.py ---------------------------------------------------------


async def test_sqlite_session_memory_direct(session_backend: Backend) -> None:
    """Test SQLiteSession class directly."""
    session = session_backend.make("direct_test")

    # Test adding and retrieving items
    items: list[TResponseInputItem] = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there!"},
    ]

    await session.add_items(items)
    retrieved = await session.get_items()

    assert len(retrieved) == 2
    assert retrieved[0].get("role") == "user"
    assert retrieved[0].get("content") == "Hello"
    assert retrieved[1].get("role") == "assistant"
    assert retrieved[1].get("content") == "Hi there!"

    # Test clearing session
    await session.clear_session()
    retrieved_after_clear = await session.get_items()
    assert len(retrieved_after_clear) == 0


async def test_sqlite_session_memory_pop_item(session_backend: Backend) -> None:
    """Test SQLiteSession pop_item functionality."""
    session = session_backend.make("pop_test")

    # Test popping from empty session
    popped = await session.pop_item()
    assert popped is None

    # Add items
    items: list[TResponseInputItem] = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there!"},
        {"role": "user", "content": "How are you?"},
    ]

    await session.add_items(items)

    # Verify all items are there
    retrieved = await session.get_items()
    assert len(retrieved) == 3

    # Pop the most recent item
    popped = await session.pop_item()
    assert popped is not None
    assert popped.get("role") == "user"
    assert popped.get("content") == "How are you?"

    # Verify item was removed
    retrieved_after_pop = await session.get_items()
    assert len(retrieved_after_pop) == 2
    assert retrieved_after_pop[-1].get("content") == "Hi there!"

    # Pop another item
    popped2 = await session.pop_item()
    assert popped2 is not None
    assert popped2.get("role") == "assistant"
    assert popped2.get("content") == "Hi there!"

    # Pop the last item
    popped3 = await session.pop_item()
    assert popped3 is not None
    assert popped3.get("role") == "user"
    assert popped3.get("content") == "Hello"

    # Try to pop from empty session again
    popped4 = await session.pop_item()
    assert popped4 is None

    # Verify session is empty
    final_items = await session.get_items()
    assert len(final_items) == 0


async def test_session_memory_pop_different_sessions(session_backend: Backend) -> None:
    """Test that pop_item only affects the specified session."""
    session_1 = session_backend.make("session_1")
    session_2 = session_backend.make("session_2")

    # Add items to both sessions
    items_1: list[TResponseInputItem] = [
        {"role": "user", "content": "Session 1 message"},
    ]
    items_2: list[TResponseInputItem] = [
        {"role": "user", "content": "Session 2 message 1"},
        {"role": "user", "content": "Session 2 message 2"},
    ]

    await session_1.add_items(items_1)
    await session_2.add_items(items_2)

    # Pop from session 2
    popped = await session_2.pop_item()
    assert popped is not None
    assert popped.get("content") == "Session 2 message 2"

    # Verify session 1 is unaffected
    session_1_items = await session_1.get_items()
    assert len(session_1_items) == 1
    assert session_1_items[0].get("content") == "Session 1 message"

    # Verify session 2 has one item left
    session_2_items = await session_2.get_items()
    assert len(session_2_items) == 1
    assert session_2_items[0].get("content") == "Session 2 message 1"


async def test_sqlite_session_get_items_with_limit(session_backend: Backend) -> None:
    """Test SQLiteSession get_items with limit parameter."""
    session = session_backend.make("count_test")

    # Add multiple items
    items: list[TResponseInputItem] = [
        {"role": "user", "content": "Message 1"},
        {"role": "assistant", "content": "Response 1"},
        {"role": "user", "content": "Message 2"},
        {"role": "assistant", "content": "Response 2"},
        {"role": "user", "content": "Message 3"},
        {"role": "assistant", "content": "Response 3"},
    ]

    await session.add_items(items)

    # Test getting all items (default behavior)
    all_items = await session.get_items()
    assert len(all_items) == 6
    assert all_items[0].get("content") == "Message 1"
    assert all_items[-1].get("content") == "Response 3"

    # Test getting latest 2 items
    latest_2 = await session.get_items(limit=2)
    assert len(latest_2) == 2
    assert latest_2[0].get("content") == "Message 3"
    assert latest_2[1].get("content") == "Response 3"

    # Test getting latest 4 items
    latest_4 = await session.get_items(limit=4)
    assert len(latest_4) == 4
    assert latest_4[0].get("content") == "Message 2"
    assert latest_4[1].get("content") == "Response 2"
    assert latest_4[2].get("content") == "Message 3"
    assert latest_4[3].get("content") == "Response 3"

    # Test getting more items than available
    latest_10 = await session.get_items(limit=10)
    assert len(latest_10) == 6  # Should return all available items
    assert latest_10[0].get("content") == "Message 1"
    assert latest_10[-1].get("content") == "Response 3"

    # Test getting 0 items
    latest_0 = await session.get_items(limit=0)
    assert len(latest_0) == 0


async def test_sqlite_session_unicode_content(session_backend: Backend) -> None:
    """Test that session correctly stores and retrieves unicode/non-ASCII content."""
    session = session_backend.make("unicode_test")

    # Add unicode content to the session
    items: list[TResponseInputItem] = [
        {"role": "user", "content": "こんにちは"},
        {"role": "assistant", "content": "😊👍"},
        {"role": "user", "content": "Привет"},
    ]
    await session.add_items(items)

    # Retrieve items and verify unicode content
    retrieved = await session.get_items()
    assert retrieved[0].get("content") == "こんにちは"
    assert retrieved[1].get("content") == "😊👍"
    assert retrieved[2].get("content") == "Привет"


async def test_sqlite_session_special_characters_and_sql_injection(
    session_backend: Backend,
) -> None:
    """
    Test that session safely stores and retrieves items with special characters and SQL keywords.
    """
    session = session_backend.make("special_chars_test")

    # Add items with special characters and SQL keywords
    items: list[TResponseInputItem] = [
        {"role": "user", "content": "O'Reilly"},
        {"role": "assistant", "content": "DROP TABLE sessions;"},
        {"role": "user", "content": ('"SELECT * FROM users WHERE name = "admin";"')},
        {"role": "assistant", "content": "Robert'); DROP TABLE students;--"},
        {"role": "user", "content": "Normal message"},
    ]
    await session.add_items(items)

    # Retrieve all items and verify they are stored correctly
    retrieved = await session.get_items()
    assert len(retrieved) == len(items)
    assert retrieved[0].get("content") == "O'Reilly"
    assert retrieved[1].get("content") == "DROP TABLE sessions;"
    assert retrieved[2].get("content") == '"SELECT * FROM users WHERE name = "admin";"'
    assert retrieved[3].get("content") == "Robert'); DROP TABLE students;--"
    assert retrieved[4].get("content") == "Normal message"


async def test_sqlite_session_concurrent_access(session_backend: Backend) -> None:
    """
    Test concurrent access to the same session to verify data integrity.
    """
    if not session_backend.threads_while_loop_blocked:
        pytest.skip(
            "each worker thread runs its own event loop while the test's loop is blocked; "
            "a runtime-bound session can be served only by its runtime's running loop"
        )
    session = session_backend.make("concurrent_test")

    # Add initial item
    items: list[TResponseInputItem] = [
        {"role": "user", "content": f"Message {i}"} for i in range(10)
    ]

    # Use ThreadPoolExecutor to simulate concurrent writes
    def add_item(item: TResponseInputItem) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(session.add_items([item]))
        loop.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=5) as executor:
        executor.map(add_item, items)

    # Retrieve all items and verify all are present
    retrieved = await session.get_items()
    contents = {
        content
        for item in retrieved
        for content in [item.get("content")]
        if isinstance(content, str)
    }
    expected = {f"Message {i}" for i in range(10)}
    assert contents == expected


async def test_session_settings_default(session_backend: Backend) -> None:
    """Test that session_settings defaults to empty SessionSettings."""
    session = session_backend.make("default_settings_test")

    # Should have default SessionSettings
    assert isinstance(session.session_settings, SessionSettings)
    assert session.session_settings.limit is None


async def test_session_settings_constructor(session_backend: Backend) -> None:
    """Test passing session_settings via constructor."""
    session = session_backend.make(
        "constructor_settings_test", session_settings=SessionSettings(limit=5)
    )

    assert session.session_settings is not None
    assert session.session_settings.limit == 5


async def test_session_settings_constructor_normalizes_dictionary(
    session_backend: Backend,
) -> None:
    """A dictionary of settings becomes SessionSettings (docstring added in porting)."""
    session = session_backend.make("dictionary_settings_test", session_settings={"limit": 0})

    assert isinstance(session.session_settings, SessionSettings)
    assert session.session_settings.limit == 0
    assert session.session_settings.resolve({"limit": 4}).limit == 4


async def test_session_settings_rejects_unknown_dictionary_fields(
    session_backend: Backend,
) -> None:
    """An unknown settings field is a TypeError (docstring added in porting)."""
    with pytest.raises(TypeError, match="Unknown session settings: limitt"):
        session_backend.make("invalid_settings_test", session_settings={"limitt": 1})


async def test_get_items_uses_session_settings_limit(session_backend: Backend) -> None:
    """Test that get_items uses session_settings.limit as default."""
    session = session_backend.make(
        "uses_settings_limit_test", session_settings=SessionSettings(limit=3)
    )

    # Add 5 items
    items: list[TResponseInputItem] = [
        {"role": "user", "content": f"Message {i}"} for i in range(5)
    ]
    await session.add_items(items)

    # get_items() with no limit should use session_settings.limit=3
    retrieved = await session.get_items()
    assert len(retrieved) == 3
    # Should get the last 3 items
    assert retrieved[0].get("content") == "Message 2"
    assert retrieved[1].get("content") == "Message 3"
    assert retrieved[2].get("content") == "Message 4"


async def test_get_items_explicit_limit_overrides_session_settings(
    session_backend: Backend,
) -> None:
    """Test that explicit limit parameter overrides session_settings."""
    session = session_backend.make(
        "explicit_override_test", session_settings=SessionSettings(limit=5)
    )

    # Add 10 items
    items: list[TResponseInputItem] = [
        {"role": "user", "content": f"Message {i}"} for i in range(10)
    ]
    await session.add_items(items)

    # Explicit limit=2 should override session_settings.limit=5
    retrieved = await session.get_items(limit=2)
    assert len(retrieved) == 2
    assert retrieved[0].get("content") == "Message 8"
    assert retrieved[1].get("content") == "Message 9"


# --- tests/extensions/memory/test_async_sqlite_session.py ----------------------------------


async def test_async_sqlite_session_basic_flow(session_backend: Backend) -> None:
    """Test AsyncSQLiteSession add/get/clear behavior."""
    session = session_backend.make("async_basic")

    items: list[TResponseInputItem] = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there!"},
    ]

    await session.add_items(items)
    retrieved = await session.get_items()
    assert retrieved == items

    await session.clear_session()
    assert await session.get_items() == []


async def test_async_sqlite_session_add_empty_items_list(session_backend: Backend) -> None:
    """Test that adding an empty list of items is a no-op."""
    session = session_backend.make("add_empty_test")

    assert await session.get_items() == []
    await session.add_items([])
    assert await session.get_items() == []


async def test_async_sqlite_session_pop_from_empty_session(session_backend: Backend) -> None:
    """Test that pop_item returns None on an empty session."""
    session = session_backend.make("empty_session")

    popped = await session.pop_item()
    assert popped is None


async def test_async_sqlite_session_get_items_with_limit_more_than_available(
    session_backend: Backend,
) -> None:
    """Test limit behavior when requesting more items than exist."""
    session = session_backend.make("limit_more_test")

    items: list[TResponseInputItem] = [
        {"role": "user", "content": "1"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "3"},
        {"role": "assistant", "content": "4"},
    ]
    await session.add_items(items)

    retrieved = await session.get_items(limit=10)
    assert retrieved == items


async def test_async_sqlite_session_get_items_same_timestamp_consistent_order(
    session_backend: Backend,
) -> None:
    """Test that items with identical timestamps keep insertion order."""
    session = session_backend.make("same_timestamp_test")

    older_item = cast(TResponseInputItem, {"id": "older_same_ts", "role": "user", "content": "old"})
    reasoning_item = cast(TResponseInputItem, {"id": "rs_same_ts", "type": "reasoning"})
    message_item = cast(
        TResponseInputItem,
        {"id": "msg_same_ts", "type": "message", "role": "assistant", "content": []},
    )

    await session.add_items([older_item])
    await session.add_items([reasoning_item, message_item])

    # (The SQL that set one shared created_at on the three rows is not ported.)

    retrieved = await session.get_items()
    assert _item_ids(retrieved) == ["older_same_ts", "rs_same_ts", "msg_same_ts"]

    latest_two = await session.get_items(limit=2)
    assert _item_ids(latest_two) == ["rs_same_ts", "msg_same_ts"]


async def test_async_sqlite_session_pop_item_same_timestamp_returns_latest(
    session_backend: Backend,
) -> None:
    """Test that pop_item returns the newest item when timestamps tie."""
    session = session_backend.make("same_timestamp_pop_test")

    reasoning_item = cast(TResponseInputItem, {"id": "rs_pop_same_ts", "type": "reasoning"})
    message_item = cast(
        TResponseInputItem,
        {"id": "msg_pop_same_ts", "type": "message", "role": "assistant", "content": []},
    )

    await session.add_items([reasoning_item, message_item])

    # (The SQL that set one shared created_at on both rows is not ported.)

    popped = await session.pop_item()
    assert popped is not None
    assert cast(dict[str, Any], popped)["id"] == "msg_pop_same_ts"

    remaining = await session.get_items()
    assert _item_ids(remaining) == ["rs_pop_same_ts"]


# --- tests/extensions/memory/test_sqlalchemy_session.py ------------------------------------


async def test_concurrent_pop_item_returns_each_row_once(session_backend: Backend) -> None:
    """Concurrent atomic DELETE claims must return each stored row at most once."""
    if not session_backend.shared_store:
        pytest.skip("two instances of one id are two databases on this backend")
    writer = session_backend.make("concurrent_pop")
    other = session_backend.make("concurrent_pop")
    await writer.add_items(
        [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "second"},
        ]
    )

    tasks = [asyncio.create_task(session.pop_item()) for session in (writer, other)]
    try:
        popped = await asyncio.wait_for(asyncio.gather(*tasks), timeout=2)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    contents = {cast(dict[str, Any], item)["content"] for item in popped if item is not None}
    assert contents == {"first", "second"}


async def test_get_items_limit_returns_fewer_when_history_exhausted(
    session_backend: Backend,
) -> None:
    """Window expansion stops at the end of history instead of looping."""
    session = session_backend.make("limit_exhausted")

    await session.add_items([{"role": "user", "content": "only valid"}])

    retrieved = await session.get_items(limit=5)
    assert [item.get("content") for item in retrieved] == ["only valid"]


# --- tests/extensions/memory/test_redis_session.py -----------------------------------------


async def test_data_integrity_with_problematic_strings(session_backend: Backend) -> None:
    """Test that session preserves data integrity with strings that could break parsers."""
    session = session_backend.make("data_integrity")

    # Add items with various problematic string patterns that could break JSON parsing,
    # string escaping, or other serialization mechanisms
    items: list[TResponseInputItem] = [
        {"role": "user", "content": "O'Reilly"},  # Single quote
        {"role": "assistant", "content": "DROP TABLE sessions;"},  # SQL-like command
        {"role": "user", "content": '"SELECT * FROM users WHERE name = "admin";"'},
        {"role": "assistant", "content": "Robert'); DROP TABLE students;--"},
        {"role": "user", "content": '{"malicious": "json"}'},  # JSON-like string
        {"role": "assistant", "content": "\\n\\t\\r Special escapes"},  # Escape sequences
        {"role": "user", "content": "Normal message"},  # Control case
    ]
    await session.add_items(items)

    # Retrieve all items and verify they are stored exactly as provided
    # This ensures the storage layer doesn't modify, escape, or corrupt data
    retrieved = await session.get_items()
    assert len(retrieved) == len(items)
    assert retrieved[0].get("content") == "O'Reilly"
    assert retrieved[1].get("content") == "DROP TABLE sessions;"
    assert retrieved[2].get("content") == '"SELECT * FROM users WHERE name = "admin";"'
    assert retrieved[3].get("content") == "Robert'); DROP TABLE students;--"
    assert retrieved[4].get("content") == '{"malicious": "json"}'
    assert retrieved[5].get("content") == "\\n\\t\\r Special escapes"
    assert retrieved[6].get("content") == "Normal message"


async def test_concurrent_access(session_backend: Backend) -> None:
    """Test concurrent access to the same session to verify data integrity."""
    session = session_backend.make("concurrent_test")

    # Prepare items for concurrent writing
    async def add_messages(start_idx: int, count: int) -> None:
        items: list[TResponseInputItem] = [
            {"role": "user", "content": f"Message {start_idx + i}"} for i in range(count)
        ]
        await session.add_items(items)

    # Run multiple concurrent add operations
    tasks = [
        add_messages(0, 5),  # Messages 0-4
        add_messages(5, 5),  # Messages 5-9
        add_messages(10, 5),  # Messages 10-14
    ]

    await asyncio.gather(*tasks)

    # Verify all items were added
    retrieved = await session.get_items()
    assert len(retrieved) == 15

    # Extract message numbers and verify all are present
    contents = [item.get("content") for item in retrieved]
    expected_messages = [f"Message {i}" for i in range(15)]

    # Check that all expected messages are present (order may vary due to concurrency)
    for expected in expected_messages:
        assert expected in contents
