"""How an actor kind is run: its factory, mailbox, restart policy and idle timeout."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import SatchelError

if TYPE_CHECKING:
    from ._actor import Actor


class Restart(enum.Enum):
    """When a stopped actor is started again."""

    PERMANENT = "permanent"  # after any crash
    TRANSIENT = "transient"  # after a crash, not after a normal stop
    TEMPORARY = "temporary"  # never: a crash stops it for good


class Strategy(enum.Enum):
    """Which actors a crash restarts, among those of one supervisor."""

    ONE_FOR_ONE = "one_for_one"  # only the one that crashed
    ONE_FOR_ALL = "one_for_all"  # every live actor
    REST_FOR_ONE = "rest_for_one"  # it and every actor activated after it


@attrs.frozen
class Intensity:
    """At most ``max_restarts`` within ``period`` seconds, waiting ``backoff`` (doubling,
    capped at ``max_backoff``) before each restart after the first."""

    max_restarts: int = 3
    period: float = 5.0
    backoff: float = 0.01
    max_backoff: float = 1.0


@attrs.frozen
class ActorSpec:
    """Everything the supervisor needs to run actors of one kind.

    ``factory(actor_id)`` makes a fresh actor. Errors of a ``survives`` type raised by a
    handler are answered to the asker and the actor goes on; any other error is a crash.
    ``idle_timeout`` (seconds, ``None`` for never) passivates an actor left without messages;
    ``flush_timeout`` bounds ``on_stop``, which runs shielded from cancellation.
    ``admit(actor_id, message)``, if given, is awaited in the asking task before an actor that
    is not live is started for an ask: it raises (an error of a ``survives`` type) to answer
    the ask without starting an actor, for an id that names nothing.
    """

    kind: str
    factory: Callable[[str], Actor[Any]]
    mailbox_capacity: int = 256
    restart: Restart = Restart.PERMANENT
    idle_timeout: float | None = 300.0
    flush_timeout: float = 10.0
    survives: tuple[type[BaseException], ...] = (SatchelError,)
    intensity: Intensity = Intensity()
    admit: Callable[[str, Any], Awaitable[None]] | None = None
