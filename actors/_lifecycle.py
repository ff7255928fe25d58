"""The session lifecycle: which operation moves a session from which status to which."""

from __future__ import annotations

import enum

from satchel.runtime._errors import InvalidStateTransitionError

from ._model import SessionStatus
from .sessions import _session_layout as layout

ACTIVE = SessionStatus.ACTIVE
SUSPENDED = SessionStatus.SUSPENDED
COMPLETED = SessionStatus.COMPLETED
FAILED = SessionStatus.FAILED
ARCHIVED = SessionStatus.ARCHIVED


class Transition(enum.StrEnum):
    """A lifecycle operation, named as in the spec."""

    SUSPEND = "suspend"
    RESUME = "resume"
    COMPLETE = "complete"
    FAIL = "fail"
    ARCHIVE = "archive"


#: operation -> (statuses it starts from, status it ends in)
TRANSITIONS: dict[Transition, tuple[frozenset[SessionStatus], SessionStatus]] = {
    Transition.SUSPEND: (frozenset({ACTIVE}), SUSPENDED),
    Transition.RESUME: (frozenset({SUSPENDED}), ACTIVE),
    Transition.COMPLETE: (frozenset({ACTIVE, SUSPENDED}), COMPLETED),
    Transition.FAIL: (frozenset({ACTIVE, SUSPENDED}), FAILED),
    Transition.ARCHIVE: (frozenset({COMPLETED, FAILED}), ARCHIVED),
}

ENDED = frozenset({COMPLETED, FAILED, ARCHIVED})

DAY_S = 86_400.0
_US = 1_000_000


def target_of(session_id: str, current: SessionStatus, operation: Transition) -> SessionStatus:
    """The status ``operation`` leads to from ``current``, or ``InvalidStateTransitionError``."""
    sources, target = TRANSITIONS[operation]
    if current not in sources:
        raise InvalidStateTransitionError(
            f"session {session_id} cannot {operation.value}: it is {current.value}, and "
            f"{operation.value} goes from {' or '.join(sorted(sources))} to {target.value}"
        )
    return target


_DEADLINES_OF: dict[SessionStatus, frozenset[bytes]] = {
    ACTIVE: frozenset({layout.Deadline.MAX_DURATION.value, layout.Deadline.IDLE.value}),
    SUSPENDED: frozenset({layout.Deadline.MAX_DURATION.value}),
    COMPLETED: frozenset({layout.Deadline.RETENTION.value}),
    FAILED: frozenset({layout.Deadline.RETENTION.value}),
    ARCHIVED: frozenset({layout.Deadline.ARCHIVE_RETENTION.value}),
}


def deadline_fits(status: SessionStatus, reason: bytes) -> bool:
    """Whether a session in ``status`` can hold a deadline for ``reason`` (one it could not
    act on would be told of it at every sweep)."""
    return reason in _DEADLINES_OF[status]


def deadlines_after(
    record: layout.SessionRecord, target: SessionStatus, now: int
) -> tuple[tuple[int, bytes], ...]:
    """The deadlines a session in ``target`` status keeps or gains."""
    config = record.config
    kept = _DEADLINES_OF[target] if target in (ACTIVE, SUSPENDED) else frozenset()
    result = [d for d in record.deadlines if d[1] in kept]
    if target is ACTIVE and config.idle_timeout_s is not None:
        result = [d for d in result if d[1] != layout.Deadline.IDLE.value]
        due = now + round(config.idle_timeout_s * _US)
        result.append((due, layout.Deadline.IDLE.value))
    if target in (COMPLETED, FAILED) and config.retention_days is not None:
        due = now + round(config.retention_days * DAY_S * _US)
        result.append((due, layout.Deadline.RETENTION.value))
    if target is ARCHIVED and config.archive_retention_days is not None:
        due = now + round(config.archive_retention_days * DAY_S * _US)
        result.append((due, layout.Deadline.ARCHIVE_RETENTION.value))
    return tuple(result)
