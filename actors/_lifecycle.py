"""The session lifecycle: which operation moves a session from which status to which."""

from __future__ import annotations

import enum

from satchel._errors import InvalidStateTransitionError

from ._model import SessionStatus

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


def target_of(session_id: str, current: SessionStatus, operation: Transition) -> SessionStatus:
    """The status ``operation`` leads to from ``current``, or ``InvalidStateTransitionError``."""
    sources, target = TRANSITIONS[operation]
    if current not in sources:
        raise InvalidStateTransitionError(
            f"session {session_id} cannot {operation.value}: it is {current.value}, and "
            f"{operation.value} goes from {' or '.join(sorted(sources))} to {target.value}"
        )
    return target
