"""The session records users see: status, config, the session table and journal entries."""

from __future__ import annotations

import enum
import math
from datetime import datetime
from typing import Any

import attrs

from satchel.runtime._errors import InvalidArgumentError, ValidationError


class SessionStatus(enum.StrEnum):
    """Where a session is in its lifecycle."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    FAILED = "failed"
    ARCHIVED = "archived"


MAX_VALUE_BYTES = 1 << 20

#: Counts are stored as signed 64-bit integers.
_MOST_COUNT = (1 << 63) - 1
_COUNTS = ("max_artifacts", "max_bytes", "max_operations", "rate_burst", "max_value_bytes")
#: The fields that limit what a session may do (the others are policies).
LIMITS = (
    "max_artifacts",
    "max_bytes",
    "max_operations",
    "max_duration_s",
    "rate_limit",
    "rate_burst",
    "max_value_bytes",
)
_CENTURY_S = 100 * 365.25 * 86_400
#: Upper bounds keep every deadline inside the index's 64-bit microsecond times.
_SECONDS = {
    "max_duration_s": _CENTURY_S,
    "idle_timeout_s": _CENTURY_S,
    "retention_days": _CENTURY_S / 86_400,
    "archive_retention_days": _CENTURY_S / 86_400,
    "rate_limit": 1e9,
}


@attrs.frozen
class SessionConfig:
    """Per-session limits and policies; ``None`` means no limit.

    ``max_duration_s`` fails a session that is still active or suspended that long after its
    creation; ``idle_timeout_s`` suspends and passivates an active session left without
    operations; ``retention_days`` archives a completed or failed session that long after it
    ended, and ``archive_retention_days`` deletes an archived one that long after archiving.
    ``rate_limit`` is operations per second with bursts of ``rate_burst`` (default: one
    second's worth). ``max_value_bytes`` bounds one encoded variable.
    """

    max_artifacts: int | None = None
    max_bytes: int | None = None
    max_operations: int | None = None
    max_duration_s: float | None = None
    idle_timeout_s: float | None = None
    retention_days: float | None = None
    archive_retention_days: float | None = None
    rate_limit: float | None = None
    rate_burst: int | None = None
    max_value_bytes: int = MAX_VALUE_BYTES

    def __attrs_post_init__(self) -> None:
        if self.max_value_bytes is None:
            raise InvalidArgumentError("session config max_value_bytes cannot be None")
        for name in _COUNTS:
            value = getattr(self, name)
            if value is None:
                continue
            if type(value) is not int:
                raise InvalidArgumentError(
                    f"session config {name} must be an integer, not {type(value).__name__}"
                )
            if not 1 <= value <= _MOST_COUNT:
                raise ValidationError(
                    f"session config {name} must be from 1 to {_MOST_COUNT}, not {value}"
                )
        for name, most in _SECONDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if type(value) not in (int, float):
                raise InvalidArgumentError(
                    f"session config {name} must be a number, not {type(value).__name__}"
                )
            if not 0 < value <= most:
                raise ValidationError(
                    f"session config {name} must be positive and at most {most:g}, not {value}"
                )

    @property
    def burst(self) -> int:
        """Operations a session may run at once before the rate limit applies."""
        if self.rate_burst is not None:
            return self.rate_burst
        return max(1, math.ceil(self.rate_limit or 1))

    def within(self, bound: SessionConfig) -> SessionConfig:
        """This config with every limit at most ``bound``'s (no limit is the most): what a
        session script's child gets, so that it cannot loosen its parent's limits."""
        changes: dict[str, Any] = {}
        for name in LIMITS:
            mine, most = getattr(self, name), getattr(bound, name)
            if name == "rate_burst" and bound.rate_limit is not None:
                most = bound.burst
            if most is not None and (mine is None or mine > most):
                changes[name] = most
        return attrs.evolve(self, **changes)


@attrs.frozen
class SessionInfo:
    """The session table: a session as it was when read."""

    id: str
    name: str
    description: str
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    status: SessionStatus
    parent_session_id: str | None
    config: SessionConfig
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    artifact_count: int
    total_bytes: int
    operation_count: int
    failure_reason: str | None
    #: The key the session was created with (its id is derived from it), if any.
    key: str | None = None
    #: The application and user the session belongs to, if given at creation.
    app: str | None = None
    user: str | None = None


@attrs.frozen
class JournalEntry:
    """One change of a session, in the order it happened (``seq`` counts from 1)."""

    seq: int
    at: datetime
    kind: str
    data: dict[str, Any]
    #: The session's correlation id: its root's id (parents and fork origins followed up).
    correlation_id: str | None = None
    #: The entry that led to this one, ``{"session_id", "seq"}`` (a child's creation names
    #: its parent's entry; a fork's first entry, its origin's), else ``None``.
    cause: dict[str, Any] | None = None
