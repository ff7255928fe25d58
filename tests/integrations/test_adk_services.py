"""What SatchelSessionService and SatchelArtifactService add to ADK's contract: where they
keep things in satchel, other writers of the same sessions, and a data folder reopened."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.adk.errors import StaleSessionError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

import satchel.sync
from satchel import Runtime, open_runtime
from satchel.integrations.adk import SatchelArtifactService, SatchelSessionService

from .adk_support import SATCHEL_STORES, delta_event, satchel_path

pytestmark = pytest.mark.anyio

APP = "app"
USER = "ana"


@pytest.fixture
def anyio_backend() -> str:
    """ADK runs on asyncio only, so these tests do too."""
    return "asyncio"


@pytest.fixture(params=SATCHEL_STORES)
async def rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    """An open runtime on each satchel store."""
    store = request.param
    async with open_runtime(satchel_path(tmp_path, store), store=store) as runtime:
        yield runtime


async def test_sessions_are_satchel_sessions_scoped_by_app_and_user(rt: Runtime) -> None:
    """An ADK session is a satchel session listed by app and user, its events in its log and
    its own state in its variables under ADK's keys."""
    service = SatchelSessionService(rt)
    session = await service.create_session(
        app_name=APP, user_id=USER, session_id="s1", state={"plan": ["a"], "app:mode": "x"}
    )
    await service.append_event(session, delta_event(1, step=None, **{"user:lang": "en"}))

    listed = await rt.sessions.list(app=APP, user=USER, tags=["adk:session"])
    assert [info.key for info in listed] == ["adk/s/app/ana/s1"]
    sid = listed[0].id
    assert await rt.sessions.state(sid) == {"plan": ["a"], "step": None}
    (stored,) = await rt.sessions.events(sid)
    assert stored.data["invocation_id"] == "inv1"
    assert stored.at.timestamp() == 1001.0
    assert await service.get_user_state(app_name=APP, user_id=USER) == {"lang": "en"}


async def test_another_writer_of_the_satchel_session_makes_a_copy_stale(rt: Runtime) -> None:
    """An append through satchel's own API after a read makes the ADK copy stale."""
    service = SatchelSessionService(rt)
    session = await service.create_session(app_name=APP, user_id=USER, session_id="s1")
    await rt.sessions.append_event("adk/s/app/ana/s1", {"author": "user", "id": "x"})

    with pytest.raises(StaleSessionError, match="modified in storage"):
        await service.append_event(session, delta_event(1, k=1))
    fresh = await service.get_session(app_name=APP, user_id=USER, session_id="s1")
    assert fresh is not None
    await service.append_event(fresh, delta_event(2, k=2))
    assert await rt.sessions.state("adk/s/app/ana/s1") == {"k": 2}


async def test_stale_copy_writes_no_app_or_user_state(rt: Runtime) -> None:
    """A stale append with app: and user: deltas is refused before the shared state is written."""
    service = SatchelSessionService(rt)
    session = await service.create_session(app_name=APP, user_id=USER, session_id="s1")
    stale = session.model_copy(deep=True)
    await service.append_event(session, delta_event(1, **{"app:n": 1}))

    with pytest.raises(StaleSessionError):
        await service.append_event(stale, delta_event(2, **{"app:n": 2, "user:m": 2}))
    fresh = await service.get_session(app_name=APP, user_id=USER, session_id="s1")
    assert fresh is not None
    assert fresh.state == {"app:n": 1}
    assert len(fresh.events) == 1


async def test_redelivered_event_after_a_lost_answer_is_stored_once(rt: Runtime) -> None:
    """An event appended again through the copy it was first sent from is not stored twice."""
    service = SatchelSessionService(rt)
    session = await service.create_session(app_name=APP, user_id=USER, session_id="s1")
    copy = session.model_copy(deep=True)
    event = delta_event(1, k=1)
    await service.append_event(session, event)

    await service.append_event(copy, event.model_copy(deep=True))
    fresh = await service.get_session(app_name=APP, user_id=USER, session_id="s1")
    assert fresh is not None
    assert [e.id for e in fresh.events] == [event.id]


async def test_after_timestamp_reads_from_the_end(rt: Runtime) -> None:
    """after_timestamp keeps the events at or after it, by their own time."""
    service = SatchelSessionService(rt)
    session = await service.create_session(app_name=APP, user_id=USER, session_id="s1")
    for n in range(1, 6):
        await service.append_event(session, delta_event(n))
    got = await service.get_session(
        app_name=APP,
        user_id=USER,
        session_id="s1",
        config=GetSessionConfig(after_timestamp=1003.0),
    )
    assert got is not None
    assert [e.timestamp for e in got.events] == [1003.0, 1004.0, 1005.0]
    assert got.last_update_time == 1005.0


async def test_equal_artifacts_are_stored_once(rt: Runtime) -> None:
    """The same bytes saved in two sessions of two users are one content-addressed blob."""
    service = SatchelArtifactService(rt)
    part = types.Part.from_bytes(data=b"\x00payload" * 1000, mime_type="application/x-demo")
    for user, sid in (("ana", "s1"), ("bo", "s2")):
        assert (
            await service.save_artifact(
                app_name=APP, user_id=user, session_id=sid, filename="a/b.bin", artifact=part
            )
            == 0
        )
    one = await rt.artifacts.info("adk/art/app/ana/s1", "a%2Fb.bin")
    two = await rt.artifacts.info("adk/art/app/bo/s2", "a%2Fb.bin")
    assert one.content_hash == two.content_hash
    assert one.mime_type == "application/x-demo"
    loaded = await service.load_artifact(
        app_name=APP, user_id="bo", session_id="s2", filename="a/b.bin"
    )
    assert loaded == part


async def test_versions_restart_from_zero_after_a_delete(rt: Runtime) -> None:
    """A name deleted and saved again starts at version 0, as in ADK's own services."""
    service = SatchelArtifactService(rt)
    args = {"app_name": APP, "user_id": USER, "session_id": "s1", "filename": "n.txt"}
    for n in range(3):
        assert await service.save_artifact(**args, artifact=types.Part(text=str(n))) == n
    await service.delete_artifact(**args)
    assert await service.save_artifact(**args, artifact=types.Part(text="again")) == 0
    assert await service.list_versions(**args) == [0]
    assert await service.load_artifact(**args, version=0) == types.Part(text="again")


async def test_a_reopened_data_folder_has_everything(tmp_path: Path) -> None:
    """Sessions, shared state, events and artifacts survive closing and reopening the folder."""
    folder = str(tmp_path / "data")
    async with SatchelSessionService.from_path(folder) as sessions:
        session = await sessions.create_session(app_name=APP, user_id=USER, session_id="s1")
        await sessions.append_event(session, delta_event(1, k=1, **{"app:a": 1, "user:u": 2}))
    async with SatchelArtifactService.from_path(folder) as artifacts:
        await artifacts.save_artifact(
            app_name=APP, user_id=USER, filename="user:p", artifact=types.Part(text="hi")
        )

    async with open_runtime(folder) as rt:
        sessions = SatchelSessionService(rt)
        artifacts = SatchelArtifactService(rt)
        got = await sessions.get_session(app_name=APP, user_id=USER, session_id="s1")
        assert got is not None
        assert got.state == {"k": 1, "app:a": 1, "user:u": 2}
        assert [e.invocation_id for e in got.events] == ["inv1"]
        assert await artifacts.list_artifact_keys(app_name=APP, user_id=USER, session_id="s9") == [
            "user:p"
        ]


async def test_event_times_outside_satchels_range_are_kept(rt: Runtime) -> None:
    """An event timestamped before 1970 or after 9999 is stored, its own timestamp intact."""
    service = SatchelSessionService(rt)
    session = await service.create_session(app_name=APP, user_id=USER, session_id="s1")
    for timestamp in (-5.0, 1e12):
        await service.append_event(session, Event(author="user", timestamp=timestamp))
    got = await service.get_session(app_name=APP, user_id=USER, session_id="s1")
    assert got is not None
    assert [e.timestamp for e in got.events] == [-5.0, 1e12]


async def test_state_satchel_cannot_store_is_refused_before_anything_is_written(
    rt: Runtime,
) -> None:
    """A create or an append whose state satchel refuses writes nothing: no session left
    behind for a retry to trip over, no app: or user: state changed for others."""
    from satchel import ValidationError

    service = SatchelSessionService(rt)
    with pytest.raises(ValidationError):
        await service.create_session(
            app_name="a", user_id="u", session_id="s1", state={"big": 2**70}
        )
    session = await service.create_session(app_name="a", user_id="u", session_id="s1")
    refused = Event(
        author="user",
        invocation_id="i",
        actions=EventActions(state_delta={"app:flag": "x", "bad": 2**70}),
    )
    with pytest.raises(ValidationError):
        await service.append_event(session, refused)
    other = await service.create_session(app_name="a", user_id="v", session_id="s2")
    assert "app:flag" not in other.state
    again = await service.get_session(app_name="a", user_id="u", session_id="s1")
    assert again is not None and again.events == []


async def test_an_event_satchel_refuses_alone_writes_nothing_and_keeps_the_copy_current(
    rt: Runtime,
) -> None:
    """An append with only session state, checked by the one atomic write that stores it
    (not twice), is refused with satchel's error, writes nothing, and the caller's copy can
    append next."""
    from satchel import ValidationError

    service = SatchelSessionService(rt)
    with pytest.raises(ValidationError):
        await service.create_session(
            app_name=APP, user_id=USER, session_id="s1", state={"x": 2**64}
        )
    assert await service.get_session(app_name=APP, user_id=USER, session_id="s1") is None
    session = await service.create_session(app_name=APP, user_id=USER, session_id="s1")
    await service.append_event(session, delta_event(1, kept=1))
    bad_text = Event(
        author="user",
        invocation_id="i",
        content=types.Content(parts=[types.Part(text="lone \ud800 surrogate")]),
    )
    for event in (delta_event(2, big=2**70), bad_text):
        with pytest.raises(ValidationError):
            await service.append_event(session, event)
    got = await service.get_session(app_name=APP, user_id=USER, session_id="s1")
    assert got is not None
    assert [e.invocation_id for e in got.events] == ["inv1"] and got.state == {"kept": 1}
    await service.append_event(session, delta_event(4, kept=4))  # the copy is not stale
    got = await service.get_session(app_name=APP, user_id=USER, session_id="s1")
    assert got is not None and got.state == {"kept": 4}


def test_a_sync_runtime_is_refused_with_what_to_pass(tmp_path: Path) -> None:
    """The services take ``satchel.open_runtime``'s runtime; ``satchel.sync``'s is refused
    when the service is made (it failed at the first call, awaiting a plain value)."""
    with satchel.sync.open_runtime(tmp_path / "data", background=True) as rt:
        for service in (SatchelSessionService, SatchelArtifactService):
            with pytest.raises(TypeError, match="from_path"):
                service(rt)  # type: ignore[arg-type]
