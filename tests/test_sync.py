"""``satchel.sync``: the typed blocking facade, its streams, and where it may be called from."""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import importlib
import inspect
import random
import threading
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

import satchel
import satchel.sync
from satchel import ForeignLoopError, HookContext, RuntimeClosedError, StoreLockedError
from satchel._sync import background_runtime
from satchel.storage import BlobLimits

from . import sync_api_gen

SMALL = BlobLimits(chunk_size=4096, compress_min=64, max_size=1 << 20)


def test_the_facade_is_generated_from_todays_async_api() -> None:
    """satchel/_sync_*.py are what tests/sync_api_gen.py writes from the async classes."""
    for name, text in sync_api_gen.generate().items():
        assert sync_api_gen.path_of(name).read_text() == sync_api_gen.formatted(text), name


@pytest.mark.parametrize(("module", "cls_name", "facade", "extra"), sync_api_gen.CLASSES)
def test_every_public_method_has_a_typed_blocking_twin(
    module: str, cls_name: str, facade: str, extra: list[tuple[str, str]]
) -> None:
    """Each public method of the async class has a method of the same name and parameters,
    with resolvable type hints, and no class of the facade forwards unknown names."""
    source = getattr(importlib.import_module(module), cls_name)
    blocking = getattr(satchel.sync, facade)
    assert "__getattr__" not in vars(blocking)
    members = {
        name: member
        for klass in reversed(source.__mro__)
        if klass.__module__.startswith("satchel.")
        and not klass.__module__.startswith("satchel.runtime")
        for name, member in vars(klass).items()
    }
    for name, member in members.items():
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        if hasattr(member, "__wrapped__"):
            continue  # async context managers (subscriptions) are for async hosts
        twin = getattr(blocking, name)
        assert list(inspect.signature(twin).parameters) == list(
            inspect.signature(member).parameters
        ), name
        hints = typing.get_type_hints(twin, localns={**vars(collections.abc), **vars(satchel)})
        assert "return" in hints, name


def test_a_session_from_plain_code(tmp_path: Path) -> None:
    """Sessions, variables, artifacts and errors work from a plain function."""
    with satchel.sync.open_runtime(tmp_path / "data") as rt:
        session = rt.session(rt.sessions.create(name="plain", tags=["t"]))
        session.set_state("n", {"a": [1, 2]})
        session.store_artifact("notes.md", b"# notes", type="agent_output")
        assert session.get_state("n") == {"a": [1, 2]}
        assert session.get_artifact("notes.md").content == b"# notes"
        assert [a.name for a in rt.artifacts.query(session_id=session.id)] == ["notes.md"]
        with pytest.raises(satchel.SessionNotFoundError):
            rt.sessions.get("00000000-0000-4000-8000-000000000000")
        assert rt.control.check().clean


def test_streams_both_ways_with_plain_iterators(tmp_path: Path) -> None:
    """Content given as an iterator of bytes is stored; stream_artifact returns an iterator
    of verified chunks that a for loop reads."""
    content = random.Random(2).randbytes(30_000)

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(content), 5000):
            yield content[start : start + 5000]

    with satchel.sync.open_runtime(tmp_path / "data", limits=SMALL) as rt:
        session = rt.session(rt.sessions.create())
        ref = session.store_artifact("big.bin", pieces(), type="tool_result")
        chunks = list(session.stream_artifact(ref))
        partial = session.stream_artifact(ref)
        first = next(partial)
        partial.close()  # a reader may stop early; the stream is closed in the loop
        session.set_state("after", 1)
    assert b"".join(chunks) == content
    assert len(chunks) == 8
    assert first == content[:4096]


def test_calls_from_elsewhere_are_refused_with_the_fix(tmp_path: Path) -> None:
    """Another thread, a hook calling back into the facade, and calls after close each get
    a typed error naming what to do; nothing is written by them."""
    errors: list[BaseException] = []
    with satchel.sync.open_runtime(store="memory") as rt:
        session = rt.session(rt.sessions.create())

        def elsewhere() -> None:
            try:
                session.set_state("k", 1)
            except ForeignLoopError as error:
                errors.append(error)

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()

        def reentrant(context: HookContext) -> None:
            try:
                session.get_state("k")
            except ForeignLoopError as error:
                errors.append(error)

        rt.hooks.register("session_suspend", reentrant)
        session.suspend()
        assert session.list_state() == []
    with pytest.raises(RuntimeClosedError):
        session.info()
    assert [type(e) for e in errors] == [ForeignLoopError, ForeignLoopError]
    assert "background=True" in str(errors[0])
    assert "async API" in str(errors[1])


def test_open_errors_are_raised_and_leave_the_folder_usable(tmp_path: Path) -> None:
    """A second opener of a held folder gets StoreLocked; the first keeps working."""
    with satchel.sync.open_runtime(tmp_path / "data") as rt:
        sid = rt.sessions.create()
        with pytest.raises(StoreLockedError), satchel.sync.open_runtime(tmp_path / "data"):
            pass
        rt.session(sid).set_state("k", 1)
    with satchel.sync.open_runtime(tmp_path / "data") as rt:
        assert rt.session(sid).get_state("k") == 1


def test_a_background_runtime_takes_calls_from_any_thread(tmp_path: Path) -> None:
    """With background=True the loop runs in its own thread: several threads write at once,
    and each write lands."""
    with satchel.sync.open_runtime(tmp_path / "data", background=True) as rt:
        session = rt.session(rt.sessions.create())

        def writer(n: int) -> None:
            for i in range(20):
                session.set_state(f"w{n}", i)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert {k: session.get_state(k) for k in session.list_state()} == {
            f"w{n}": 19 for n in range(4)
        }
    with pytest.raises(RuntimeClosedError):
        session.info()


async def _hold_the_loop(released: threading.Event) -> bool:
    """Block the runtime's loop until ``released`` (at most 10 s); whether it was."""
    return released.wait(10)


async def _answer() -> str:
    return "done"


def test_work_handed_to_a_background_loop_does_not_wait_for_it(tmp_path: Path) -> None:
    """Starting work on a background runtime's loop returns at once, even while that loop
    is busy: a caller's own loop never stalls on it (two loops handing work to each other
    froze for ever when a start waited for the other loop to take the work)."""
    with satchel.sync.open_runtime(tmp_path / "data", background=True) as rt:
        background = background_runtime(rt)
        assert background is not None
        portal = background[1]
        released = threading.Event()
        held = portal.start(_hold_the_loop(released))
        answered = portal.start(_answer())  # while the loop is held
        released.set()
        assert held.result() is True  # released by this thread, not by the 10 s bound
        assert answered.result() == "done"


async def _wait_for(released: threading.Event) -> bool:
    """Wait, yielding the loop, until ``released`` (at most 10 s); whether it was."""
    for _ in range(1000):
        if released.is_set():
            return True
        await asyncio.sleep(0.01)
    return False


def test_a_background_runtime_finishes_work_started_before_it_closes(tmp_path: Path) -> None:
    """Work started on a background runtime's loop before the runtime closes runs to its
    end, even when the block exits by an error (it was cancelled then); work started after
    is refused with RuntimeClosedError (a coroutine handed to the stopped loop never ran)."""
    for failing in (False, True):
        released = threading.Event()
        with (
            contextlib.suppress(ZeroDivisionError),
            satchel.sync.open_runtime(tmp_path / f"{failing}", background=True) as rt,
        ):
            background = background_runtime(rt)
            assert background is not None
            portal = background[1]
            held = portal.start(_wait_for(released))
            threading.Timer(0.05, released.set).start()
            if failing:
                raise ZeroDivisionError
        assert held.result() is True
        with pytest.raises(RuntimeClosedError):
            portal.start(_answer())
