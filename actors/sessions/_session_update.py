"""Changing what describes a session after its creation: name, description, tags, metadata
and the parts of its config that are policies rather than budgets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from satchel.runtime._errors import InvalidArgumentError, ValidationError

from .. import _validate as validate
from .._model import SessionStatus
from . import _session_layout as layout

#: Config fields a session may change once created. Quotas and rate limits stay as created:
#: the budgets of the sessions a script made are clamped to them.
CHANGEABLE_CONFIG = frozenset({"idle_timeout_s"})
_US = 1_000_000


def check_metadata_size(metadata: dict[str, Any]) -> None:
    """Refuse metadata over its encoded size limit."""
    size, limit = len(layout.encode_value(metadata)), validate.MAX_METADATA_BYTES
    if size > limit:
        raise ValidationError(f"session metadata encodes to {size} bytes; the limit is {limit}")


def changes(
    name: str | None,
    description: str | None,
    tags: Any,
    metadata: Mapping[str, Any] | None,
    config: Mapping[str, Any] | None,
) -> tuple[tuple[str, Any], ...]:
    """The checked changes an update asks for (``None``: leave that field as it is)."""
    found: list[tuple[str, Any]] = []
    if name is not None:
        found.append(("name", validate.text("session name", name, validate.MAX_NAME_BYTES)))
    if description is not None:
        limit = validate.MAX_DESCRIPTION_BYTES
        found.append(
            ("description", validate.text("session description", description, limit, nul_ok=True))
        )
    if tags is not None:
        found.append(("tags", validate.tags(tags)))
    if metadata is not None:
        meta = validate.metadata(metadata)
        check_metadata_size(meta)
        found.append(("metadata", meta))
    if config is not None:
        if not isinstance(config, Mapping):
            raise InvalidArgumentError(f"config must be a map, not {type(config).__name__}")
        fixed = set(config) - CHANGEABLE_CONFIG
        if fixed:
            raise InvalidArgumentError(
                f"session config {', '.join(sorted(map(str, fixed)))} cannot change after "
                f"creation (only {', '.join(sorted(CHANGEABLE_CONFIG))} can)"
            )
        found.extend((f"config.{key}", value) for key, value in config.items())
    if not found:
        raise InvalidArgumentError("an update must change something")
    return tuple(found)


def apply(
    record: layout.SessionRecord, asked: tuple[tuple[str, Any], ...], now_us: int
) -> layout.SessionRecord:
    """``record`` with the changes made (config values checked as at creation)."""
    fields: dict[str, Any] = {}
    config: dict[str, Any] = {}
    for key, value in asked:
        if key.startswith("config."):
            config[key.removeprefix("config.")] = value
        else:
            fields[key] = value
    if config:
        fields["config"] = attrs.evolve(record.config, **config)
        if "idle_timeout_s" in config:
            fields["deadlines"] = _idle_deadline(record, config["idle_timeout_s"], now_us)
    return attrs.evolve(record, **fields)


def _idle_deadline(
    record: layout.SessionRecord, timeout_s: float | None, now_us: int
) -> tuple[tuple[int, bytes], ...]:
    """The deadlines with the idle one restarted from now (an active session's only)."""
    idle = layout.Deadline.IDLE.value
    kept = tuple(d for d in record.deadlines if d[1] != idle)
    if timeout_s is None or record.status is not SessionStatus.ACTIVE:
        return kept
    return (*kept, (now_us + round(timeout_s * _US), idle))


def journal_data(asked: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """What the ``session_updated`` entry records: each changed field's new value."""
    data: dict[str, Any] = {}
    for key, value in asked:
        if key.startswith("config."):
            data.setdefault("config", {})[key.removeprefix("config.")] = value
        else:
            data[key] = list(value) if key == "tags" else value
    return data
