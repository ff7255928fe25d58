"""Part of the blocking facade of the runtime, one class per runtime class (``satchel.sync``).

Written by ``python -m tests.sync_api_gen`` from the async classes' own signatures; do
not edit by hand. Every call runs the async method in the runtime's event loop, in the
calling thread, and returns its result; streams come back as iterators of bytes and
content may be given as an iterable of bytes.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, final

from satchel._portal import Portal
from satchel._runtime import Runtime
from satchel._sync_artifacts import SyncArtifactManager
from satchel._sync_sessions import SyncSessionHandle, SyncSessionManager
from satchel.actors._control import (
    ActorInspection,
    CheckResult,
    Control,
    ControlStatistics,
    GcReport,
)
from satchel.actors.artifacts._artifact_model import ArtifactRef
from satchel.actors.artifacts._collect import Collectors
from satchel.actors.cluster import ClusterStatus
from satchel.actors.hooks._builtin_hooks import Metrics, MetricsSummary
from satchel.actors.hooks._hooks import (
    HookContext,
    HookFunction,
    HookPoint,
    HookRegistration,
    Hooks,
    HookStatistics,
)
from satchel.actors.hooks._schedule_layout import ReplayRun, ScheduledReplay
from satchel.actors.hooks._schedules import Replays
from satchel.actors.sessions._session import SESSION_KIND
from satchel.runtime import ActorSpec, ActorStatistics
from satchel.runtime._supervisor import ActorRef
from satchel.scripting import ScriptLimits
from satchel.storage import BackupReport, Durability, Store


@final
class SyncRuntime:
    """The blocking face of ``Runtime`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: Runtime, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncRuntime of {self._target!r}>"

    @property
    def sessions(self) -> SyncSessionManager:
        """``Runtime.sessions``."""
        return SyncSessionManager(self._target.sessions, self._portal)

    @property
    def artifacts(self) -> SyncArtifactManager:
        """``Runtime.artifacts``."""
        return SyncArtifactManager(self._target.artifacts, self._portal)

    @property
    def hooks(self) -> SyncHooks:
        """``Runtime.hooks``."""
        return SyncHooks(self._target.hooks, self._portal)

    @property
    def collectors(self) -> SyncCollectors:
        """``Runtime.collectors``."""
        return SyncCollectors(self._target.collectors, self._portal)

    @property
    def metrics(self) -> SyncMetrics:
        """``Runtime.metrics``."""
        return SyncMetrics(self._target.metrics, self._portal)

    @property
    def replays(self) -> SyncReplays:
        """``Runtime.replays``."""
        return SyncReplays(self._target.replays, self._portal)

    @property
    def control(self) -> SyncControl:
        """``Runtime.control``."""
        return SyncControl(self._target.control, self._portal)

    @property
    def store(self) -> Store:
        """``Runtime.store``."""
        return self._target.store

    @property
    def durability(self) -> Durability:
        """``Runtime.durability``."""
        return self._target.durability

    @property
    def backend(self) -> str:
        """``Runtime.backend``."""
        return self._target.backend

    def run_lua(
        self,
        source: str | bytes,
        *,
        name: str = "script",
        args: Sequence[Any] = (),
        session_id: str | None = None,
        allow_io: bool = False,
        limits: ScriptLimits | None = None,
        output: Callable[[str], None] = print,
        isolated: bool = False,
    ) -> list[Any]:
        """Run a Lua script (see ``docs/lua.md``); what it returned. A host script runs in a
        fresh sandbox; with ``session_id``, a session script runs for that session's actor,
        in the session's own sandbox.

        ``args`` are the chunk's ``...`` and the global ``ARGS``; ``print`` lines go to
        ``output``; ``allow_io`` gives the script the full ``io`` and ``os`` libraries. An
        uncaught error raises its kind (``ScriptError`` for the script's own), a limit
        ``ScriptLimitExceededError``.

        A session script always runs in a worker process. A host script runs in this process
        (the operator's own code), or with ``isolated`` in a fresh worker process, as the HTTP
        API runs every script: a script that exhausts memory, loops in C or crashes Lua then
        costs only its worker."""
        return self._portal.run(
            self._target.run_lua(
                source,
                name=name,
                args=args,
                session_id=session_id,
                allow_io=allow_io,
                limits=limits,
                output=output,
                isolated=isolated,
            )
        )

    def session(self, session_id: str) -> SyncSessionHandle:
        """A handle on one session (``InvalidArgumentError`` for a malformed id)."""
        return SyncSessionHandle(self._target.session(session_id), self._portal)

    @property
    def path(self) -> Path | None:
        """``Runtime.path``."""
        return self._target.path

    def register(self, spec: ActorSpec) -> None:
        """Make actors of ``spec.kind`` addressable by id."""
        self._target.register(spec)

    def ref(self, kind: str, actor_id: str) -> SyncActorRef:
        """The address of an actor (live or not: sending to it activates it); a session's
        actor is addressed by the session's id or key."""
        return SyncActorRef(self._target.ref(kind, actor_id), self._portal)

    def ask(self, kind: str, actor_id: str, message: Any) -> Any:
        """Send ``message`` to an actor and return its answer."""
        return self._portal.run(self._target.ask(kind, actor_id, message))

    def tell(self, kind: str, actor_id: str, message: Any) -> None:
        """Send ``message`` to an actor without waiting for an answer."""
        self._portal.run(self._target.tell(kind, actor_id, message))

    def actors(self) -> list[ActorStatistics]:
        """Statistics of every live (and failed) actor (``rt.control.actors``)."""
        return self._target.actors()

    def statistics(self) -> ControlStatistics:
        """Counters of the runtime now (``rt.control.statistics``)."""
        return self._target.statistics()

    def cluster(self) -> ClusterStatus | None:
        """On a cluster node (``open_runtime(node=…)``): this node, how many sessions it
        serves, and the live nodes; ``None`` otherwise."""
        return self._portal.run(self._target.cluster())

    def check(self, *, fix: bool = False) -> CheckResult:
        """Compare the blob index with its data and the sessions with their indexes
        (``rt.control.check``)."""
        return self._portal.run(self._target.check(fix=fix))

    def backup(self, destination: str | os.PathLike[str]) -> BackupReport:
        """Copy the whole store into the new folder ``destination`` while the runtime goes
        on serving: a data folder as of the moment the backup began (see ``restore_backup``).
        Only a store in a data folder can be backed up."""
        return self._portal.run(self._target.backup(destination))


@final
class SyncCollectors:
    """The blocking face of ``Collectors`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: Collectors, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncCollectors of {self._target!r}>"

    def tool_result(
        self,
        session_id: str,
        tool: str,
        params: Any = None,
        result: Any = None,
        *,
        error: str | None = None,
    ) -> ArtifactRef | None:
        """Report a tool call (its ``result``, or the ``error`` it failed with); the artifact
        collected, or ``None`` if the collection config skipped it."""
        return self._portal.run(
            self._target.tool_result(session_id, tool, params, result, error=error)
        )

    def agent_output(
        self,
        session_id: str,
        agent: str,
        output: Any,
        *,
        model: str | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> ArtifactRef | None:
        """Report an agent's output (text, or any JSON-like value), the model that made it
        and its token usage; the artifact collected, or ``None`` if skipped."""
        return self._portal.run(
            self._target.agent_output(session_id, agent, output, model=model, usage=usage)
        )


@final
class SyncHooks:
    """The blocking face of ``Hooks`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: Hooks, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncHooks of {self._target!r}>"

    def register(
        self,
        point: str | HookPoint,
        function: HookFunction,
        *,
        name: str | None = None,
        priority: int = 0,
        required: bool = False,
        deadline_s: float | None = 1.0,
        phase: str = "before",
        record_input: bool = True,
    ) -> HookRegistration:
        """Run ``function`` (sync or async, taking a ``HookContext``) at ``point``; hooks of
        higher ``priority`` run first. ``name`` (default: the function's qualified name) must
        be unique; it is what the journal records and ``exact`` replay looks up.

        ``phase="after"`` registers an observer instead: it runs once the operation is
        written, sees its data with ``duration_us`` added, and cannot change anything (its
        result is ignored, and it is not journaled); a sync one with ``deadline_s=None`` is
        untimed, and called in batches shortly after (see ``notify_now``). ``record_input=False``
        keeps the input a
        hook saw out of the journal (for a hook that redacts it; ``exact`` replay then cannot
        re-run that hook)."""
        return self._target.register(
            point,
            function,
            name=name,
            priority=priority,
            required=required,
            deadline_s=deadline_s,
            phase=phase,
            record_input=record_input,
        )

    def unregister(self, name: str) -> None:
        """Remove the hook named ``name``."""
        self._target.unregister(name)

    def has(self, point: HookPoint) -> bool:
        """Whether any hook runs at ``point`` (the fast path checks this first)."""
        return self._target.has(point)

    def observes(self, point: HookPoint | None) -> bool:
        """Whether any ``after`` hook runs at ``point``."""
        return self._target.observes(point)

    def waits(self, point: HookPoint) -> bool:
        """Whether an ``after`` hook of ``point`` is async (so ``notify`` must be awaited);
        otherwise ``notify_now`` runs them all without a coroutine."""
        return self._target.waits(point)

    def notify(self, point: HookPoint, session_id: str, data: dict[str, Any]) -> None:
        """Run the ``after`` hooks of ``point``; what they return is ignored, failures and
        overruns are isolated."""
        self._portal.run(self._target.notify(point, session_id, data))

    def notify_now(self, point: HookPoint, session_id: str, data: dict[str, Any]) -> None:
        """``notify`` for a point whose ``after`` hooks are all sync (see ``waits``).

        Where every one of them is untimed (the built-ins), they are called in batches by
        ``drain`` while it runs: calling the same few functions for many operations at once
        costs far less than one call in each operation's turn, whose code is no longer in the
        CPU's caches by then."""
        self._target.notify_now(point, session_id, data)

    def notify_later(
        self,
        point: HookPoint,
        session_id: str,
        describe: Callable[[Any, Any], dict[str, Any]],
        operation: Any,
        before: Any,
        took_us: int,
    ) -> None:
        """``notify_now`` of the data ``describe(operation, before)`` with ``duration_us``
        added, built only when the observers are called: where they are batched, the
        operation's turn pays for one tuple. ``operation`` and ``before`` must not change
        (frozen records), and should hold little: the backlog keeps them until its flush."""
        self._target.notify_later(point, session_id, describe, operation, before, took_us)

    def flush(self) -> None:
        """Call the untimed observers of every operation noted since the last flush."""
        self._target.flush()

    def drain(self) -> None:
        """Until cancelled, flush the untimed observers' backlog ``FLUSH_DELAY_S`` after its
        first entry (or as soon as it holds ``BACKLOG_MAX``); afterwards call them at once."""
        self._portal.run(self._target.drain())

    def named(self, name: str) -> HookRegistration | None:
        """The hook registered as ``name``, if any."""
        return self._target.named(name)

    def statistics(self) -> HookStatistics:
        """Executions, cancels, modifications, failures and overruns so far."""
        return self._target.statistics()

    def run(
        self, point: HookPoint, session_id: str, data: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run the hooks of ``point`` in priority order; the (possibly modified) data and a
        record of each execution. Raises ``HookCancelledError`` on a cancel."""
        return self._portal.run(self._target.run(point, session_id, data))

    def decide(
        self, name: str, point: HookPoint, session_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        """What the hook registered as ``name`` decides on ``data`` now, in the form the
        journal records decisions (``missing`` if no such hook, ``failed`` if it raised,
        overran or returned nonsense); for ``exact`` replays."""
        return self._portal.run(self._target.decide(name, point, session_id, data))


@final
class SyncMetrics:
    """The blocking face of ``Metrics`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: Metrics, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncMetrics of {self._target!r}>"

    def observe(self, context: HookContext) -> None:
        """The hook: count one finished operation (and log it, at debug level)."""
        self._target.observe(context)

    def summary(self, session_id: str) -> MetricsSummary:
        """One session's counts."""
        return self._target.summary(session_id)

    def aggregate(self) -> MetricsSummary:
        """Every session's counts added up (deleted sessions' included)."""
        return self._target.aggregate()

    def forget(self, session_id: str) -> None:
        """Fold a deleted session's counts into those of deleted sessions: ``aggregate``
        keeps them, ``summary`` and ``export`` no longer name the session."""
        self._target.forget(session_id)

    def export(self) -> dict[str, Any]:
        """Plain data of every session's counts, keyed by session id, or by a keyed hash of
        it in privacy mode."""
        return self._target.export()

    def reset(self) -> None:
        """Forget every count."""
        self._target.reset()


@final
class SyncControl:
    """The blocking face of ``Control`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: Control, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncControl of {self._target!r}>"

    def actors(self, kind: str | None = None) -> builtins.list[ActorStatistics]:
        """Every live (and failed) actor, of one kind if given, least recently active first."""
        return self._target.actors(kind)

    def inspect(self, actor_id: str, kind: str = SESSION_KIND) -> ActorInspection:
        """An actor's counters (``None`` when it is not live) and, for a session, its record;
        ``ActorNotFoundError`` when it is neither live nor a session."""
        return self._portal.run(self._target.inspect(actor_id, kind))

    def statistics(self) -> ControlStatistics:
        """Counters of the runtime now (hooks flushed first)."""
        return self._target.statistics()

    def suspend(self, session_id: str) -> None:
        """Suspend an active session."""
        self._portal.run(self._target.suspend(session_id))

    def resume(self, session_id: str) -> None:
        """Resume a suspended session."""
        self._portal.run(self._target.resume(session_id))

    def complete(self, session_id: str) -> None:
        """Complete an active or suspended session."""
        self._portal.run(self._target.complete(session_id))

    def fail(self, session_id: str, reason: str | None = None) -> None:
        """Fail an active or suspended session, with a reason."""
        self._portal.run(self._target.fail(session_id, reason))

    def passivate(self, actor_id: str, kind: str = SESSION_KIND) -> None:
        """Ask a live actor to flush and leave memory after its current turn (the next
        message activates it again); ``ActorNotFoundError`` when it is not live."""
        self._target.passivate(actor_id, kind)

    def restart(self, actor_id: str, kind: str = SESSION_KIND) -> None:
        """Ask a live actor to restart from its stored state after its current turn."""
        self._target.restart(actor_id, kind)

    def stop(self, actor_id: str, kind: str = SESSION_KIND) -> None:
        """Passivate a live actor and return once it is gone (its state flushed)."""
        self._portal.run(self._target.stop(actor_id, kind))

    def clear_failure(self, actor_id: str, kind: str = SESSION_KIND) -> None:
        """Forget that an actor failed, so its next message activates it again."""
        self._target.clear_failure(actor_id, kind)

    def schedules(self, session_id: str | None = None) -> builtins.list[ScheduledReplay]:
        """Every scheduled replay (of one session, if given)."""
        return self._portal.run(self._target.schedules(session_id))

    def schedule_replay(self, session_id: str, **options: Any) -> str:
        """Schedule a replay (options as ``rt.replays.schedule``); the schedule's id."""
        return self._portal.run(self._target.schedule_replay(session_id, **options))

    def cancel_schedule(self, schedule_id: str) -> bool:
        """Stop a schedule; whether it existed."""
        return self._portal.run(self._target.cancel_schedule(schedule_id))

    def schedule_results(self, schedule_id: str) -> builtins.list[ReplayRun]:
        """The kept runs of a schedule, oldest first."""
        return self._portal.run(self._target.schedule_results(schedule_id))

    def check(self, *, fix: bool = False) -> CheckResult:
        """Compare blob index and blob data, and sessions with their indexes; ``fix``
        repairs what can be repaired."""
        return self._portal.run(self._target.check(fix=fix))

    def gc(self) -> GcReport:
        """Passivate every idle session actor, run ``check(fix=True)`` on the blob store
        (which frees chunks no blob owns, left by uploads a crash cut short), and compact the
        key-value store."""
        return self._portal.run(self._target.gc())


@final
class SyncReplays:
    """The blocking face of ``Replays`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: Replays, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncReplays of {self._target!r}>"

    def schedule(
        self,
        session_id: str,
        *,
        when: float | datetime | str | None = None,
        every_s: float | None = None,
        mode: str = "simulate",
        at: int | None = None,
        modifications: Mapping[str, Any] | None = None,
        compare_results: bool = True,
    ) -> str:
        """Replay ``session_id`` at ``when`` (default: now), then every ``every_s`` seconds
        if given; the schedule's id."""
        return self._portal.run(
            self._target.schedule(
                session_id,
                when=when,
                every_s=every_s,
                mode=mode,
                at=at,
                modifications=modifications,
                compare_results=compare_results,
            )
        )

    def cancel(self, schedule_id: str) -> bool:
        """Stop a schedule (its kept results go too); whether it existed."""
        return self._portal.run(self._target.cancel(schedule_id))

    def list(self, session_id: str | None = None) -> builtins.list[ScheduledReplay]:
        """Every schedule (of one session, if given)."""
        return self._portal.run(self._target.list(session_id))

    def results(self, schedule_id: str) -> builtins.list[ReplayRun]:
        """The kept runs of a schedule, oldest first."""
        return self._portal.run(self._target.results(schedule_id))


@final
class SyncActorRef:
    """The blocking face of ``ActorRef`` (each call runs in the runtime's loop)."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: ActorRef, portal: Portal) -> None:
        self._target = target
        self._portal = portal

    def __repr__(self) -> str:
        return f"<SyncActorRef of {self._target!r}>"

    @property
    def kind(self) -> str:
        """``ActorRef.kind``."""
        return self._target.kind

    @property
    def actor_id(self) -> str:
        """``ActorRef.actor_id``."""
        return self._target.actor_id

    def tell(self, message: Any) -> None:
        """Send ``message``, waiting while the mailbox is full; no answer."""
        self._portal.run(self._target.tell(message))

    def try_tell(self, message: Any) -> None:
        """Send ``message``, raising ``MailboxFullError`` rather than waiting for room."""
        self._portal.run(self._target.try_tell(message))

    def ask(self, message: Any) -> Any:
        """Send ``message`` and wait for the actor's answer (or its error).

        The caller sets any deadline (``anyio.fail_after``); a late answer is dropped. An
        actor that asks itself from within its turn gets its answer inline.
        """
        return self._portal.run(self._target.ask(message))
