"""The HTTP status of each error class: plain data the HTTP API answers with and a cluster
node reads remote errors by, here so that the latter needs no web framework."""

from __future__ import annotations

from satchel.runtime import _errors as errors

#: HTTP status of each error class; the first class in the MRO listed here wins.
STATUS: dict[type[errors.SatchelError], int] = {
    errors.ContentTooLargeError: 413,
    errors.QuotaExceededError: 413,
    errors.InvalidArgumentError: 422,
    errors.ValidationError: 422,
    errors.ScriptError: 422,
    errors.ScriptLimitExceededError: 422,
    errors.ReplayError: 422,
    errors.SessionNotFoundError: 404,
    errors.ArtifactNotFoundError: 404,
    errors.ActorNotFoundError: 404,
    errors.BlobNotFoundError: 404,
    errors.AccessDeniedError: 403,
    errors.InvalidStateTransitionError: 409,
    errors.SessionNotActiveError: 409,
    errors.SessionHasChildrenError: 409,
    errors.SessionExistsError: 409,
    errors.HookCancelledError: 409,
    errors.RateLimitedError: 429,
    errors.MailboxFullError: 503,
    errors.RuntimeClosedError: 503,
    errors.StoreLockedError: 503,
    errors.StoreWriteFailedError: 503,
    errors.StoreUnavailableError: 503,
    errors.WriteConflictError: 409,
    errors.SessionMovedError: 503,
    errors.NodeNotAnsweringError: 504,
    errors.ObjectNotFoundError: 404,
    errors.IntegrityError: 500,
}


def status_of(error: errors.SatchelError) -> int:
    """The HTTP status answering ``error``."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500
