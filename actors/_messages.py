"""Messages the session and deadline actors take (frozen records, answered by ``ask``)."""

from __future__ import annotations

from typing import Any

import attrs

from satchel.storage import StagedBlob

from ._lifecycle import Transition


@attrs.frozen
class ChangeStatus:
    """Move the session through its lifecycle (``reason`` is kept for ``fail``)."""

    operation: Transition
    reason: str | None = None


@attrs.frozen
class SetState:
    """Set one variable."""

    key: str
    value: Any


@attrs.frozen
class GetState:
    """Read one variable (``None`` if unset)."""

    key: str


@attrs.frozen
class DeleteState:
    """Remove one variable (no error if unset)."""

    key: str


@attrs.frozen
class ListState:
    """The names of every variable, in byte order."""


@attrs.frozen
class Save:
    """Make sure everything acknowledged is stored (it always is: every change is written)."""


@attrs.frozen
class Load:
    """Make the session live; answers its id."""


@attrs.frozen
class Delete:
    """Delete the session and everything it owns; without ``cascade``, refused while it has
    children; with it, the sessions below go in the same batch."""

    cascade: bool = False


@attrs.frozen
class UpdateSession:
    """Change the session's name, description, tags, metadata or changeable config
    (``(field, checked value)`` pairs, ``config.`` before a config field)."""

    changes: tuple[tuple[str, Any], ...]


@attrs.frozen
class Retire:
    """Passivate after this turn."""


@attrs.frozen
class DeadlineDue:
    """A deadline of the session's policies or retention has come."""

    due_us: int
    reason: bytes


@attrs.frozen
class DeadlineAdded:
    """A session asked to be looked at at ``due_us`` (told to the deadline actor)."""

    due_us: int


@attrs.frozen
class StoreArtifact:
    """Store content as the next version of ``name`` (fields already validated): ``staged``
    by the storage actor, or small ``content`` that the session actor stages itself."""

    name: str
    type: str
    staged: StagedBlob | None
    mime_type: str
    description: str | None
    tags: tuple[str, ...]
    custom: dict[str, Any]
    created_by: str
    caller: str | None = None  # the session acting, if not the host or the owner
    content: bytes | None = None
    hook_records: tuple[dict[str, Any], ...] = ()  # of hooks run for it elsewhere (collectors)


@attrs.frozen
class DeleteArtifact:
    """Delete one version (by id, or name and version) or every version of a name."""

    artifact_id: str | None = None
    name: str | None = None
    version: int | None = None
    caller: str | None = None


@attrs.frozen
class ShareArtifact:
    """Grant ``permission`` on one version (by id) or a whole name to another session."""

    target_session_id: str
    permission: str
    artifact_id: str | None = None
    name: str | None = None
    caller: str | None = None


@attrs.frozen
class RevokeArtifact:
    """Remove the grant on one version (by id) or a whole name from another session."""

    target_session_id: str
    artifact_id: str | None = None
    name: str | None = None
    caller: str | None = None


@attrs.frozen
class RecordHooks:
    """Journal hook executions that ran outside the actor (on a read of an artifact)."""

    records: list[dict[str, Any]]


@attrs.frozen
class AppendEvents:
    """Append events to the session's log, applying a state delta in the same write
    (``satchel.actors._event_log.Append``, checked); answers the last position."""

    append: Any


@attrs.frozen
class PopEvent:
    """Remove the last event of the session's log; answers it, or ``None``."""


@attrs.frozen
class ClearEvents:
    """Remove every event of the session's log; answers how many there were."""
