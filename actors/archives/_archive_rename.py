"""An archive's session given a fresh id on import (``import_session(..., new_id=True)``):
its artifact versions get fresh ids too, and every mention of the old ids in the journal
names the new ones, so the copy replays and forks as the original does."""

from __future__ import annotations

from typing import Any

import attrs

from .. import _validate as validate
from ..artifacts import _artifact_index as index
from ..artifacts import _artifact_layout as artifact_layout
from ..artifacts._artifact_model import ARTIFACT_CODEC, ArtifactRecord
from ..sessions import _session_layout as layout


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
    # A copy the host imports is the host's: it counts against no script's budget.
    # Nor does it keep the key, which names the original.
    record = attrs.evolve(record, id=new_id, budget_of=None, key=None)
    journal = []
    for seq, entry in records.journal:
        at_us, kind, data, cause = layout.decode_entry_with_cause(entry)
        data, cause = _renamed_entry(kind, data, cause, ids)
        journal.append((seq, layout.encode_entry(at_us, kind, data, cause)))
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


def _renamed_entry(
    kind: str, data: dict[str, Any], cause: dict[str, Any] | None, ids: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A journal entry's data and cause with the ids of this session's own artifacts (and
    the session itself) where entries hold them: the only places, so a variable or a name
    that happens to hold an id is kept as it was."""
    data = dict(data)
    if kind in ("artifact_stored", "artifact_shared", "artifact_revoked") and "id" in data:
        data["id"] = _renamed_id(data["id"], ids)
    elif kind == "artifact_deleted" and type(data.get("deleted")) is list:
        data["deleted"] = [_renamed_item(item, ids) for item in data["deleted"]]
    elif kind == "session_forked" and type(data.get("artifacts")) is list:
        data["artifacts"] = [_renamed_item(item, ids) for item in data["artifacts"]]
    if cause is not None and "session_id" in cause:
        cause = {**cause, "session_id": _renamed_id(cause["session_id"], ids)}
    # (An entry of another shape keeps it: a replay refuses it, as the original's would.)
    return data, cause


def _renamed_id(value: Any, ids: dict[str, str]) -> Any:
    return ids.get(value, value) if type(value) is str else value


def _renamed_item(item: Any, ids: dict[str, str]) -> Any:
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        return {**item, "id": ids.get(item["id"], item["id"])}
    return item
