"""``open_runtime``: a store, a supervisor on it, and the operations hosts call."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, final

import anyio

from satchel.actors import DeadlineBoard, register_session_kinds
from satchel.actors import _validate as validate
from satchel.actors._control import CheckResult, Control, ControlStatistics
from satchel.actors._kinds import SESSION_IDLE_S
from satchel.actors._model import SessionConfig
from satchel.actors.artifacts._artifact_manager import ArtifactManager
from satchel.actors.artifacts._audit import checked_max_entries
from satchel.actors.artifacts._collect import CollectionConfig, Collectors, register_hook_kind
from satchel.actors.cluster import ClusterStatus, Node
from satchel.actors.hooks._builtin_hooks import Metrics
from satchel.actors.hooks._builtin_hooks import install as install_builtin_hooks
from satchel.actors.hooks._events import EventBus
from satchel.actors.hooks._hooks import Hooks
from satchel.actors.hooks._schedules import MIN_EVERY_S, Replays
from satchel.actors.sessions._handle import SessionHandle
from satchel.actors.sessions._host_state import HostState
from satchel.actors.sessions._layout_upgrade import move_earlier_update_entries
from satchel.actors.sessions._manager import SessionManager
from satchel.actors.sessions._session import SESSION_KIND
from satchel.actors.sessions._session_scripts import RunScript
from satchel.runtime import (
    ActorRef,
    ActorSpec,
    ActorStatistics,
    Strategy,
    Supervisor,
    open_supervisor,
)
from satchel.runtime._errors import InvalidArgumentError, ValidationError
from satchel.scripting import (
    LuaState,
    ScriptApi,
    ScriptLimits,
    ScriptWorkers,
    WorkerPool,
    api_names,
)
from satchel.scripting._api import run_session_script
from satchel.storage import (
    SHARED_GRACE_S,
    Backend,
    BackupReport,
    BlobLimits,
    Durability,
    GroupCommit,
    Store,
    StoreReminders,
    backup_store,
    checked_durability,
    is_networked,
    open_networked_store,
    open_store,
)

from ._cluster import ClusterNode, open_node


@final
class Runtime:
    """An open satchel runtime. Get one from ``open_runtime``; every method runs in the event
    loop that opened it."""

    def __init__(
        self,
        store: Store,
        supervisor: Supervisor,
        backend: str,
        sessions: SessionManager,
        artifacts: ArtifactManager,
        hooks: Hooks,
        collectors: Collectors,
        metrics: Metrics,
        events: EventBus,
        replays: Replays,
        workers: WorkerPool,
        durability: Durability = "process",
        group: GroupCommit | None = None,
        cluster: ClusterNode | None = None,
    ) -> None:
        self.store = store
        # On a cluster node: its placement, shared reminders and event relay.
        self._cluster = cluster
        self.supervisor = supervisor
        self.backend = backend
        self.sessions = sessions
        self.artifacts = artifacts
        #: Lifecycle hooks: ``rt.hooks.register(point, function, priority=...)``.
        self.hooks = hooks
        #: Reports that become artifacts: ``rt.collectors.tool_result(...)``, ``agent_output``.
        self.collectors = collectors
        #: What the built-in metrics hook counted (empty unless ``builtin_hooks`` is on).
        self.metrics = metrics
        #: Live journal events: ``async with rt.events.subscribe(session_id=...) as events``.
        self.events = events
        #: Scheduled replays: ``rt.replays.schedule(session_id, every_s=3600)``.
        self.replays = replays
        #: ``process`` or ``machine`` (see ``open_runtime``).
        self.durability = durability
        #: Inspect and steer live actors: ``rt.control.actors()``, ``rt.control.stop(id)``.
        self.control = Control(supervisor, sessions, replays, hooks, store, backend, group)
        #: The worker processes session scripts (and scripts sent over HTTP) run in.
        self.script_workers = workers

    async def run_lua(
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
        if session_id is not None:
            if allow_io:
                raise InvalidArgumentError("session scripts never get io (allow_io)")
            checked = validate.session_id(session_id)[0]
            message = RunScript(source, name, tuple(args), output, limits or ScriptLimits())
            answer: list[Any] = await self.supervisor.ref(SESSION_KIND, checked).ask(message)
            return answer
        api = ScriptApi(self.sessions, self.artifacts, HostState(self.store.records))
        if isolated:
            return await self.script_workers.run(
                source,
                api.dispatch,
                name=name,
                args=args,
                output=output,
                limits=limits,
                allow_io=allow_io,
            )
        state = LuaState(limits or ScriptLimits(), allow_io=allow_io)
        state.define(api_names())
        return await state.run(source, api.dispatch, name=name, args=args, output=output)

    def session(self, session_id: str) -> SessionHandle:
        """A handle on one session (``InvalidArgumentError`` for a malformed id)."""
        return self.sessions.handle(session_id)

    @property
    def path(self) -> Path | None:
        """The data folder, or ``None`` for an in-memory runtime."""
        return self.store.path

    def register(self, spec: ActorSpec) -> None:
        """Make actors of ``spec.kind`` addressable by id."""
        self.supervisor.register(spec)

    def ref(self, kind: str, actor_id: str) -> ActorRef:
        """The address of an actor (live or not: sending to it activates it); a session's
        actor is addressed by the session's id or key."""
        if kind == SESSION_KIND:
            actor_id = validate.session_id(actor_id)[0]  # one actor per session, whatever names it
        return self.supervisor.ref(kind, actor_id)

    async def ask(self, kind: str, actor_id: str, message: Any) -> Any:
        """Send ``message`` to an actor and return its answer."""
        return await self.ref(kind, actor_id).ask(message)

    async def tell(self, kind: str, actor_id: str, message: Any) -> None:
        """Send ``message`` to an actor without waiting for an answer."""
        await self.ref(kind, actor_id).tell(message)

    def actors(self) -> list[ActorStatistics]:
        """Statistics of every live (and failed) actor (``rt.control.actors``)."""
        return self.control.actors()

    def statistics(self) -> ControlStatistics:
        """Counters of the runtime now (``rt.control.statistics``)."""
        return self.control.statistics()

    async def cluster(self) -> ClusterStatus | None:
        """On a cluster node (``open_runtime(node=…)``): this node, how many sessions it
        serves, and the live nodes; ``None`` otherwise."""
        return None if self._cluster is None else await self._cluster.placement.status()

    async def check(self, *, fix: bool = False) -> CheckResult:
        """Compare the blob index with its data and the sessions with their indexes
        (``rt.control.check``)."""
        return await self.control.check(fix=fix)

    async def backup(self, destination: str | os.PathLike[str]) -> BackupReport:
        """Copy the whole store into the new folder ``destination`` while the runtime goes
        on serving: a data folder as of the moment the backup began (see ``restore_backup``).
        Only a store in a data folder can be backed up."""
        return await backup_store(self.store, destination)


@asynccontextmanager
async def open_runtime(
    path: str | os.PathLike[str] | None = None,
    *,
    store: Backend | str = "rocksdb",
    objects: str | None = None,
    limits: BlobLimits | None = None,
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    resident_cap: int = 10_000,
    grace: float = 5.0,
    session_defaults: SessionConfig | None = None,
    file_roots: Sequence[str | os.PathLike[str]] | None = None,
    audit_max_entries: int = 1000,
    collection: CollectionConfig | None = None,
    builtin_hooks: bool = False,
    metrics_privacy: bool = False,
    durability: Durability = "process",
    script_workers: ScriptWorkers | None = None,
    actor_idle_s: float | None = SESSION_IDLE_S,
    min_replay_interval_s: float = MIN_EVERY_S,
    node: Node | None = None,
) -> AsyncIterator[Runtime]:
    """Open the runtime on the data folder ``path`` (or ``$SATCHEL_DATA``, or ``./.satchel``).

    ``store="memory"`` keeps nothing; ``store="postgresql://…"`` keeps everything in
    PostgreSQL, with blob values of 64 KiB and more in the S3 bucket ``objects`` names
    (``"s3://bucket?endpoint=…"``) when it is given. ``session_defaults`` is the config of a session
    created without one (fields given at creation override it). ``store_file`` reads only
    under ``file_roots`` (default: the current folder; ``[]`` for none). The audit log of
    each shared artifact name keeps its newest ``audit_max_entries`` entries. ``collection``
    says which reported tool results and agent outputs become artifacts. ``builtin_hooks``
    turns on the operation log and the per-session metrics (``rt.metrics``), whose exports hash
    session ids with ``metrics_privacy``. ``durability="process"`` (default): an acknowledged
    write survives a killed process; ``"machine"``: it survives power loss — every write is
    synced, the journaled writes of many sessions by one group commit (docs/durability.md).
    ``script_workers`` sizes the pool of worker processes session scripts run in. A session's
    actor leaves memory (and lets go of its script worker) after ``actor_idle_s`` seconds
    without a message (``None``: never; its data stays, and the next call brings it back);
    at most ``resident_cap`` actors stay in memory at once. A scheduled replay repeats no
    more often than every ``min_replay_interval_s`` seconds. With ``node`` (on a
    ``postgresql://`` store), the runtime is one node of a cluster: it serves a session only
    while it holds the session's lease, and refuses the others with ``SessionMovedError``
    (docs/cluster.md).
    On exit every actor finishes its turn and flushes within ``grace`` seconds, then the
    store closes.
    """
    checked_max_entries(audit_max_entries)
    if actor_idle_s is not None and not (
        isinstance(actor_idle_s, int | float) and 0 < actor_idle_s < math.inf
    ):
        raise ValidationError(f"actor_idle_s must be a positive number, not {actor_idle_s!r}")
    if not (isinstance(min_replay_interval_s, int | float) and min_replay_interval_s > 0):
        raise ValidationError(
            f"min_replay_interval_s must be a positive number, not {min_replay_interval_s!r}"
        )
    checked_durability(durability)
    try:
        async with (
            _opened_store(path, store, objects, limits) as opened,
            open_node(store, node) as cluster,
        ):
            # On a shared store, another process's upload in flight is pending too.
            await opened.blobs.recover(grace_s=SHARED_GRACE_S if opened.networked else 0.0)
            await move_earlier_update_entries(opened.records)
            async with WorkerPool(script_workers, api_names()) as workers:
                group = None
                if durability == "machine" and opened.kv is not None:
                    # (A networked store commits every write durably: no group to form.)
                    opened.kv.default_sync = True
                    group = GroupCommit(opened.kv)
                async with open_supervisor(
                    strategy=strategy,
                    resident_cap=resident_cap,
                    reminder_store=(
                        StoreReminders(opened.records)
                        if cluster is None
                        else cluster.reminder_store(opened.records)
                    ),
                    grace=grace,
                ) as supervisor:
                    placement = None if cluster is None else cluster.placement
                    if placement is not None:
                        placement.attach(supervisor)
                    board = DeadlineBoard(supervisor)
                    hooks = Hooks()
                    supervisor.spawn_system_task(hooks.drain)
                    metrics = Metrics(privacy=metrics_privacy)
                    if builtin_hooks:
                        install_builtin_hooks(hooks, metrics)
                    events = EventBus(opened.records)
                    if cluster is not None:
                        cluster.relay_events(events, opened.records, supervisor)
                    services = register_session_kinds(
                        opened,
                        supervisor,
                        board,
                        hooks=hooks,
                        events=events,
                        audit_max_entries=audit_max_entries,
                        group=group,
                        on_deleted=(metrics.forget,) if builtin_hooks else (),
                        idle_s=actor_idle_s,
                        fence=None if placement is None else placement.fence,
                        leases=placement,
                    )
                    roots = [Path.cwd()] if file_roots is None else file_roots
                    artifacts = ArtifactManager(
                        opened.records,
                        opened.blobs,
                        supervisor,
                        services.storage,
                        roots,
                        services.audit,
                        hooks,
                        data_folder=opened.path,
                    )
                    sessions = SessionManager(
                        opened.records,
                        supervisor,
                        board,
                        session_defaults or SessionConfig(),
                        artifacts,
                        hooks,
                        opened.blobs,
                        events,
                        services.budgets,
                    )
                    if cluster is not None:
                        sessions.calls = cluster.session_calls()
                    services.scripts.run = functools.partial(
                        run_session_script, sessions, artifacts, HostState(opened.records), workers
                    )
                    services.scripts.release = workers.release_slot
                    await board.start()
                    collectors = Collectors(supervisor, opened.records, collection)
                    replays = register_hook_kind(
                        supervisor,
                        artifacts,
                        hooks,
                        collectors,
                        sessions,
                        opened.records,
                        min_replay_interval_s,
                    )
                    yield Runtime(
                        opened,
                        supervisor,
                        store,
                        sessions,
                        artifacts,
                        hooks,
                        collectors,
                        metrics,
                        events,
                        replays,
                        workers,
                        durability,
                        group,
                        cluster,
                    )
    except BaseExceptionGroup as group_error:
        # The runtime's task groups wrap what the host's own code raised in its block: one
        # error comes out as itself, so ``except KeyError:`` around the block still works.
        single = _single(group_error)
        if single is None:
            raise
        raise single from single.__cause__


@asynccontextmanager
async def _opened_store(
    path: str | os.PathLike[str] | None,
    store: str,
    objects: str | None,
    limits: BlobLimits | None,
) -> AsyncIterator[Store]:
    """The store ``open_runtime`` runs on: a data folder, memory, or a networked store."""
    if is_networked(store):
        opened = await open_networked_store(store, objects, limits=limits)
        try:
            yield opened
        finally:
            with anyio.CancelScope(shield=True):
                await opened.aclose()
        return
    if objects is not None:
        raise ValidationError("an object store (objects=) goes with a postgresql:// store only")
    if store not in ("rocksdb", "memory"):
        raise ValidationError(
            f"unknown store {store!r}; use 'rocksdb', 'memory' or a postgresql:// URL"
        )
    with open_store(path, backend=store, limits=limits) as local:  # type: ignore[arg-type]
        yield local


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception a (nested) exception group holds, if it holds exactly one."""
    found: BaseException = group
    while isinstance(found, BaseExceptionGroup):
        if len(found.exceptions) != 1:
            return None
        found = found.exceptions[0]
    return found
