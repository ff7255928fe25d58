"""``rt.control``: see and steer the live actors of a running satchel.

Every verb names the actor by id and kind (``session`` unless given). Lifecycle verbs go
through the session manager, so hooks, journal and validation apply as to any other caller;
``passivate``, ``restart`` and ``stop`` are the supervisor's.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from satchel.runtime._errors import ActorNotFoundError, InvalidArgumentError
from satchel.storage import SplitRecords

from . import _validate as validate
from .sessions._session import SESSION_KIND

if TYPE_CHECKING:
    from satchel.runtime import ActorStatistics, Supervisor, SupervisorStatistics
    from satchel.storage import CheckReport, GroupCommit, GroupCommitStatistics, Store

    from ._check import SessionCheckReport
    from ._model import SessionInfo
    from .hooks._hooks import Hooks, HookStatistics
    from .hooks._schedule_layout import ReplayRun, ScheduledReplay
    from .hooks._schedules import Replays
    from .sessions._manager import SessionManager


@attrs.frozen
class ActorInspection:
    """One actor: its kernel counters, and its session record for a session actor."""

    actor: ActorStatistics | None
    session: SessionInfo | None


@attrs.frozen
class ControlStatistics:
    """The runtime now: its store, supervisor and hooks."""

    path: str | None
    backend: str
    supervisor: SupervisorStatistics
    hooks: HookStatistics
    actors_by_kind: dict[str, int]
    durability: str
    group_commit: GroupCommitStatistics | None


@attrs.frozen
class CheckResult:
    """What ``check`` found in the blob store and in the sessions' records."""

    blobs: CheckReport
    sessions: SessionCheckReport

    @property
    def clean(self) -> bool:
        """Whether nothing was found wrong in either."""
        return self.blobs.clean and self.sessions.clean


@attrs.frozen
class GcReport:
    """What ``gc`` did."""

    passivated: int
    orphan_chunks_freed: int
    compacted: bool
    #: Objects in the S3 bucket no record names, older than an hour, deleted (on PostgreSQL
    #: with S3; what a killed process left behind).
    orphan_objects_freed: int = 0


class Control:
    """Inspection and steering of live actors (see the module docstring)."""

    def __init__(
        self,
        supervisor: Supervisor,
        sessions: SessionManager,
        replays: Replays,
        hooks: Hooks,
        store: Store,
        backend: str,
        group: GroupCommit | None = None,
    ) -> None:
        self._supervisor = supervisor
        self._sessions = sessions
        self._replays = replays
        self._hooks = hooks
        self._store = store
        self._backend = backend
        self._group = group

    # -- seeing -----------------------------------------------------------------------------

    def actors(self, kind: str | None = None) -> builtins.list[ActorStatistics]:
        """Every live (and failed) actor, of one kind if given, least recently active first."""
        found = self._supervisor.live()
        return found if kind is None else [a for a in found if a.kind == kind]

    async def inspect(self, actor_id: str, kind: str = SESSION_KIND) -> ActorInspection:
        """An actor's counters (``None`` when it is not live) and, for a session, its record;
        ``ActorNotFoundError`` when it is neither live nor a session."""
        actor_id = _actor_id(_kind(kind), actor_id)
        try:
            actor = self._supervisor.inspect(kind, actor_id)
        except ActorNotFoundError:
            actor = None
        session = None
        if kind == SESSION_KIND:
            validate.session_id(actor_id)
            session = await self._sessions.get(actor_id)
        elif actor is None:
            raise ActorNotFoundError(f"actor {kind}/{actor_id} is not live")
        return ActorInspection(actor, session)

    def statistics(self) -> ControlStatistics:
        """Counters of the runtime now (hooks flushed first)."""
        by_kind: dict[str, int] = {}
        for actor in self._supervisor.live():
            by_kind[actor.kind] = by_kind.get(actor.kind, 0) + 1
        path = self._store.path
        return ControlStatistics(
            path=None if path is None else str(path),
            backend=self._backend,
            supervisor=self._supervisor.statistics(),
            hooks=self._hooks.statistics(),
            actors_by_kind=by_kind,
            durability="process" if self._group is None else "machine",
            group_commit=None if self._group is None else self._group.statistics(),
        )

    # -- steering sessions ------------------------------------------------------------------

    async def suspend(self, session_id: str) -> None:
        """Suspend an active session."""
        await self._sessions.suspend(session_id)

    async def resume(self, session_id: str) -> None:
        """Resume a suspended session."""
        await self._sessions.resume(session_id)

    async def complete(self, session_id: str) -> None:
        """Complete an active or suspended session."""
        await self._sessions.complete(session_id)

    async def fail(self, session_id: str, reason: str | None = None) -> None:
        """Fail an active or suspended session, with a reason."""
        await self._sessions.fail(session_id, reason)

    # -- steering actors --------------------------------------------------------------------

    def passivate(self, actor_id: str, kind: str = SESSION_KIND) -> None:
        """Ask a live actor to flush and leave memory after its current turn (the next
        message activates it again); ``ActorNotFoundError`` when it is not live."""
        self._supervisor.request(_kind(kind), _actor_id(kind, actor_id), "passivate")

    def restart(self, actor_id: str, kind: str = SESSION_KIND) -> None:
        """Ask a live actor to restart from its stored state after its current turn."""
        self._supervisor.request(_kind(kind), _actor_id(kind, actor_id), "restart")

    async def stop(self, actor_id: str, kind: str = SESSION_KIND) -> None:
        """Passivate a live actor and return once it is gone (its state flushed)."""
        await self._supervisor.stop(_kind(kind), _actor_id(kind, actor_id))

    def clear_failure(self, actor_id: str, kind: str = SESSION_KIND) -> None:
        """Forget that an actor failed, so its next message activates it again."""
        self._supervisor.clear_failure(_kind(kind), _actor_id(kind, actor_id))

    # -- replays ----------------------------------------------------------------------------

    async def schedules(self, session_id: str | None = None) -> builtins.list[ScheduledReplay]:
        """Every scheduled replay (of one session, if given)."""
        return await self._replays.list(session_id)

    async def schedule_replay(self, session_id: str, **options: Any) -> str:
        """Schedule a replay (options as ``rt.replays.schedule``); the schedule's id."""
        return await self._replays.schedule(session_id, **options)

    async def cancel_schedule(self, schedule_id: str) -> bool:
        """Stop a schedule; whether it existed."""
        return await self._replays.cancel(schedule_id)

    async def schedule_results(self, schedule_id: str) -> builtins.list[ReplayRun]:
        """The kept runs of a schedule, oldest first."""
        return await self._replays.results(schedule_id)

    # -- upkeep -----------------------------------------------------------------------------

    async def check(self, *, fix: bool = False) -> CheckResult:
        """Compare blob index and blob data, and sessions with their indexes; ``fix``
        repairs what can be repaired."""
        # Sessions first: their repair releases the blob references of the records it
        # drops, which the blob check then finds settled (the other way round took two runs).
        sessions = await self._sessions.check(fix=fix)
        blobs = await self._store.check(fix=fix)
        return CheckResult(blobs, sessions)

    async def gc(self) -> GcReport:
        """Passivate every idle session actor, run ``check(fix=True)`` on the blob store
        (which frees chunks no blob owns, left by uploads a crash cut short), and compact the
        key-value store."""
        passivated = 0
        for actor in self.actors(SESSION_KIND):
            if actor.state == "running" and actor.mailbox_depth == 0:
                try:
                    self._supervisor.request(actor.kind, actor.id, "passivate")
                except ActorNotFoundError:
                    continue
                passivated += 1
        report = await self._store.check(fix=True)
        kv = self._store.kv
        if kv is not None:  # a networked store reclaims space itself (VACUUM)
            await anyio.to_thread.run_sync(kv.compact)
        records = self._store.records
        swept = await records.sweep() if isinstance(records, SplitRecords) else 0
        return GcReport(passivated, len(report.orphan_chunks), kv is not None, swept)


def _actor_id(kind: str, actor_id: str) -> str:
    """A session actor's id is its session's canonical id (a session key names it too)."""
    return validate.session_id(actor_id)[0] if kind == SESSION_KIND else actor_id


def _kind(kind: str) -> str:
    if not isinstance(kind, str) or not kind:
        raise InvalidArgumentError(f"an actor kind must be a non-empty string, not {kind!r}")
    return kind
