"""An archive's session given a fresh id on import (``import_session(..., new_id=True)``):
its artifact versions get fresh ids too, and every mention of the old ids in the journal
names the new ones, so the copy replays and forks as the original does."""

from __future__ import annotations

from typing import Any

import attrs

from . import _artifact_index as index
from . import _artifact_layout as artifact_layout
from . import _layout as layout
from . import _validate as validate
from ._artifact_model import ARTIFACT_CODEC, ArtifactRecord


def renamed(records: Any) -> Any:
    """``records`` (an archive's ``_Records``) as a new session's, with fresh ids."""
    record = records.record
    assert record is not None
    new_id, new_sid = validate.new_session_id()
    ids: dict[str, str] = {records.session_id: new_id}
    versions: list[tuple[bytes, ArtifactRecord]] = []
    for _, version in records.versions:
        fresh = validate.new_artifact_id()[0]
        ids[version.id] = fresh
        created_by = ids.get(version.created_by, version.created_by)
        moved = attrs.evolve(version, id=fresh, session_id=new_id, created_by=created_by)
        versions.append((ARTIFACT_CODEC.encode(moved), moved))
    record = attrs.evolve(record, id=new_id)
    journal = []
    for seq, entry in records.journal:
        at_us, kind, data, cause = layout.decode_entry_with_cause(entry)
        journal.append((seq, layout.encode_entry(at_us, kind, _swap(data, ids), _swap(cause, ids))))
    latest = {v.name.encode(): v for _, v in versions}  # versions come in version order
    names = []
    for name, value in records.names:
        last, first, _ = artifact_layout.decode_name_value(value)
        suffix = index.suffix_of(latest[name])
        names.append((name, artifact_layout.encode_name_value(last, first, suffix)))
    return attrs.evolve(
        records,
        session_id=new_id,
        sid=new_sid,
        record=record,
        record_raw=layout.RECORD_CODEC.encode(record),
        versions=versions,
        journal=journal,
        names=names,
    )


def _swap(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with every string that is an old id replaced by its new one."""
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, dict):
        return {key: _swap(item, ids) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_swap(item, ids) for item in value]
    return value
