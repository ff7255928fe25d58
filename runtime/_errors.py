"""Every error satchel raises, one class per kind.

Each class carries ``kind``: the name Lua scripts see before the colon and HTTP clients see in
the error body, so the three faces of satchel report the same kinds. Classes subclass the
builtin a caller would already catch for that situation (``ValueError`` for bad values,
``OSError`` for a folder another process holds, ...).
"""

from __future__ import annotations

from typing import ClassVar


class SatchelError(Exception):
    """Base class of every error satchel raises on purpose."""

    kind: ClassVar[str] = "SatchelError"


class InvalidArgumentError(SatchelError, TypeError):
    """An argument has the wrong type, or a required one is missing."""

    kind = "InvalidArgument"


class ValidationError(SatchelError, ValueError):
    """A value is of the right type but out of bounds (too large, malformed, too long)."""

    kind = "ValidationError"


class ContentTooLargeError(ValidationError):
    """Content over the size limit (kind ``ValidationError``; HTTP answers it with 413)."""


class IntegrityError(SatchelError):
    """Stored bytes no longer match what was written: the data is corrupt or incomplete."""

    kind = "IntegrityError"


class BlobNotFoundError(SatchelError, KeyError):
    """No blob with that content hash is stored."""

    kind = "BlobNotFound"

    def __str__(self) -> str:
        # KeyError quotes its argument; these messages are sentences.
        return str(self.args[0]) if self.args else ""


class RecordVersionError(SatchelError, ValueError):
    """A stored record was written by a newer satchel than this one."""

    kind = "RecordVersion"


class StoreLockedError(SatchelError, BlockingIOError):
    """The data folder is held open by another process (or another store in this one)."""

    kind = "StoreLocked"


class StoreClosedError(SatchelError, RuntimeError):
    """The store was closed; it serves no more reads or writes."""

    kind = "StoreClosed"


class StoreWriteFailedError(SatchelError, OSError):
    """A write did not reach stable storage; none of its batch (or its group) was applied."""

    kind = "StoreWriteFailed"


class WriteConflictError(SatchelError, RuntimeError):
    """A conditional write found its record changed since it was read (another writer got
    there first); nothing of its transaction was written. Read again and retry."""

    kind = "WriteConflict"


class SessionMovedError(SatchelError, RuntimeError):
    """The session is served by another node now: this node's lease on it expired or was
    taken over, and a write it tried after that was refused whole. Ask again: the request
    goes to the session's owner."""

    kind = "SessionMoved"


class NodeNotAnsweringError(SatchelError, ConnectionError):
    """The node serving the session had the whole request and did not answer: it may or
    may not have carried it out. Read before asking again."""

    kind = "NodeNotAnswering"


class StoreUnavailableError(SatchelError, ConnectionError):
    """The storage server could not be reached, or the connection broke during the call;
    a write that fails with it may or may not have been committed."""

    kind = "StoreUnavailable"


class ObjectNotFoundError(SatchelError, KeyError):
    """No object is stored under that key in the object store."""

    kind = "ObjectNotFound"

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0]) if self.args else ""


class MailboxFullError(SatchelError):
    """``try_tell`` found the actor's mailbox at capacity; ``tell`` would have waited."""

    kind = "MailboxFull"


class ActorCrashedError(SatchelError, RuntimeError):
    """The actor raised an unexpected error handling the message; its supervisor restarts it."""

    kind = "ActorCrashed"


class ActorFailedError(SatchelError, RuntimeError):
    """The actor crashed more often than its restart intensity allows and was stopped."""

    kind = "ActorFailed"


class ActorNotFoundError(SatchelError, LookupError):
    """No actor kind, or no live actor, by that name."""

    kind = "ActorNotFound"

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RuntimeClosedError(SatchelError, RuntimeError):
    """The runtime is closed (or closing) and takes no more messages."""

    kind = "RuntimeClosed"


class ForeignLoopError(SatchelError, RuntimeError):
    """The runtime was called from a thread or event loop other than the one that opened it
    (it belongs to that loop: use ``satchel.sync`` from plain threads, or open it where it
    is called)."""

    kind = "ForeignLoop"


class SessionExistsError(SatchelError, FileExistsError):
    """A session with that id (or an artifact id it holds) is already stored, so an import
    would overwrite it."""

    kind = "SessionExists"


class SessionNotFoundError(SatchelError, LookupError):
    """No session with that id (never created, or deleted)."""

    kind = "SessionNotFound"

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidStateTransitionError(SatchelError, RuntimeError):
    """The session's lifecycle does not allow that change from its current status."""

    kind = "InvalidStateTransition"


class SessionNotActiveError(SatchelError, RuntimeError):
    """A write reached a session that is not active (suspended, completed, failed, archived)."""

    kind = "SessionNotActive"


class SessionHasChildrenError(SatchelError, RuntimeError):
    """Deleting a session that has child sessions, without ``cascade``."""

    kind = "SessionHasChildren"


class QuotaExceededError(SatchelError):
    """The operation would pass a per-session limit; nothing was written."""

    kind = "QuotaExceeded"


class RateLimitedError(SatchelError):
    """The session's operation rate limit is hit; retry later."""

    kind = "RateLimited"


class ArtifactNotFoundError(SatchelError, LookupError):
    """No such artifact, version or name in a session the caller may read."""

    kind = "ArtifactNotFound"

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class AccessDeniedError(SatchelError, PermissionError):
    """The artifact or session exists, but the caller holds no grant for it."""

    kind = "AccessDenied"


class HookCancelledError(SatchelError, RuntimeError):
    """A hook cancelled the operation (or a required hook failed): nothing was written."""

    kind = "HookCancelled"


class ReplayError(SatchelError, RuntimeError):
    """A replay could not run (for instance, a journal entry it cannot read)."""

    kind = "ReplayError"


class ScriptLimitExceededError(SatchelError, RuntimeError):
    """A Lua script passed its memory, instruction, time or pattern limit; every API call
    it completed stays committed."""

    kind = "ScriptLimitExceeded"


class ScriptError(SatchelError, RuntimeError):
    """A Lua script failed (a syntax error, or an error it raised and did not catch);
    ``lua_traceback`` holds Lua's traceback when there is one."""

    kind = "ScriptError"

    def __init__(self, message: str, lua_traceback: str | None = None) -> None:
        super().__init__(message)
        self.lua_traceback = lua_traceback
