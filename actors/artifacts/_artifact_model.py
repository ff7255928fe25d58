"""The artifact records users see (a ref after storing, the metadata table) and what is kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from satchel.storage import RecordCodec
from satchel.storage._codec import converter

#: The artifact types the spec names; any other non-empty string is a custom type.
KNOWN_TYPES = frozenset({"agent_output", "tool_result", "user_input", "system_generated"})


@attrs.frozen
class ArtifactRef:
    """What storing an artifact returns: which version of which name it became."""

    id: str
    session_id: str
    name: str
    version: int
    content_hash: str
    size: int

    @property
    def sequence(self) -> int:
        """``version`` under rs-llmspell's name for it."""
        return self.version


@attrs.frozen
class ArtifactInfo:
    """The metadata table of one stored version."""

    id: str
    session_id: str
    name: str
    version: int
    type: str
    mime_type: str
    description: str | None
    size: int
    content_hash: str
    tags: tuple[str, ...]
    custom: dict[str, Any]
    created_at: datetime
    created_by: str
    is_compressed: bool
    stored_size: int

    @property
    def artifact_type(self) -> str:
        """``type`` under rs-llmspell's name for it."""
        return self.type

    def ref(self) -> ArtifactRef:
        """The ref of this version."""
        return ArtifactRef(
            self.id, self.session_id, self.name, self.version, self.content_hash, self.size
        )


@attrs.frozen
class Artifact:
    """An artifact read whole: its content and its metadata."""

    content: bytes
    metadata: ArtifactInfo


@attrs.frozen
class ArtifactRecord:
    """What is stored for one version (its content is a blob, named by ``content_hash``)."""

    id: str
    session_id: str
    name: str
    version: int
    type: str
    mime_type: str
    description: str | None
    tags: tuple[str, ...]
    custom: dict[str, Any]
    content_hash: str
    size: int
    stored_size: int
    compressed: bool
    created_us: int
    created_by: str


def record_fields(raw: Any) -> tuple[Any, ...]:
    """The fields of an ``ArtifactRecord``, in order, from its unpacked form, converted as
    cattrs' structure converts them (``str``, ``int``, ``bool`` of each, tags a tuple of
    ``str``, custom a dict with ``str`` keys) in a third of its time. Raises on what it does
    not expect (tags not a list, custom not a dict), so the codec lets cattrs decide."""
    tags, custom, description = raw["tags"], raw["custom"], raw["description"]
    if type(tags) is not list or type(custom) is not dict:
        raise TypeError("not the usual shape")
    return (
        str(raw["id"]),
        str(raw["session_id"]),
        str(raw["name"]),
        int(raw["version"]),
        str(raw["type"]),
        str(raw["mime_type"]),
        None if description is None else str(description),
        tuple([str(tag) for tag in tags]),
        {str(key): value for key, value in custom.items()},
        str(raw["content_hash"]),
        int(raw["size"]),
        int(raw["stored_size"]),
        bool(raw["compressed"]),
        int(raw["created_us"]),
        str(raw["created_by"]),
    )


def _structure_record(raw: Any) -> ArtifactRecord:
    return ArtifactRecord(*record_fields(raw))


_unstructure_custom = converter.get_unstructure_hook(dict[str, Any])


def _unstructure_record(record: ArtifactRecord) -> dict[str, Any]:
    # What cattrs' generated hook gives (every store writes one), at half its cost.
    custom = record.custom
    return {
        "id": record.id,
        "session_id": record.session_id,
        "name": record.name,
        "version": record.version,
        "type": record.type,
        "mime_type": record.mime_type,
        "description": record.description,
        "tags": list(record.tags),
        "custom": _unstructure_custom(custom) if custom else {},
        "content_hash": record.content_hash,
        "size": record.size,
        "stored_size": record.stored_size,
        "compressed": record.compressed,
        "created_us": record.created_us,
        "created_by": record.created_by,
    }


ARTIFACT_CODEC = RecordCodec(
    ArtifactRecord,
    kind="artifact",
    version=1,
    fast=_structure_record,
    unstructure=_unstructure_record,
)
