"""Which hook point a session actor's message passes, the data its hooks see, and the message
their changes make (checked again like the original)."""

from __future__ import annotations

from typing import Any

import anyio
import attrs

from satchel.runtime._errors import ValidationError

from .. import _validate as validate
from .._lifecycle import Transition
from .._messages import (
    AppendEvents,
    ChangeStatus,
    DeleteArtifact,
    DeleteState,
    Load,
    Save,
    SetState,
    StoreArtifact,
)
from .._model import SessionStatus
from ..artifacts import _artifact_layout as artifact_layout
from ..hooks._hooks import HookPoint, Hooks
from ._session_layout import encode_value

_TRANSITION_POINTS = {
    Transition.SUSPEND: HookPoint.SESSION_SUSPEND,
    Transition.RESUME: HookPoint.SESSION_RESUME,
    Transition.COMPLETE: HookPoint.SESSION_COMPLETE,
    Transition.FAIL: HookPoint.SESSION_FAIL,
    Transition.ARCHIVE: HookPoint.SESSION_ARCHIVE,
}
_POINTS: dict[type, HookPoint] = {
    AppendEvents: HookPoint.STATE_CHANGED,
    SetState: HookPoint.STATE_CHANGED,
    DeleteState: HookPoint.STATE_CHANGED,
    Save: HookPoint.SESSION_SAVE,
    Load: HookPoint.SESSION_RESTORE,
    StoreArtifact: HookPoint.ARTIFACT_CREATED,
    DeleteArtifact: HookPoint.ARTIFACT_DELETED,
}
#: Messages that change the session (their hooks run only where the change may happen).
WRITES = (SetState, DeleteState, StoreArtifact, DeleteArtifact, AppendEvents)
#: Messages that hold no more than what their observers see: batched observers may build
#: their data later from the message (an artifact's or an append's holds its content).
LIGHT = frozenset((SetState, DeleteState, ChangeStatus))


def point_of(message: Any) -> HookPoint | None:
    """The hook point ``message`` passes, if any."""
    if type(message) is ChangeStatus:
        return _TRANSITION_POINTS[message.operation]
    return _POINTS.get(type(message))


def check_input(message: Any, max_value_bytes: int) -> None:
    """Check what hooks will see as the handler would, so no hook (nor its journal record)
    ever holds a value the store would refuse."""
    if type(message) is SetState:
        field = f"state {message.key!r}"
        validate.state_key(message.key)
        validate.json_like(field, message.value)
        size = len(validate.encoded(field, encode_value, message.value))
        if size > max_value_bytes:
            raise ValidationError(
                f"{field} encodes to {size} bytes; the limit is {max_value_bytes} (max_value_bytes)"
            )
    elif type(message) is ChangeStatus and message.reason is not None:
        validate.text("a failure reason", message.reason, validate.MAX_REASON_BYTES, nul_ok=True)


def data_of(message: Any, status: SessionStatus | None) -> dict[str, Any]:
    """What the hooks of ``message`` see (``status``: the session's status now)."""
    if type(message) is SetState:
        return {"key": message.key, "value": message.value, "deleted": False}
    if type(message) is DeleteState:
        return {"key": message.key, "value": None, "deleted": True}
    if type(message) is ChangeStatus:
        return {
            "operation": message.operation.value,
            "from": "" if status is None else status.value,
            "reason": message.reason,
        }
    if type(message) is StoreArtifact:
        size = len(message.content or b"") if message.staged is None else message.staged.ref.size
        return {
            "name": message.name,
            "type": message.type,
            "mime_type": message.mime_type,
            "description": message.description,
            "tags": list(message.tags),
            "custom": message.custom,
            "size": size,
            "created_by": message.created_by,
        }
    if type(message) is DeleteArtifact:
        return {"id": message.artifact_id, "name": message.name, "version": message.version}
    if type(message) is AppendEvents:
        # What observers see of an append: the variables it changed (its hooks ran per key).
        append = message.append
        return {"keys": [k for k, _ in append.state], "deleted": list(append.deleted)}
    return {}


def changed(message: Any, data: dict[str, Any]) -> Any:
    """``message`` with the fields hooks modified, each checked as at the start."""
    if type(message) is SetState:
        # The handler checks the new value's size against the session's limit.
        value = data["value"]
        validate.json_like(f"state {message.key!r}", value)
        validate.encoded(f"state {message.key!r}", encode_value, value)
        return SetState(message.key, value)
    if type(message) is ChangeStatus:
        reason = data["reason"]
        if reason is not None:
            validate.text("a failure reason", reason, validate.MAX_REASON_BYTES, nul_ok=True)
        return ChangeStatus(message.operation, reason)
    if type(message) is StoreArtifact:
        description = data["description"]
        if description is not None:
            description = validate.text("description", description, validate.MAX_DESCRIPTION_BYTES)
        custom = data["custom"]
        if not isinstance(custom, dict):
            raise ValidationError(f"a hook set custom metadata to {custom!r}, not a map")
        checked = artifact_layout.split_metadata(
            message.name,
            {**custom, "mime_type": data["mime_type"], "tags": data["tags"]},
        )
        return attrs.evolve(
            message,
            mime_type=checked[0],
            description=description,
            tags=checked[2],
            custom=checked[3],
        )
    return message


async def tell_awaited(
    hooks: Hooks, point: HookPoint, session_id: str, data: dict[str, Any], *, shield: bool
) -> None:
    """Call the observers of a finished operation, some awaited; with ``shield`` the caller's
    cancellation does not cut them (a turn lent unshielded, which had no awaited observer
    when it began, must not be cut by one registered since)."""
    with anyio.CancelScope(shield=shield):
        await hooks.notify(point, session_id, data)
