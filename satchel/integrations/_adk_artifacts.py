"""Google ADK's ``BaseArtifactService`` on satchel: ``SatchelArtifactService``.

The artifacts of ADK session (app, user, id) are the artifacts of satchel session
``adk/art/<app>/<user>/<id>``, and the ``user:`` artifacts of (app, user) those of
``adk/art-user/<app>/<user>`` (tag ``adk:artifacts``, created with ``app=`` and ``user=`` on
first save). They are kept apart from the ADK session's own satchel session, as ADK keeps
them: artifacts may be saved for a session id no session service knows, and deleting a
session leaves its artifacts.

A ``Part``'s payload (inline bytes, or text as UTF-8) is the satchel content, so equal
payloads are stored once across every session and user; the rest of the ``Part`` and ADK's
version fields go in the version's metadata (``adk``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import quote, unquote

from google.adk.artifacts import artifact_util
from google.adk.artifacts.base_artifact_service import (
    ArtifactVersion,
    BaseArtifactService,
    ensure_part,
)
from google.adk.errors.input_validation_error import InputValidationError
from google.genai import types

import satchel

from . import _adk_common as common
from ._resume import resuming

if TYPE_CHECKING:
    from satchel.storage import Backend

#: The satchel artifact type of everything saved here.
ARTIFACT_TYPE: Final = "adk_artifact"
_NAME_MAX_BYTES: Final = 255
#: Characters an ADK file name keeps as they are in a satchel artifact name.
_NAME_SAFE: Final = " :!$&'()*+,;=@~-_"
_NOT_FOUND = (satchel.SessionNotFoundError, satchel.ArtifactNotFoundError)
#: The empty part, compared with every part loaded (built once: ~5 µs a load otherwise).
_EMPTY_PART: Final = types.Part()


def artifact_name(filename: str) -> str:
    """The satchel name of an ADK file name: percent-encoded, so ``/``, ``\\``, NUL and a
    leading ``.`` (which satchel names may not hold) round-trip, and ``doc`` and
    ``doc/nested`` stay apart."""
    encoded = quote(filename, safe=_NAME_SAFE)
    if encoded.startswith((".", "art_")):  # a dot file, or a name that looks like an id
        encoded = f"%{ord(encoded[0]):02X}{encoded[1:]}"
    if not encoded or len(encoded.encode()) > _NAME_MAX_BYTES:
        raise InputValidationError(
            f"Artifact filename {filename!r} is empty or too long once encoded "
            f"(satchel takes {_NAME_MAX_BYTES} bytes)."
        )
    return encoded


def adk_filename(name: str) -> str:
    """The ADK file name of a satchel artifact name."""
    return unquote(name)


class SatchelArtifactService(BaseArtifactService):
    """ADK's ``BaseArtifactService`` on a satchel runtime: content is BLAKE3-addressed,
    deduplicated across every session and user, compressed when it pays and verified on read.

    ADK versions count from 0 among the versions alive (a name deleted and saved again starts
    at 0 again, as ADK's own services do); satchel's count from 1 and are never reused, so an
    ADK version is the index of a satchel version among the live ones.
    ``SatchelArtifactService(rt)`` uses an open runtime; ``async with
    SatchelArtifactService.from_path(path) as service:`` opens one of its own.
    """

    def __init__(self, runtime: satchel.Runtime) -> None:
        self._rt = common.async_runtime(runtime, "SatchelArtifactService")

    @classmethod
    def from_path(
        cls, path: str | None = None, *, store: Backend = "rocksdb", **options: Any
    ) -> contextlib.AbstractAsyncContextManager[SatchelArtifactService]:
        """A service on a runtime of its own: ``satchel.open_runtime(path, store=store,
        **options)``, closed when the ``async with`` block ends."""
        return common.standalone(cls, path, store, options)

    @property
    def runtime(self) -> satchel.Runtime:
        """The satchel runtime the service keeps its artifacts in."""
        return self._rt

    # ------------------------------------------------------------------ the API
    async def save_artifact(
        self,
        *,
        app_name: str,
        user_id: str,
        filename: str,
        artifact: types.Part | dict[str, Any],
        session_id: str | None = None,
        custom_metadata: dict[str, Any] | None = None,
    ) -> int:
        """Store ``artifact`` as the next version of ``filename``; that version (from 0)."""
        key, sid = _container(app_name, user_id, filename, session_id)
        part = ensure_part(artifact)
        content, kind, mime_type, shape = _split(part, app_name, user_id, sid)
        name = artifact_name(filename)
        metadata: dict[str, Any] = {
            "adk": {
                "kind": kind,
                "part": shape,
                "mime_type": mime_type,
                "custom_metadata": common.json_safe(custom_metadata or {}),
                # ArtifactVersion's own default, so ADK's clock (and its tests' patches) holds.
                "create_time": ArtifactVersion(version=0, canonical_uri="").create_time,
            }
        }
        if mime_type and "/" in mime_type and mime_type.isprintable():
            metadata["mime_type"] = mime_type
        ref = await self._store(key, name, content, metadata, app_name, user_id)
        if ref.version == 1:
            return 0  # the name's first version ever
        live = await self._versions(key, filename)
        found = next((n for n, info in enumerate(live) if info.id == ref.id), None)
        if found is None:
            # Deleted (with its name) by a delete_artifact that ran while this save did.
            raise ValueError(f"artifact {filename!r} was deleted while it was being saved")
        return found

    async def load_artifact(
        self,
        *,
        app_name: str,
        user_id: str,
        filename: str,
        session_id: str | None = None,
        version: int | None = None,
    ) -> types.Part | None:
        """The version (default the latest) of ``filename``; ``None`` if there is none."""
        depth = artifact_util._MAX_ARTIFACT_REFERENCE_DEPTH
        return await self._load(app_name, user_id, filename, session_id, version, depth)

    async def list_artifact_keys(
        self, *, app_name: str, user_id: str, session_id: str | None = None
    ) -> list[str]:
        """The file names of the session and the user's ``user:`` names, sorted."""
        artifact_util.validate_path_segment(app_name, "app_name")
        artifact_util.validate_path_segment(user_id, "user_id")
        keys = [common.key("art-user", app_name, user_id)]
        if session_id is not None:
            artifact_util.validate_path_segment(session_id, "session_id")
            stripped = common.strip_id(session_id) or session_id
            keys.append(common.key("art", app_name, user_id, stripped))
        names: set[str] = set()
        for key in keys:
            with contextlib.suppress(satchel.SessionNotFoundError):
                names.update(adk_filename(info.name) for info in await self._rt.artifacts.list(key))
        return sorted(names)

    async def delete_artifact(
        self, *, app_name: str, user_id: str, filename: str, session_id: str | None = None
    ) -> None:
        """Delete every version of ``filename``; no-op if there is none."""
        key, _ = _container(app_name, user_id, filename, session_id)
        name = artifact_name(filename)
        with contextlib.suppress(*_NOT_FOUND):
            await resuming(self._rt, key, lambda: self._rt.artifacts.delete(key, name))

    async def list_versions(
        self, *, app_name: str, user_id: str, filename: str, session_id: str | None = None
    ) -> list[int]:
        """The versions of ``filename`` (0, 1, ...); ``[]`` if none."""
        key, _ = _container(app_name, user_id, filename, session_id)
        return list(range(len(await self._versions(key, filename))))

    async def list_artifact_versions(
        self, *, app_name: str, user_id: str, filename: str, session_id: str | None = None
    ) -> list[ArtifactVersion]:
        """Every version of ``filename`` with its metadata, oldest first."""
        key, sid = _container(app_name, user_id, filename, session_id)
        live = await self._versions(key, filename)
        return [_version(info, n, app_name, user_id, filename, sid) for n, info in enumerate(live)]

    async def get_artifact_version(
        self,
        *,
        app_name: str,
        user_id: str,
        filename: str,
        session_id: str | None = None,
        version: int | None = None,
    ) -> ArtifactVersion | None:
        """One version's metadata (default the latest); ``None`` if there is none."""
        key, sid = _container(app_name, user_id, filename, session_id)
        live = await self._versions(key, filename)
        if not live:
            return None
        if version is None:
            version = len(live) - 1
        elif not 0 <= version < len(live):
            return None
        return _version(live[version], version, app_name, user_id, filename, sid)

    # ---------------------------------------------------------------- internals
    async def _store(
        self,
        key: str,
        name: str,
        content: bytes,
        metadata: Mapping[str, Any],
        app_name: str,
        user_id: str,
    ) -> satchel.ArtifactRef:
        """Store a version, creating the container session on its first artifact."""

        def store() -> Awaitable[satchel.ArtifactRef]:
            return self._rt.artifacts.store(
                key, name, content, type=ARTIFACT_TYPE, metadata=metadata
            )

        try:
            return await resuming(self._rt, key, store)
        except satchel.SessionNotFoundError:
            pass
        with contextlib.suppress(satchel.SessionExistsError):  # another saver made it
            await self._rt.sessions.create(
                key=key, app=app_name, user=user_id, tags=[common.TAG_ARTIFACTS]
            )
        return await resuming(self._rt, key, store)

    async def _versions(self, key: str, filename: str) -> list[satchel.ArtifactInfo]:
        """The live satchel versions of ``filename``, oldest first; ``[]`` if none."""
        try:
            return list(await self._rt.artifacts.versions(key, artifact_name(filename)))
        except _NOT_FOUND:
            return []

    async def _load(
        self,
        app_name: str,
        user_id: str,
        filename: str,
        session_id: str | None,
        version: int | None,
        depth: int,
    ) -> types.Part | None:
        key, sid = _container(app_name, user_id, filename, session_id)
        try:
            if version is None:
                got = await self._rt.artifacts.get(key, artifact_name(filename))
            else:
                live = await self._versions(key, filename)
                if not 0 <= version < len(live):
                    return None  # as ADK's services: an unknown version loads as None
                got = await self._rt.artifacts.get(key, live[version].id)
        except _NOT_FOUND:
            return None
        adk = got.metadata.custom["adk"]
        part = types.Part.model_validate(adk["part"])
        if adk["kind"] == "inline":
            assert part.inline_data is not None
            part.inline_data.data = got.content
        elif adk["kind"] == "text":
            part.text = got.content.decode()
        elif artifact_util.is_artifact_ref(part):
            assert part.file_data is not None
            target = artifact_util.resolve_artifact_reference(
                file_uri=cast(str, part.file_data.file_uri),
                app_name=app_name,
                user_id=user_id,
                session_id=sid,
                remaining_depth=depth,
            )
            return await self._load(
                target.app_name,
                target.user_id,
                target.filename,
                target.session_id,
                target.version,
                depth - 1,
            )
        if part == _EMPTY_PART or artifact_util._is_rewind_tombstone(part):
            return None  # ADK's rewind saves this to mean "absent"
        return part


def _container(
    app_name: str, user_id: str, filename: str, session_id: str | None
) -> tuple[str, str | None]:
    """(satchel key, ADK session id or ``None``) of the container of ``filename``, after
    ADK's checks of each path segment."""
    artifact_util.validate_path_segment(app_name, "app_name")
    artifact_util.validate_path_segment(user_id, "user_id")
    if filename.startswith("user:"):
        return common.key("art-user", app_name, user_id), None
    if session_id is None:
        raise InputValidationError("Session ID must be provided for session-scoped artifacts.")
    artifact_util.validate_path_segment(session_id, "session_id")
    stripped = common.strip_id(session_id) or session_id
    return common.key("art", app_name, user_id, stripped), stripped


def _split(
    part: types.Part, app_name: str, user_id: str, session_id: str | None
) -> tuple[bytes, str, str | None, dict[str, Any]]:
    """(content, kind, MIME type, the part without its payload) of a part to save."""
    # The payload is left out of the dump: base64 of a large one would cost more than storing.
    if part.inline_data is not None:
        if part.inline_data.data is None:
            raise InputValidationError("inline_data must carry data (b'' for empty).")
        shape = part.model_dump(mode="json", exclude_none=True, exclude={"inline_data": {"data"}})
        return part.inline_data.data, "inline", part.inline_data.mime_type, shape
    if part.text is not None:
        shape = part.model_dump(mode="json", exclude_none=True, exclude={"text"})
        return part.text.encode(), "text", "text/plain", shape
    shape = part.model_dump(mode="json", exclude_none=True)
    if part.file_data is not None:
        if not artifact_util.is_artifact_ref(part):
            return b"", "file", part.file_data.mime_type, shape
        uri = cast(str, part.file_data.file_uri)
        parsed = artifact_util.parse_artifact_uri(uri)
        if parsed is None:
            raise InputValidationError(f"Invalid artifact reference URI: {uri}")
        artifact_util.validate_artifact_reference_scope(
            app_name=app_name, user_id=user_id, session_id=session_id, parsed_uri=parsed
        )
        return b"", "file", None, shape  # the MIME type is the target's, known on load
    raise InputValidationError("Not supported artifact type.")


def _version(
    info: satchel.ArtifactInfo,
    version: int,
    app_name: str,
    user_id: str,
    filename: str,
    session_id: str | None,
) -> ArtifactVersion:
    adk = info.custom["adk"]
    return ArtifactVersion(
        version=version,
        canonical_uri=artifact_util.get_artifact_uri(
            app_name, user_id, filename, version, session_id
        ),
        custom_metadata=adk.get("custom_metadata") or {},
        create_time=adk["create_time"],
        mime_type=adk.get("mime_type"),
    )
