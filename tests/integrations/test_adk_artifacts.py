# Ported from google/adk-python, tests/unittests/artifacts/test_artifact_service.py at commit
# 0247102c4ae5e2d68cff8b211ec20d0014bfa267.
# Copyright 2026 Google LLC. Licensed under the Apache License, Version 2.0
# (http://www.apache.org/licenses/LICENSE-2.0); this file is a modified version.
#
# Changes from upstream, and only these:
# - `@pytest.mark.asyncio` -> module-level `pytest.mark.anyio`, on asyncio only (ADK is
#   asyncio-only);
# - `service_type` parametrization + `artifact_service_factory` -> this module's
#   `artifact_service` fixture, parametrized over adk_support.ARTIFACT_BACKENDS (ADK's
#   InMemoryArtifactService and FileArtifactService, satchel's on its memory and rocksdb
#   stores). The GCS backend (a mock of google-cloud-storage, not installed by google-adk) is
#   dropped, with the GCS-only tests;
# - tests upstream pinned to some backends but stating caller-visible behaviour (artifact
#   references, per-app isolation, empty inline data, version metadata) run on every backend,
#   with the layout-specific checks (canonical URIs) kept for the backend they were written for
#   and divergences recorded in adk_support.DIVERGENCES (keys "artifact:<backend>");
# - upstream's pair test_save_artifact_rejects_reserved_user_as_session_id (IN_MEMORY, GCS) /
#   test_file_allows_reserved_user_as_session_id (FILE) is one test with a per-backend
#   expectation (RESERVED_USER_SESSION_REJECTED);
# - not ported: FileArtifactService on-disk layout and legacy-layout tests, its staging and
#   concurrency internals, GCS, TestEnsurePart (a helper, not a service), and
#   test_artifact_reference_rejects_cross_session_on_load (it edits a backend's private store);
# - a one-sentence docstring on each test; 4-space indentation (ruff format).
"""ADK's own artifact service tests, on satchel's SatchelArtifactService and ADK's references."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from google.adk.artifacts.base_artifact_service import ArtifactVersion
from google.adk.errors.input_validation_error import InputValidationError
from google.genai import types

from .adk_support import ADK_WARNINGS, ARTIFACT_BACKENDS, open_artifact_service

pytestmark = [pytest.mark.anyio, *ADK_WARNINGS]


@pytest.fixture
def anyio_backend() -> str:
    """ADK runs on asyncio only, so these tests do too."""
    return "asyncio"


@pytest.fixture(params=sorted(ARTIFACT_BACKENDS))
def artifact_backend(request: pytest.FixtureRequest) -> str:
    """The name of the artifact backend under test (some upstream checks are per-backend)."""
    return str(request.param)


@pytest.fixture
async def artifact_service(
    request: pytest.FixtureRequest, artifact_backend: str, tmp_path: Path
) -> AsyncIterator[Any]:
    """Each artifact service: ADK's references and satchel's."""
    async with open_artifact_service(request, artifact_backend, tmp_path) as service:
        yield service


# Define a fixed datetime object to be returned by datetime.now()
FIXED_DATETIME = datetime(2025, 1, 1, 12, 0, 0)

# Backends that lay session- and user-scoped artifacts out in one flat namespace and so
# refuse a session named "user" on save (upstream: IN_MEMORY and GCS; FILE allows it).
RESERVED_USER_SESSION_REJECTED = {"in_memory"}


async def test_load_empty(artifact_service):
    """Tests loading an artifact when none exists."""
    assert not await artifact_service.load_artifact(
        app_name="test_app",
        user_id="test_user",
        session_id="session_id",
        filename="filename",
    )


async def test_save_load_delete(artifact_service):
    """Tests saving, loading, and deleting an artifact."""
    artifact = types.Part.from_bytes(data=b"test_data", mime_type="text/plain")
    app_name = "app0"
    user_id = "user0"
    session_id = "123"
    filename = "file456"

    await artifact_service.save_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename=filename,
        artifact=artifact,
    )
    assert (
        await artifact_service.load_artifact(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            filename=filename,
        )
        == artifact
    )

    # Attempt to load a version that doesn't exist
    assert not await artifact_service.load_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename=filename,
        version=3,
    )

    await artifact_service.delete_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename=filename,
    )
    assert not await artifact_service.load_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename=filename,
    )


@pytest.mark.parametrize("session_id", ["user", "user/x", "user\\x"])
async def test_reserved_user_as_session_id(artifact_service, artifact_backend, session_id):
    """Upstream test_save_artifact_rejects_reserved_user_as_session_id (IN_MEMORY, GCS:
    flat layouts reserve the segment "user") and test_file_allows_reserved_user_as_session_id
    (FILE: session artifacts live in their own subtree, so the name cannot collide)."""
    if artifact_backend in RESERVED_USER_SESSION_REJECTED:
        with pytest.raises(InputValidationError, match="reserved value 'user'"):
            await artifact_service.save_artifact(
                app_name="app0",
                user_id="user0",
                session_id=session_id,
                filename="report.txt",
                artifact=types.Part(text="hello"),
            )
        return

    await artifact_service.save_artifact(
        app_name="app0",
        user_id="user0",
        session_id=session_id,
        filename="report.txt",
        artifact=types.Part(text="hello"),
    )
    loaded = await artifact_service.load_artifact(
        app_name="app0",
        user_id="user0",
        session_id=session_id,
        filename="report.txt",
    )
    assert loaded == types.Part(text="hello")


async def test_padded_session_id_lands_in_same_namespace_as_trimmed(artifact_service):
    """An artifact saved against a whitespace-padded session id must be
    reachable, listable, and deletable using the trimmed id, since that is the
    id the corresponding session is actually stored under (session services
    normalize session_id the same way)."""
    artifact = types.Part(text="hello")

    await artifact_service.save_artifact(
        app_name="app0",
        user_id="user0",
        session_id="sess0\n",
        filename="report.txt",
        artifact=artifact,
    )

    # Reachable under the trimmed id, the one the session itself is keyed on.
    assert (
        await artifact_service.load_artifact(
            app_name="app0",
            user_id="user0",
            session_id="sess0",
            filename="report.txt",
        )
        == artifact
    )
    assert "report.txt" in await artifact_service.list_artifact_keys(
        app_name="app0", user_id="user0", session_id="sess0"
    )

    # Also reachable under the original padded id.
    assert (
        await artifact_service.load_artifact(
            app_name="app0",
            user_id="user0",
            session_id="sess0\n",
            filename="report.txt",
        )
        == artifact
    )

    await artifact_service.delete_artifact(
        app_name="app0",
        user_id="user0",
        session_id="sess0",
        filename="report.txt",
    )
    assert not await artifact_service.load_artifact(
        app_name="app0",
        user_id="user0",
        session_id="sess0\n",
        filename="report.txt",
    )


async def test_artifact_reference_allows_padded_session_id_at_call_site(artifact_service):
    """A caller that consistently uses a padded session id must still be able
    to save and resolve an artifact reference within that session."""
    await artifact_service.save_artifact(
        app_name="app0",
        user_id="user0",
        session_id="sess0\n",
        filename="source.txt",
        artifact=types.Part(text="hello"),
    )

    ref = types.Part(
        file_data=types.FileData(
            file_uri=(
                "artifact://apps/app0/users/user0/sessions/sess0/artifacts/source.txt/versions/0"
            ),
            mime_type="text/plain",
        )
    )
    await artifact_service.save_artifact(
        app_name="app0",
        user_id="user0",
        session_id="sess0\n",
        filename="ref.txt",
        artifact=ref,
    )

    loaded = await artifact_service.load_artifact(
        app_name="app0",
        user_id="user0",
        session_id="sess0\n",
        filename="ref.txt",
    )
    assert loaded == types.Part(text="hello")


@pytest.mark.parametrize("session_id", ["user", "user/x", "user\\x"])
async def test_read_and_delete_paths_allow_reserved_user_as_session_id(
    artifact_service, session_id
):
    """Reads and deletes must remain permissive for session IDs named "user" or
    starting with "user/"."""
    assert (
        await artifact_service.list_artifact_keys(
            app_name="app0", user_id="user0", session_id=session_id
        )
        == []
    )
    assert (
        await artifact_service.load_artifact(
            app_name="app0",
            user_id="user0",
            session_id=session_id,
            filename="report.txt",
        )
        is None
    )
    assert (
        await artifact_service.list_versions(
            app_name="app0",
            user_id="user0",
            session_id=session_id,
            filename="report.txt",
        )
        == []
    )
    await artifact_service.delete_artifact(
        app_name="app0",
        user_id="user0",
        session_id=session_id,
        filename="report.txt",
    )


async def test_loads_nested_artifact_reference(artifact_service):
    """Upstream test_in_memory_loads_nested_artifact_reference: loading an artifact
    reference whose target name is nested."""
    app_name = "app0"
    user_id = "user0"
    session_id = "123"
    target_filename = "folder/file456"
    target_artifact = types.Part.from_text(text="target")

    await artifact_service.save_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename=target_filename,
        artifact=target_artifact,
    )
    await artifact_service.save_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename="reference",
        artifact=types.Part(
            file_data=types.FileData(
                file_uri=(
                    "artifact://apps/app0/users/user0/sessions/123/artifacts/"
                    "folder/file456/versions/0"
                ),
                mime_type="text/plain",
            )
        ),
    )

    assert (
        await artifact_service.load_artifact(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            filename="reference",
        )
        == target_artifact
    )


async def test_list_keys(artifact_service):
    """Tests listing keys in the artifact service."""
    artifact = types.Part.from_bytes(data=b"test_data", mime_type="text/plain")
    app_name = "app0"
    user_id = "user0"
    session_id = "123"
    filename = "filename"
    filenames = [filename + str(i) for i in range(5)]

    for f in filenames:
        await artifact_service.save_artifact(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            filename=f,
            artifact=artifact,
        )

    assert (
        await artifact_service.list_artifact_keys(
            app_name=app_name, user_id=user_id, session_id=session_id
        )
        == filenames
    )


async def test_list_versions(artifact_service):
    """Tests listing versions of an artifact."""
    app_name = "app0"
    user_id = "user0"
    session_id = "123"
    filename = "with/slash/filename"
    versions = [
        types.Part.from_bytes(data=i.to_bytes(2, byteorder="big"), mime_type="text/plain")
        for i in range(3)
    ]
    versions.append(types.Part.from_text(text="hello"))

    for i in range(4):
        await artifact_service.save_artifact(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            filename=filename,
            artifact=versions[i],
        )

    response_versions = await artifact_service.list_versions(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename=filename,
    )

    assert response_versions == list(range(4))


async def test_nested_artifact_does_not_leak_versions_into_parent(artifact_service):
    """A nested artifact must not contribute versions to its parent."""
    app_name = "app0"
    user_id = "user0"
    session_id = "123"
    parent = types.Part.from_text(text="parent v0")

    await artifact_service.save_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename="doc",
        artifact=parent,
    )
    for i in range(3):
        await artifact_service.save_artifact(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            filename="doc/nested",
            artifact=types.Part.from_text(text=f"nested v{i}"),
        )

    assert await artifact_service.list_versions(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename="doc",
    ) == [0]

    assert (
        await artifact_service.load_artifact(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            filename="doc",
        )
        == parent
    )

    # The next version of "doc" must be 1, not 3.
    assert (
        await artifact_service.save_artifact(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            filename="doc",
            artifact=types.Part.from_text(text="parent v1"),
        )
        == 1
    )

    # The nested artifact is unaffected.
    assert await artifact_service.list_versions(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename="doc/nested",
    ) == [0, 1, 2]


async def test_list_artifact_versions_excludes_nested_artifact(artifact_service):
    """Version metadata of a nested artifact must not surface under its parent."""
    app_name = "app0"
    user_id = "user0"
    session_id = "123"

    for filename in ("doc", "doc/nested"):
        await artifact_service.save_artifact(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            filename=filename,
            artifact=types.Part.from_text(text=filename),
        )

    versions = await artifact_service.list_artifact_versions(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename="doc",
    )

    assert [v.version for v in versions] == [0]


async def test_delete_artifact_keeps_nested_artifact(artifact_service):
    """Deleting an artifact must not disturb artifacts nested under it."""
    app_name = "app0"
    user_id = "user0"
    session_id = "123"
    nested = types.Part.from_text(text="nested v0")

    await artifact_service.save_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename="doc",
        artifact=types.Part.from_text(text="parent v0"),
    )
    await artifact_service.save_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename="doc/nested",
        artifact=nested,
    )

    await artifact_service.delete_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename="doc",
    )

    assert not await artifact_service.list_versions(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename="doc",
    )
    assert (
        await artifact_service.load_artifact(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            filename="doc/nested",
        )
        == nested
    )


async def test_list_keys_includes_nested_artifact(artifact_service):
    """An artifact nested under another artifact must still be listed."""
    app_name = "app0"
    user_id = "user0"
    session_id = "123"

    for filename in ("doc", "doc/nested"):
        await artifact_service.save_artifact(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            filename=filename,
            artifact=types.Part.from_text(text=filename),
        )

    assert await artifact_service.list_artifact_keys(
        app_name=app_name, user_id=user_id, session_id=session_id
    ) == ["doc", "doc/nested"]


async def test_list_keys_preserves_user_prefix(artifact_service):
    """Tests that list_artifact_keys preserves 'user:' prefix in returned names."""
    artifact = types.Part.from_bytes(data=b"test_data", mime_type="text/plain")
    app_name = "app0"
    user_id = "user0"
    session_id = "123"

    await artifact_service.save_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename="user:document.pdf",
        artifact=artifact,
    )

    await artifact_service.save_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename="user:image.png",
        artifact=artifact,
    )

    await artifact_service.save_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename="session_file.txt",
        artifact=artifact,
    )

    artifact_keys = await artifact_service.list_artifact_keys(
        app_name=app_name, user_id=user_id, session_id=session_id
    )

    expected_keys = ["user:document.pdf", "user:image.png", "session_file.txt"]
    assert sorted(artifact_keys) == sorted(expected_keys)


def _expected_uri(artifact_backend, actual, in_memory_uri):
    # Upstream checks the in-memory (and GCS) URI layout exactly; other backends only
    # owe a URI of their own.
    return in_memory_uri if artifact_backend == "in_memory" else actual


async def test_list_artifact_versions_and_get_artifact_version(artifact_service, artifact_backend):
    """Tests listing artifact versions and getting a specific version."""
    app_name = "app0"
    user_id = "user0"
    session_id = "123"
    filename = "filename"
    versions = [
        types.Part.from_bytes(data=i.to_bytes(2, byteorder="big"), mime_type="text/plain")
        for i in range(4)
    ]

    with patch("google.adk.artifacts.base_artifact_service.platform_time") as mock_platform_time:
        mock_platform_time.get_time.return_value = FIXED_DATETIME.timestamp()

        for i in range(4):
            custom_metadata = {"key": "value" + str(i)}
            await artifact_service.save_artifact(
                app_name=app_name,
                user_id=user_id,
                session_id=session_id,
                filename=filename,
                artifact=versions[i],
                custom_metadata=custom_metadata,
            )

        artifact_versions = await artifact_service.list_artifact_versions(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            filename=filename,
        )

        expected_artifact_versions = []
        for i in range(4):
            metadata = {"key": "value" + str(i)}
            uri = _expected_uri(
                artifact_backend,
                artifact_versions[i].canonical_uri,
                f"memory://apps/{app_name}/users/{user_id}/sessions/{session_id}/artifacts/{filename}/versions/{i}",
            )
            expected_artifact_versions.append(
                ArtifactVersion(
                    version=i,
                    canonical_uri=uri,
                    custom_metadata=metadata,
                    mime_type="text/plain",
                    create_time=FIXED_DATETIME.timestamp(),
                )
            )
        assert artifact_versions == expected_artifact_versions

        # Get latest artifact version when version is not specified
        assert (
            await artifact_service.get_artifact_version(
                app_name=app_name,
                user_id=user_id,
                session_id=session_id,
                filename=filename,
            )
            == expected_artifact_versions[-1]
        )

        # Get artifact version by version number
        assert (
            await artifact_service.get_artifact_version(
                app_name=app_name,
                user_id=user_id,
                session_id=session_id,
                filename=filename,
                version=2,
            )
            == expected_artifact_versions[2]
        )


async def test_list_artifact_versions_with_user_prefix(artifact_service, artifact_backend):
    """Tests listing artifact versions with user prefix."""
    app_name = "app0"
    user_id = "user0"
    session_id = "123"
    user_scoped_filename = "user:document.pdf"
    versions = [
        types.Part.from_bytes(data=i.to_bytes(2, byteorder="big"), mime_type="text/plain")
        for i in range(4)
    ]

    with patch("google.adk.artifacts.base_artifact_service.platform_time") as mock_platform_time:
        mock_platform_time.get_time.return_value = FIXED_DATETIME.timestamp()

        for i in range(4):
            custom_metadata = {"key": "value" + str(i)}
            await artifact_service.save_artifact(
                app_name=app_name,
                user_id=user_id,
                session_id=session_id,
                filename=user_scoped_filename,
                artifact=versions[i],
                custom_metadata=custom_metadata,
            )

        artifact_versions = await artifact_service.list_artifact_versions(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            filename=user_scoped_filename,
        )

        expected_artifact_versions = []
        for i in range(4):
            metadata = {"key": "value" + str(i)}
            uri = _expected_uri(
                artifact_backend,
                artifact_versions[i].canonical_uri,
                f"memory://apps/{app_name}/users/{user_id}/artifacts/{user_scoped_filename}/versions/{i}",
            )
            expected_artifact_versions.append(
                ArtifactVersion(
                    version=i,
                    canonical_uri=uri,
                    custom_metadata=metadata,
                    mime_type="text/plain",
                    create_time=FIXED_DATETIME.timestamp(),
                )
            )
        assert artifact_versions == expected_artifact_versions


async def test_get_artifact_version_artifact_does_not_exist(artifact_service):
    """Tests getting an artifact version when artifact does not exist."""
    assert not await artifact_service.get_artifact_version(
        app_name="test_app",
        user_id="test_user",
        session_id="session_id",
        filename="filename",
    )


async def test_get_artifact_version_out_of_index(artifact_service):
    """Tests loading an artifact with an out-of-index version."""
    app_name = "app0"
    user_id = "user0"
    session_id = "123"
    filename = "filename"
    artifact = types.Part.from_bytes(data=b"test_data", mime_type="text/plain")

    await artifact_service.save_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename=filename,
        artifact=artifact,
    )

    # Attempt to get a version that doesn't exist
    assert not await artifact_service.get_artifact_version(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename=filename,
        version=3,
    )


@pytest.mark.parametrize(
    ("filename", "session_id"), [("report.txt", "session"), ("user:profile.txt", None)]
)
async def test_artifacts_are_isolated_by_app(artifact_service, filename, session_id):
    """Upstream test_file_artifacts_are_isolated_by_app: every artifact operation
    stays within its application."""
    service = artifact_service
    scope = {
        "user_id": "user",
        "session_id": session_id,
        "filename": filename,
    }

    assert (
        await service.save_artifact(app_name="app-a", artifact=types.Part(text="secret-a"), **scope)
        == 0
    )

    assert await service.load_artifact(app_name="app-b", **scope) is None
    assert (
        await service.list_artifact_keys(
            app_name="app-b",
            user_id="user",
            session_id=session_id,
        )
        == []
    )
    assert await service.list_versions(app_name="app-b", **scope) == []
    assert await service.list_artifact_versions(app_name="app-b", **scope) == []
    assert await service.get_artifact_version(app_name="app-b", **scope) is None

    assert (
        await service.save_artifact(app_name="app-b", artifact=types.Part(text="secret-b"), **scope)
        == 0
    )
    assert await service.load_artifact(app_name="app-a", **scope) == types.Part(text="secret-a")

    await service.delete_artifact(app_name="app-b", **scope)
    assert await service.load_artifact(app_name="app-b", **scope) is None
    assert await service.load_artifact(app_name="app-a", **scope) == types.Part(text="secret-a")


INVALID_PATH_SEGMENT_CASES = (
    ("../escape", "must not contain traversal segments"),
    ("../../etc", "must not contain traversal segments"),
    ("foo/../../bar", "must not contain traversal segments"),
    ("..", "must not contain traversal segments"),
    (".", "must not contain traversal segments"),
    ("null\x00byte", "must not contain null bytes"),
    ("", "must not be empty"),
    ("/etc/passwd", "must not be an absolute path or start with a slash"),
    ("/leading/slash", "must not be an absolute path or start with a slash"),
    (
        "\\leading\\backslash",
        "must not be an absolute path or start with a slash",
    ),
    (r"C:\absolute", "must not be drive-qualified"),
    ("C:/absolute", "must not be drive-qualified"),
    ("C:drive-relative", "must not be drive-qualified"),
    ("victim/sessions/s1", "must not contain reserved path segments"),
    ("victim/artifacts", "must not contain reserved path segments"),
    ("victim/apps", "must not contain reserved path segments"),
    ("victim/users", "must not contain reserved path segments"),
    ("victim/versions", "must not contain reserved path segments"),
)


@pytest.mark.parametrize("user_id", ["group/user123", "mdbuser/username"])
async def test_save_and_load_namespaced_user_id_succeeds(artifact_service, user_id):
    """ArtifactService implementations permit namespaced user IDs."""
    service = artifact_service
    artifact = types.Part.from_bytes(data=b"data", mime_type="text/plain")
    app_name = "projects/123/locations/us-central1/reasoningEngines/456"
    await service.save_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id="sess123",
        filename="safe.txt",
        artifact=artifact,
    )
    loaded = await service.load_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id="sess123",
        filename="safe.txt",
    )
    assert loaded.inline_data.data == b"data"


@pytest.mark.parametrize(("app_name", "match"), INVALID_PATH_SEGMENT_CASES)
async def test_save_artifact_rejects_traversal_in_app_name(artifact_service, app_name, match):
    """Artifact services reject app names that escape their storage scope."""
    artifact = types.Part.from_bytes(data=b"data", mime_type="text/plain")
    with pytest.raises(InputValidationError, match=match):
        await artifact_service.save_artifact(
            app_name=app_name,
            user_id="user123",
            filename="user:safe.txt",
            artifact=artifact,
        )


@pytest.mark.parametrize(("user_id", "match"), INVALID_PATH_SEGMENT_CASES)
async def test_save_artifact_rejects_traversal_in_user_id(artifact_service, user_id, match):
    """ArtifactService implementations reject user_id values that escape directory."""
    artifact = types.Part.from_bytes(data=b"data", mime_type="text/plain")
    with pytest.raises(InputValidationError, match=match):
        await artifact_service.save_artifact(
            app_name="myapp",
            user_id=user_id,
            filename="user:safe.txt",
            artifact=artifact,
        )


@pytest.mark.parametrize(("session_id", "match"), INVALID_PATH_SEGMENT_CASES)
async def test_save_artifact_rejects_traversal_in_session_id(artifact_service, session_id, match):
    """ArtifactService implementations reject session_id values that escape directory."""
    artifact = types.Part.from_bytes(data=b"data", mime_type="text/plain")
    with pytest.raises(InputValidationError, match=match):
        await artifact_service.save_artifact(
            app_name="myapp",
            user_id="user123",
            session_id=session_id,
            filename="safe.txt",
            artifact=artifact,
        )


@pytest.mark.parametrize(("app_name", "match"), INVALID_PATH_SEGMENT_CASES)
async def test_load_artifact_rejects_traversal_in_app_name(artifact_service, app_name, match):
    """Artifact services reject app names that escape their storage scope."""
    with pytest.raises(InputValidationError, match=match):
        await artifact_service.load_artifact(
            app_name=app_name,
            user_id="user123",
            filename="user:safe.txt",
        )


@pytest.mark.parametrize(("user_id", "match"), INVALID_PATH_SEGMENT_CASES)
async def test_load_artifact_rejects_traversal_in_user_id(artifact_service, user_id, match):
    """ArtifactService implementations reject user_id values that escape directory."""
    with pytest.raises(InputValidationError, match=match):
        await artifact_service.load_artifact(
            app_name="myapp",
            user_id=user_id,
            filename="user:safe.txt",
        )


@pytest.mark.parametrize(("session_id", "match"), INVALID_PATH_SEGMENT_CASES)
async def test_load_artifact_rejects_traversal_in_session_id(artifact_service, session_id, match):
    """ArtifactService implementations reject session_id values that escape directory."""
    with pytest.raises(InputValidationError, match=match):
        await artifact_service.load_artifact(
            app_name="myapp",
            user_id="user123",
            session_id=session_id,
            filename="safe.txt",
        )


@pytest.mark.parametrize(("app_name", "match"), INVALID_PATH_SEGMENT_CASES)
async def test_delete_artifact_rejects_traversal_in_app_name(artifact_service, app_name, match):
    """Artifact services reject app names that escape their storage scope."""
    with pytest.raises(InputValidationError, match=match):
        await artifact_service.delete_artifact(
            app_name=app_name,
            user_id="user123",
            filename="user:safe.txt",
        )


@pytest.mark.parametrize(("user_id", "match"), INVALID_PATH_SEGMENT_CASES)
async def test_delete_artifact_rejects_traversal_in_user_id(artifact_service, user_id, match):
    """ArtifactService implementations reject user_id values that escape directory."""
    with pytest.raises(InputValidationError, match=match):
        await artifact_service.delete_artifact(
            app_name="myapp",
            user_id=user_id,
            filename="user:safe.txt",
        )


@pytest.mark.parametrize(("session_id", "match"), INVALID_PATH_SEGMENT_CASES)
async def test_delete_artifact_rejects_traversal_in_session_id(artifact_service, session_id, match):
    """ArtifactService implementations reject session_id values that escape directory."""
    with pytest.raises(InputValidationError, match=match):
        await artifact_service.delete_artifact(
            app_name="myapp",
            user_id="user123",
            session_id=session_id,
            filename="safe.txt",
        )


@pytest.mark.parametrize(("app_name", "match"), INVALID_PATH_SEGMENT_CASES)
async def test_list_artifact_keys_rejects_traversal_in_app_name(artifact_service, app_name, match):
    """Artifact services reject app names that escape their storage scope."""
    with pytest.raises(InputValidationError, match=match):
        await artifact_service.list_artifact_keys(
            app_name=app_name,
            user_id="user123",
        )


@pytest.mark.parametrize(("user_id", "match"), INVALID_PATH_SEGMENT_CASES)
async def test_list_artifact_keys_rejects_traversal_in_user_id(artifact_service, user_id, match):
    """ArtifactService implementations reject user_id values that escape directory."""
    with pytest.raises(InputValidationError, match=match):
        await artifact_service.list_artifact_keys(
            app_name="myapp",
            user_id=user_id,
        )


@pytest.mark.parametrize(("session_id", "match"), INVALID_PATH_SEGMENT_CASES)
async def test_list_artifact_keys_rejects_traversal_in_session_id(
    artifact_service, session_id, match
):
    """ArtifactService implementations reject session_id values that escape directory."""
    with pytest.raises(InputValidationError, match=match):
        await artifact_service.list_artifact_keys(
            app_name="myapp",
            user_id="user123",
            session_id=session_id,
        )


async def test_artifact_reference_allows_same_session_scope(artifact_service):
    """ArtifactService allows references inside the same session scope."""
    await artifact_service.save_artifact(
        app_name="app0",
        user_id="user0",
        session_id="sess0",
        filename="source.txt",
        artifact=types.Part(text="hello"),
    )

    ref = types.Part(
        file_data=types.FileData(
            file_uri=(
                "artifact://apps/app0/users/user0/sessions/sess0/artifacts/source.txt/versions/0"
            ),
            mime_type="text/plain",
        )
    )
    await artifact_service.save_artifact(
        app_name="app0",
        user_id="user0",
        session_id="sess0",
        filename="ref.txt",
        artifact=ref,
    )

    loaded = await artifact_service.load_artifact(
        app_name="app0",
        user_id="user0",
        session_id="sess0",
        filename="ref.txt",
    )
    assert loaded == types.Part(text="hello")


async def test_artifact_reference_allows_same_user_user_scope(artifact_service):
    """ArtifactService allows references to user-scoped files from same user."""
    await artifact_service.save_artifact(
        app_name="app0",
        user_id="user0",
        session_id="sess0",
        filename="user:profile.txt",
        artifact=types.Part(text="profile"),
    )

    ref = types.Part(
        file_data=types.FileData(
            file_uri=("artifact://apps/app0/users/user0/artifacts/user:profile.txt/versions/0"),
            mime_type="text/plain",
        )
    )
    await artifact_service.save_artifact(
        app_name="app0",
        user_id="user0",
        session_id="sess1",
        filename="ref.txt",
        artifact=ref,
    )

    loaded = await artifact_service.load_artifact(
        app_name="app0",
        user_id="user0",
        session_id="sess1",
        filename="ref.txt",
    )
    assert loaded == types.Part(text="profile")


async def test_artifact_reference_rejects_cross_user_on_save(artifact_service):
    """ArtifactService rejects references to different users on save."""
    await artifact_service.save_artifact(
        app_name="app0",
        user_id="victim",
        session_id="victim-sess",
        filename="user:secret.txt",
        artifact=types.Part(text="secret"),
    )

    ref = types.Part(
        file_data=types.FileData(
            file_uri=("artifact://apps/app0/users/victim/artifacts/user:secret.txt/versions/0"),
            mime_type="text/plain",
        )
    )
    with pytest.raises(InputValidationError, match="same app and user scope"):
        await artifact_service.save_artifact(
            app_name="app0",
            user_id="attacker",
            session_id="attacker-sess",
            filename="ref.txt",
            artifact=ref,
        )


async def test_artifact_reference_rejects_cross_app_on_save(artifact_service):
    """ArtifactService rejects references to different apps on save."""
    await artifact_service.save_artifact(
        app_name="victim-app",
        user_id="user0",
        session_id="sess0",
        filename="user:secret.txt",
        artifact=types.Part(text="secret"),
    )

    ref = types.Part(
        file_data=types.FileData(
            file_uri=(
                "artifact://apps/victim-app/users/user0/artifacts/user:secret.txt/versions/0"
            ),
            mime_type="text/plain",
        )
    )
    with pytest.raises(InputValidationError, match="same app and user scope"):
        await artifact_service.save_artifact(
            app_name="attacker-app",
            user_id="user0",
            session_id="sess0",
            filename="ref.txt",
            artifact=ref,
        )


async def test_save_artifact_with_camel_case_dict(artifact_service):
    """Artifact services accept camelCase dicts (Agentspace format)."""
    app_name = "app0"
    user_id = "user0"
    session_id = "sess0"
    filename = "uploaded.png"

    raw_artifact = {
        "inlineData": {
            "mimeType": "image/png",
            "data": "dGVzdF9pbWFnZV9kYXRh",
        }
    }

    version = await artifact_service.save_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename=filename,
        artifact=raw_artifact,
    )
    assert version == 0

    loaded = await artifact_service.load_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename=filename,
    )
    assert loaded is not None
    assert loaded.inline_data is not None
    assert loaded.inline_data.mime_type == "image/png"


async def test_save_artifact_with_snake_case_dict(artifact_service):
    """Artifact services accept snake_case dicts."""
    app_name = "app0"
    user_id = "user0"
    session_id = "sess0"
    filename = "uploaded.txt"

    raw_artifact = {
        "inline_data": {
            "mime_type": "text/plain",
            "data": "aGVsbG8=",
        }
    }

    version = await artifact_service.save_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename=filename,
        artifact=raw_artifact,
    )
    assert version == 0

    loaded = await artifact_service.load_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename=filename,
    )
    assert loaded is not None
    assert loaded.inline_data is not None
    assert loaded.inline_data.mime_type == "text/plain"


async def test_load_artifact_preserves_inline_data_display_name(artifact_service):
    """Binary artifact load restores inline_data.display_name after save."""
    app_name = "app0"
    user_id = "user0"
    session_id = "sess0"
    filename = "artifact.bin"
    display_name = "My Report (final).png"
    artifact = types.Part(
        inline_data=types.Blob(
            mime_type="image/png",
            data=b"\x89PNG\r\n\x1a\n",
            display_name=display_name,
        )
    )

    await artifact_service.save_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename=filename,
        artifact=artifact,
    )
    loaded = await artifact_service.load_artifact(
        app_name=app_name,
        user_id=user_id,
        session_id=session_id,
        filename=filename,
    )

    assert loaded is not None
    assert loaded.inline_data is not None
    assert loaded.inline_data.display_name == display_name


@pytest.mark.parametrize("text_content", ['{"key": "value"}', "some other text"])
async def test_save_load_text_artifact(artifact_service, text_content):
    """Tests that text artifacts retain .text after round-trip save/load."""
    artifact = types.Part.from_text(text=text_content)

    await artifact_service.save_artifact(
        app_name="app0",
        user_id="user0",
        session_id="123",
        filename="data.json",
        artifact=artifact,
    )
    loaded = await artifact_service.load_artifact(
        app_name="app0",
        user_id="user0",
        session_id="123",
        filename="data.json",
    )
    assert loaded is not None
    assert loaded.text == text_content
    assert loaded.inline_data is None


@pytest.mark.parametrize("filename", ["empty.txt", "user:empty.txt"])
@pytest.mark.parametrize("version", [None, 0])
async def test_save_load_empty_text_artifact(artifact_service, filename, version):
    """Tests that empty text artifacts survive round-trip save/load."""
    artifact = types.Part.from_text(text="")

    await artifact_service.save_artifact(
        app_name="app0",
        user_id="user0",
        session_id="123",
        filename=filename,
        artifact=artifact,
    )
    loaded = await artifact_service.load_artifact(
        app_name="app0",
        user_id="user0",
        session_id="123",
        filename=filename,
        version=version,
    )
    assert loaded is not None
    assert loaded.text == ""
    assert loaded.inline_data is None


@pytest.mark.parametrize("filename", ["empty.bin", "user:empty.bin"])
@pytest.mark.parametrize("version", [None, 0])
async def test_save_load_empty_bytes_artifact(artifact_service, filename, version):
    """Tests that empty bytes artifacts survive round-trip save/load."""
    artifact = types.Part.from_bytes(data=b"", mime_type="application/pdf")

    await artifact_service.save_artifact(
        app_name="app0",
        user_id="user0",
        session_id="123",
        filename=filename,
        artifact=artifact,
    )
    loaded = await artifact_service.load_artifact(
        app_name="app0",
        user_id="user0",
        session_id="123",
        filename=filename,
        version=version,
    )
    assert loaded is not None
    assert loaded.inline_data is not None
    assert loaded.inline_data.data == b""


async def test_save_artifact_rejects_inline_data_without_data(artifact_service):
    """Upstream on FileArtifactService: `inline_data` with no data is malformed and
    must not store an empty file."""
    with pytest.raises(InputValidationError):
        await artifact_service.save_artifact(
            app_name="app",
            user_id="user",
            session_id="session",
            filename="img.png",
            artifact=types.Part(inline_data=types.Blob(mime_type="image/png", data=None)),
        )


async def test_save_artifact_allows_explicitly_empty_inline_data(artifact_service):
    """Upstream on FileArtifactService: an explicitly empty payload stays valid and
    round-trips."""
    await artifact_service.save_artifact(
        app_name="app",
        user_id="user",
        session_id="session",
        filename="empty.png",
        artifact=types.Part(inline_data=types.Blob(mime_type="image/png", data=b"")),
    )

    loaded = await artifact_service.load_artifact(
        app_name="app", user_id="user", session_id="session", filename="empty.png"
    )
    assert loaded is not None
    assert loaded.inline_data is not None
    assert loaded.inline_data.data is not None
    assert not loaded.inline_data.data
