"""Frozen statistics records of the kernel."""

from __future__ import annotations

import attrs


@attrs.frozen
class ActorStatistics:
    """One live actor, as of the call."""

    kind: str
    id: str
    state: str
    mailbox_depth: int
    mailbox_peak: int
    mailbox_capacity: int
    messages_handled: int
    restarts: int
    activations: int
    last_activity: float
    failure: str | None


@attrs.frozen
class SupervisorStatistics:
    """The supervisor and its actors, as of the call (totals since the runtime opened)."""

    live_actors: int
    failed_actors: int
    activations: int
    passivations: int
    restarts: int
    messages_handled: int
    reminders: int
    resident_cap: int
    closed: bool
    #: Times the heap freed by a wave of passivations was given back to the system.
    heap_trims: int = 0
