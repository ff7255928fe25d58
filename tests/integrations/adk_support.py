"""The backends the Google ADK service tests run on, and their recorded differences.

The ported tests take a ``session_service`` / ``artifact_service`` fixture that each test
module defines from ``open_session_service`` / ``open_artifact_service`` here, parametrized
over ``SESSION_BACKENDS`` / ``ARTIFACT_BACKENDS``, the way ADK's own
``tests/unittests/sessions/_conformance.py`` registers its backends. ADK's own services are
there to show each ported test is faithful: what a test asserts holds for ADK's reference.

A backend that differs from a test on purpose is recorded in ``DIVERGENCES`` with the
reason; the test is then ``xfail(strict=True)`` for that backend only.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from google.adk.artifacts.file_artifact_service import FileArtifactService
from google.adk.artifacts.in_memory_artifact_service import InMemoryArtifactService
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.features import FeatureName, override_feature_enabled
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.adk.sessions.sqlite_session_service import SqliteSessionService

from satchel.integrations.adk import SatchelArtifactService, SatchelSessionService

#: Warnings ADK raises on purpose, which the ADK test modules ignore (pytest runs with
#: ``filterwarnings = error``): the in-memory service's light-copy mode announces itself as
#: work in progress when the fixture below turns it on.
ADK_WARNINGS = [
    pytest.mark.filterwarnings(
        "ignore:\\[WIP\\] feature IN_MEMORY_SESSION_SERVICE_LIGHT_COPY is enabled:UserWarning"
    ),
]

_Open = Callable[[Path], contextlib.AbstractAsyncContextManager[Any]]

#: The satchel stores the services run on.
SATCHEL_STORES = ["memory", "rocksdb"]


def delta_event(n: int, **delta: object) -> Event:
    """The ``n``th event of a test, by the user at time 1000 + n, with ``delta`` as its
    state delta."""
    return Event(
        invocation_id=f"inv{n}",
        author="user",
        timestamp=1000.0 + n,
        actions=EventActions(state_delta=dict(delta)),
    )


def satchel_path(tmp_path: Path, store: str) -> str | None:
    """Where a satchel runtime on ``store`` keeps its data (nowhere for memory)."""
    return None if store == "memory" else str(tmp_path / "satchel")


# --------------------------------------------------------------------------- sessions
@contextlib.asynccontextmanager
async def _in_memory(tmp_path: Path) -> AsyncIterator[Any]:
    yield InMemorySessionService()


@contextlib.asynccontextmanager
async def _in_memory_light_copy(tmp_path: Path) -> AsyncIterator[Any]:
    override_feature_enabled(FeatureName.IN_MEMORY_SESSION_SERVICE_LIGHT_COPY, True)
    try:
        yield InMemorySessionService()
    finally:
        override_feature_enabled(FeatureName.IN_MEMORY_SESSION_SERVICE_LIGHT_COPY, False)


@contextlib.asynccontextmanager
async def _sqlite(tmp_path: Path) -> AsyncIterator[Any]:
    yield SqliteSessionService(str(tmp_path / "sessions.db"))


def _satchel_sessions(store: str) -> _Open:
    def open_service(tmp_path: Path) -> contextlib.AbstractAsyncContextManager[Any]:
        return SatchelSessionService.from_path(satchel_path(tmp_path, store), store=store)

    return open_service


SESSION_BACKENDS: dict[str, _Open] = {
    "in_memory": _in_memory,
    "in_memory_light_copy": _in_memory_light_copy,
    "sqlite": _sqlite,
    **{f"satchel_{store}": _satchel_sessions(store) for store in SATCHEL_STORES},
}
#: Backends that persist, and so owe ADK's stale-writer check (InMemorySessionService
#: appends through a stale copy by design).
PERSISTENT_SESSION_BACKENDS = ["sqlite", *(f"satchel_{store}" for store in SATCHEL_STORES)]


# -------------------------------------------------------------------------- artifacts
@contextlib.asynccontextmanager
async def _in_memory_artifacts(tmp_path: Path) -> AsyncIterator[Any]:
    yield InMemoryArtifactService()


@contextlib.asynccontextmanager
async def _file_artifacts(tmp_path: Path) -> AsyncIterator[Any]:
    yield FileArtifactService(root_dir=tmp_path / "artifacts")


def _satchel_artifacts(store: str) -> _Open:
    def open_service(tmp_path: Path) -> contextlib.AbstractAsyncContextManager[Any]:
        return SatchelArtifactService.from_path(satchel_path(tmp_path, store), store=store)

    return open_service


ARTIFACT_BACKENDS: dict[str, _Open] = {
    "in_memory": _in_memory_artifacts,
    "file": _file_artifacts,
    **{f"satchel_{store}": _satchel_artifacts(store) for store in SATCHEL_STORES},
}


# ------------------------------------------------------------------------ divergences
# test name (or node name, for one parametrization) -> backend -> reason (xfail, strict).
_SQLITE_STALE = (
    "SqliteSessionService (google-adk 2.13) checks staleness by timestamp alone, "
    "with a message of its own"
)
_SQLITE_NO_DEDUP = "SqliteSessionService refuses a re-delivered event id (IntegrityError)"
_APPEND_ORDER = (
    "events come back in append order, as InMemorySessionService keeps them, not sorted by "
    "(timestamp, id) as ADK's SQL services sort them (docs/adk.md, Limits)"
)
_NEWER = "upstream test is newer than google-adk 2.13 (padded session ids are not trimmed)"
_FILE_NO_REFS = "FileArtifactService (google-adk 2.13) keeps no file_data: no artifact:// refs"
DIVERGENCES: dict[str, Mapping[str, str]] = {
    "test_append_event_to_stale_session": {"sqlite": _SQLITE_STALE},
    "test_append_event_concurrent_stale_sessions_reject_stale_writer": {
        "sqlite": "SqliteSessionService has no per-session lock: both concurrent writers win",
    },
    "test_append_event_allows_timestamp_drift_for_current_session": {"sqlite": _SQLITE_STALE},
    "test_append_event_allows_markerless_current_session": {"sqlite": _SQLITE_STALE},
    "test_get_session_orders_tied_timestamps_by_id[sqlite-True]": {
        "sqlite": "upstream test is newer than google-adk 2.13's SqliteSessionService",
    },
    "test_append_event_is_idempotent_for_same_event_id": {"sqlite": _SQLITE_NO_DEDUP},
    "test_append_different_events_not_deduplicated": {"sqlite": _SQLITE_NO_DEDUP},
    # Artifacts (backend names prefixed "artifact:").
    "test_padded_session_id_lands_in_same_namespace_as_trimmed": {
        "artifact:in_memory": _NEWER,
        "artifact:file": _NEWER,
    },
    "test_artifact_reference_allows_padded_session_id_at_call_site": {
        "artifact:in_memory": _NEWER,
        "artifact:file": _FILE_NO_REFS,
    },
    "test_loads_nested_artifact_reference": {"artifact:file": _FILE_NO_REFS},
    "test_artifact_reference_allows_same_session_scope": {"artifact:file": _FILE_NO_REFS},
    "test_artifact_reference_allows_same_user_user_scope": {"artifact:file": _FILE_NO_REFS},
    "test_artifact_reference_rejects_cross_user_on_save": {"artifact:file": _FILE_NO_REFS},
    "test_artifact_reference_rejects_cross_app_on_save": {"artifact:file": _FILE_NO_REFS},
    "test_save_artifact_rejects_inline_data_without_data": {
        "artifact:in_memory": "InMemoryArtifactService (google-adk 2.13) stores Blob(data=None)",
    },
}
for _store in SATCHEL_STORES:
    DIVERGENCES[f"test_get_session_orders_tied_timestamps_by_id[satchel_{_store}-True]"] = {
        f"satchel_{_store}": _APPEND_ORDER
    }


def mark_divergence(request: pytest.FixtureRequest, backend: str) -> None:
    """Mark the requesting test xfail (strict) if ``backend`` differs from it on purpose."""
    for name in (request.node.name, getattr(request.node, "originalname", None)):
        reason = DIVERGENCES.get(name or "", {}).get(backend)
        if reason is not None:
            request.node.add_marker(pytest.mark.xfail(strict=True, reason=reason))
            return


@contextlib.asynccontextmanager
async def open_session_service(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> AsyncIterator[Any]:
    """The session service ``backend`` names, on ``tmp_path``, with its divergences marked."""
    mark_divergence(request, backend)
    async with SESSION_BACKENDS[backend](tmp_path) as service:
        yield service


@contextlib.asynccontextmanager
async def open_artifact_service(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> AsyncIterator[Any]:
    """The artifact service ``backend`` names, on ``tmp_path``, with its divergences marked."""
    mark_divergence(request, "artifact:" + backend)
    async with ARTIFACT_BACKENDS[backend](tmp_path) as service:
        yield service
