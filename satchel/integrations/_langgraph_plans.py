"""What ``SatchelSaver`` does, as plans (see ``_langgraph_calls``): the same logic for its
sync and async methods, on the session layout of ``_langgraph_layout``.

Every ``put`` and every ``put_writes`` is one ``append_events`` call: an event naming the
checkpoint (or the task's writes) and, in the same atomic, journaled write, the variables it
sets. Each pending write is a variable of its own, so the parallel tasks LangGraph saves at
once write different variables and never have to merge.
"""

from __future__ import annotations

import base64
import builtins
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_checkpoint_metadata,
)

from satchel import (
    InvalidStateTransitionError,
    SessionNotActiveError,
    SessionNotFoundError,
)

from . import _langgraph_layout as lay
from ._langgraph_calls import RAISE, TRIES, Call, Plan, sid
from ._langgraph_upkeep import ThreadUpkeep

if TYPE_CHECKING:
    from langgraph.checkpoint.serde.base import SerializerProtocol

#: Sessions read per page when a call spans every thread.
_PAGE: Final = 200

#: Thread ids whose session key a saver keeps (every call needs it).
_KEYS: Final = 4096

#: A value waiting to be stored as an artifact: its name, bytes and custom metadata.
_Pending = tuple[str, bytes, dict[str, Any]]


def _plain(value: Any) -> bool:
    """Whether an event field is ASCII text, ``None`` or a small count (the ids and counts
    events hold, kept without a walk; ``json_event`` sees to anything else)."""
    kind = type(value)
    if kind is str:
        return bool(value.isascii())
    return value is None or (kind is int and 0 <= value < 1 << 62)


def _from_parent(unresolved: dict[str, Any], parent: Any, refs: dict[str, Any]) -> bool:
    """Move to ``refs`` the channels of ``unresolved`` whose version the parent's references
    name; whether any is left."""
    for channel, (version, ref) in parent.items():
        if unresolved.get(channel, RAISE) == version:
            refs[channel] = [version, ref]
            del unresolved[channel]
    return bool(unresolved)


class _Put(NamedTuple):
    """A put serialized (``ThreadPlans._put_job``)."""

    thread_id: str
    key: str
    ns: str
    ns_id: str
    checkpoint_id: str
    parent_id: Any
    run_id: Any
    refs: dict[str, Any]
    unresolved: dict[str, Any]
    pending: builtins.list[_Pending]
    record: dict[str, Any]
    event: dict[str, Any]


class _Writes(NamedTuple):
    """A put_writes serialized (``ThreadPlans._writes_job``)."""

    thread_id: str
    key: str
    ns: str
    ns_id: str
    checkpoint_id: str
    task_id: str
    task_path: str
    task: str  # the start of the names of the task's writes
    dumped: builtins.list[tuple[str, int, str, tuple[str, bytes]]]


def _unseen(job: _Writes, known: Collection[str] | None) -> Collection[str] | None:
    """``known`` if it holds none of the writes' regular names, else ``None``: a retried
    task's writes are read, as the view may know a name another writer removed since."""
    if known is None or not known:
        return known
    if any(idx >= 0 and name in known for name, idx, _, _ in job.dumped):
        return None
    return known


def _known_writes(job: _Writes, view: lay.View) -> Collection[str] | None:
    """The names of the checkpoint's writes ``view`` knows, if the job may trust them
    (``_unseen``), else ``None``: then the task's earlier writes are read."""
    return _unseen(job, lay.known_writes(view, job.ns_id, job.checkpoint_id))


class ThreadPlans(ThreadUpkeep):
    """The plans of ``SatchelSaver`` (a base class of it; ``serde`` is the saver's)."""

    serde: SerializerProtocol

    def _setup(self, key_prefix: str, app: str, user: str | None, inline_max: int) -> None:
        self._prefix = key_prefix
        self._app = app
        self._user = user
        self._inline_max = inline_max
        self._setup_appends()
        self._keys: dict[str, str] = {}  # thread id -> session key (a hash for a long one)

    # -- sessions ------------------------------------------------------------------------------

    def _key(self, thread_id: Any) -> str:
        tid = str(thread_id)
        key = self._keys.get(tid)
        if key is None:
            key = self._prefix + tid
            if "\0" in key or len(key.encode("utf-8", "surrogatepass")) > lay.MAX_KEY_BYTES:
                key = self._prefix + lay.HASHED + lay.digest(tid, size=40)
            if len(self._keys) >= _KEYS:
                self._keys.clear()
            self._keys[tid] = key
        return key

    def _hashed(self, key: str) -> bool:
        return key.startswith(self._prefix + lay.HASHED)

    def _scope(self) -> dict[str, Any]:
        return {"app": self._app} | ({"user": self._user} if self._user is not None else {})

    def _get(self, key: str, name: str) -> Plan[Any]:
        return (yield Call("sessions", "get_state", (sid(key), name), missing=None))

    def _names(self, key: str, prefix: str = "") -> Plan[builtins.list[str]]:
        # The core has no prefix scan of variable names: this reads every name of the thread.
        names = yield Call("sessions", "list_state", (sid(key),), missing=[])
        return [n for n in cast(builtins.list[str], names) if n.startswith(prefix)]

    def _threads(self) -> Plan[builtins.list[tuple[str, str]]]:
        """``(session key, thread id)`` of every thread of this saver's app."""
        found: builtins.list[tuple[str, str]] = []
        offset = 0
        while True:
            page = yield Call(
                "sessions", "list", (), {"offset": offset, "limit": _PAGE} | self._scope()
            )
            for info in page:
                key = info.key
                if key is None or not key.startswith(self._prefix):
                    continue
                if self._hashed(key):
                    tid = yield from self._get(key, "t")
                    if tid is None:
                        continue
                else:
                    tid = key[len(self._prefix) :]
                found.append((key, str(tid)))
            if len(page) < _PAGE:
                return found
            offset += _PAGE

    # -- values --------------------------------------------------------------------------------

    def _inline(self, dumped: tuple[str, bytes], budget: list[int]) -> lay.Ref | None:
        """The reference of a serialized value small enough to stay in its record (then
        taken from ``budget``), else ``None``."""
        size = len(dumped[1])
        if size <= self._inline_max and size <= budget[0]:
            budget[0] -= size
            return ["i", dumped[0], base64.b64encode(dumped[1]).decode("ascii")]
        return None

    def _artifact(
        self,
        dumped: tuple[str, bytes],
        name: str,
        meta: dict[str, Any],
        pending: builtins.list[_Pending],
    ) -> lay.Ref:
        """The reference of a value kept as the artifact ``name``, which joins ``pending``
        (named only when needed: its name costs a hash)."""
        type_, data = dumped
        pending.append((name, data, {**meta, "serde_type": type_}))
        return ["a", type_, name, len(data)]

    def _store(
        self, key: str, thread_id: str, pending: builtins.list[_Pending], kind: str
    ) -> Plan[None]:
        """Store the artifacts of a write (before the record that names them: a crash between
        leaves unreferenced artifacts, which ``collect_garbage`` removes)."""
        if pending and key not in self._known:
            yield from self._create(key, thread_id)
        for name, data, meta in pending:
            call = Call(
                "artifacts",
                "store",
                (sid(key), name, data),
                {"type": kind, "metadata": meta},
            )
            for _ in range(TRIES):
                try:
                    yield call
                    break
                except SessionNotFoundError:
                    self._known.discard(key)
                    yield from self._create(key, thread_id)
                except SessionNotActiveError as refused:
                    yield from self._resume(key, refused)
            else:
                yield call

    def _doc(self, value: Any) -> builtins.list[Any]:
        """A JSON-like document of ``value``: itself if satchel keeps it as it is, else its
        serialization."""
        if lay.json_like(value):
            return ["j", value]
        type_, data = self.serde.dumps_typed(value)
        return ["s", type_, base64.b64encode(data).decode("ascii")]

    # -- put -----------------------------------------------------------------------------------

    def _put_job(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> _Put:
        """What a put writes, serialized: all of it but what depends on the thread's view."""
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        ns = str(conf.get("checkpoint_ns", ""))
        parent_id = conf.get("checkpoint_id")
        checkpoint_id = lay.check_id(checkpoint["id"])
        values = checkpoint["channel_values"]
        pending: builtins.list[_Pending] = []
        budget = [lay.RECORD_INLINE_BUDGET]
        refs: dict[str, builtins.list[Any]] = {}
        for channel, version in new_versions.items():
            if channel not in values:
                refs[channel] = [version, lay.EMPTY]
                continue
            dumped = self.serde.dumps_typed(values[channel])
            ref = self._inline(dumped, budget)
            if ref is None:
                name = lay.channel_blob(ns, channel, version)
                meta = {"namespace": ns, "channel": channel, "version": str(version)}
                ref = self._artifact(dumped, name, meta, pending)
            refs[channel] = [version, ref]
        versions = checkpoint["channel_versions"]
        unresolved = {c: v for c, v in versions.items() if c not in refs}
        md = get_checkpoint_metadata(config, metadata)
        md.pop("writes", None)  # type: ignore[typeddict-item]
        run_id = md.get("run_id")
        skeleton = dict(checkpoint)
        del skeleton["channel_values"]
        type_, data = self.serde.dumps_typed(skeleton)
        cp_doc = ["s", type_, base64.b64encode(data).decode("ascii")]
        md_doc = self._doc(md)  # get_checkpoint_metadata made a new dict
        record = {"ns": ns, "id": checkpoint_id, "p": parent_id, "cp": cp_doc, "md": md_doc}
        event = self._event("put", ns, checkpoint_id, parent_id, run_id)
        key = self._key(thread_id)
        return _Put(
            thread_id, key, ns, lay.nsid(ns), checkpoint_id, parent_id, run_id, refs,
            unresolved, pending, record, event,
        )  # fmt: skip

    def _put_state(self, job: _Put, view: lay.View, full: dict[str, Any]) -> dict[str, Any]:
        """The variables a put sets, ``full`` its channel references."""
        record = job.record  # the same each try: a refused append keeps none of it
        record["v"] = full
        ns_id, checkpoint_id = job.ns_id, job.checkpoint_id
        state: dict[str, Any] = {lay.checkpoint_key(ns_id, checkpoint_id): record}
        head = view.heads.get(ns_id)
        if head is None or checkpoint_id >= head:
            state[lay.head_key(ns_id)] = checkpoint_id
        if job.run_id is not None:
            state[lay.run_key(str(job.run_id), ns_id, checkpoint_id)] = 1
        if self._hashed(job.key):
            state["t"] = job.thread_id
        return state

    def _put_landed(
        self, job: _Put, view: lay.View, pos: int, full: dict[str, Any], state: dict[str, Any]
    ) -> RunnableConfig:
        """The view once the put landed at ``pos``; the put's config."""
        head = lay.head_key(job.ns_id) in state
        self._keep(
            job.key, view, lay.after_put(view, pos, job.ns_id, job.checkpoint_id, full, head)
        )
        return {
            "configurable": {
                "thread_id": job.thread_id,
                "checkpoint_ns": job.ns,
                "checkpoint_id": job.checkpoint_id,
            }
        }

    def _put_at_once(self, job: _Put) -> tuple[lay.View, dict[str, Any], dict[str, Any]] | None:
        """``(view, channel references, variables)`` of a put that is one append as it is
        (its view kept, no value to store, its parent's channels known, nothing of this
        saver in flight on the thread), else ``None``."""
        view = self._views.get(job.key)
        if view is None or job.pending or self._busy(job.key):
            return None
        full = job.refs
        if job.unresolved:
            last = view.last.get(job.ns_id)
            if last is None or not job.parent_id or last[0] != job.parent_id:
                return None
            full = dict(job.refs)
            if _from_parent(dict(job.unresolved), last[1], full):
                return None
        return view, full, self._put_state(job, view, full)

    def _put_plan(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Plan[RunnableConfig]:
        return (
            yield from self._put_job_plan(self._put_job(config, checkpoint, metadata, new_versions))
        )

    def _put_job_plan(self, job: _Put) -> Plan[RunnableConfig]:
        key = job.key
        if job.pending:
            yield from self._store(key, job.thread_id, job.pending, lay.CHANNEL_TYPE)
        ticket = yield from self._turn(key)
        try:
            refused = 0
            # A pass reads the view again or commits; only refused commits count against TRIES.
            for _ in range(2 * TRIES):
                view = self._views.get(key)
                if view is None:  # read (or made) first
                    yield from self._view(key, job.thread_id)
                    continue
                full = job.refs
                if job.unresolved:
                    full = dict(job.refs)
                    unresolved = dict(job.unresolved)
                    yield from self._resolve(key, job.ns_id, job.parent_id, view, unresolved, full)
                state = self._put_state(job, view, full)
                pos = yield from self._commit(key, job.thread_id, job.event, state, view)
                if pos is not None:
                    return self._put_landed(job, view, pos, full, state)
                refused += 1
                if refused == TRIES:
                    break
        finally:
            self._leave(key, ticket)
        raise InvalidStateTransitionError(
            f"the checkpoint {job.checkpoint_id!r} of thread {job.thread_id[:200]!r} was not "
            f"saved: other writers changed the thread {TRIES} times while it was being saved"
        )

    def _event(
        self, kind: str, ns: str, checkpoint_id: str, other: Any, more: Any
    ) -> dict[str, Any]:
        """The event of a put (``other``: parent, ``more``: run id) or a put_writes (task id,
        number of writes)."""
        keys = ("parent", "run") if kind == "put" else ("task", "n")
        event = {"lg": kind, "ns": ns, "id": checkpoint_id, keys[0]: other, keys[1]: more}
        if _plain(other) and _plain(more):
            return event  # the common case, known JSON-like without a walk
        return lay.json_event(event)

    def _resolve(
        self,
        key: str,
        ns_id: str,
        parent_id: Any,
        view: lay.View,
        unresolved: dict[str, Any],
        refs: dict[str, Any],
    ) -> Plan[None]:
        """Fill ``refs`` with the channels not new here: each keeps the value of its version,
        from the parent's record (each record names every channel's value; the parent is
        most often the checkpoint the saver put last, ``view`` knows its references), else
        from another of the namespace's."""
        if parent_id:
            last = view.last.get(ns_id)
            if last is not None and last[0] == parent_id:
                parent_refs: Any = last[1]
            else:
                parent = yield from self._get(key, lay.checkpoint_key(ns_id, str(parent_id)))
                parent_refs = (parent or {"v": {}})["v"]
            _from_parent(unresolved, parent_refs, refs)
        if unresolved:
            yield from self._resolve_elsewhere(key, ns_id, unresolved, refs)
        for channel, version in unresolved.items():
            # No stored value anywhere: recorded as such, so the next put finds it in its
            # parent instead of searching every record of the namespace again.
            refs[channel] = [version, lay.MISSING]

    def _resolve_elsewhere(
        self, key: str, ns_id: str, unresolved: dict[str, Any], refs: dict[str, Any]
    ) -> Plan[None]:
        """Find the values of ``unresolved`` channel versions in the namespace's records,
        newest first (rare: LangGraph names the parent, whose record has them). What stays
        unresolved has no stored value (``InMemorySaver`` skips such channels too)."""
        for name in reversed((yield from self._names(key, f"c:{ns_id}:"))):
            if not unresolved:
                return
            record = yield from self._get(key, name)
            for channel, (version, ref) in (record or {"v": {}})["v"].items():
                if unresolved.get(channel, RAISE) == version and ref not in lay.NO_VALUE:
                    refs[channel] = [version, ref]
                    del unresolved[channel]

    # -- put_writes ----------------------------------------------------------------------------

    def _writes_job(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> _Writes:
        """A put_writes serialized: each write's variable name, index, channel and value."""
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        ns = str(conf.get("checkpoint_ns", ""))
        checkpoint_id = lay.check_id(str(conf["checkpoint_id"]))
        ns_id = lay.nsid(ns)
        task = lay.writes_prefix(ns_id, checkpoint_id) + lay.task_slots(task_id)
        dumped = []
        for n, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, n)
            dumped.append((task + str(idx), idx, channel, self.serde.dumps_typed(value)))
        key = self._key(thread_id)
        return _Writes(thread_id, key, ns, ns_id, checkpoint_id, task_id, task_path, task, dumped)

    def _writes_state(
        self, job: _Writes, there: Any
    ) -> tuple[dict[str, Any], builtins.list[_Pending]]:
        """The variables of the writes not ``there`` (as LangGraph's savers: a regular write,
        idx >= 0, is kept as first written, a retried task does not repeat it; a special one,
        an error or interrupt, replaces the one before), and the values to store first. One
        variable per write: tasks writing at once touch different variables, and a step's
        writes cost what they hold, not what the step's other tasks wrote before."""
        budget = [lay.RECORD_INLINE_BUDGET]
        pending: builtins.list[_Pending] = []
        state: dict[str, Any] = {}
        ns, checkpoint_id, task_id = job.ns, job.checkpoint_id, job.task_id
        for name, idx, channel, value in job.dumped:
            if idx >= 0 and name in there:
                continue
            ref = self._inline(value, budget)
            if ref is None:
                meta = {"namespace": ns, "checkpoint_id": checkpoint_id, "channel": channel}
                blob = lay.write_blob(ns, checkpoint_id, task_id, idx)
                ref = self._artifact(value, blob, meta, pending)
            state[name] = {"task": task_id, "path": job.task_path, "ch": channel, "idx": idx}
            state[name]["val"] = ref
        return state, pending

    def _writes_landed(self, job: _Writes, pos: int, state: dict[str, Any]) -> None:
        """The view takes the writes landed at ``pos`` if nothing else came in between (as
        it is now: a put of this saver may have moved it meanwhile)."""
        current = self._views.get(job.key)
        if current is not None and pos == current.pos + 1:
            new = lay.after_writes(current, pos, job.ns_id, job.checkpoint_id, state)
            self._keep(job.key, current, new)

    def _writes_at_once(
        self, job: _Writes
    ) -> tuple[lay.View, dict[str, Any], dict[str, Any]] | None:
        """``(view, variables, event)`` of writes that are one append as they are (none of
        them there, known without a read, no value to store, nothing of this saver in flight
        on the thread), else ``None``."""
        view = self._views.get(job.key)
        if view is None or self._busy(job.key):
            return None
        known = _known_writes(job, view)
        if known is None:
            return None
        state, pending = self._writes_state(job, known)
        if pending or not state:
            return None
        return view, state, self._writes_event(job, state)

    def _writes_event(self, job: _Writes, state: dict[str, Any]) -> dict[str, Any]:
        return self._event("writes", job.ns, job.checkpoint_id, job.task_id, len(state))

    def _put_writes_plan(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> Plan[None]:
        return (yield from self._writes_plan(self._writes_job(config, writes, task_id, task_path)))

    def _writes_plan(self, job: _Writes) -> Plan[None]:
        view = self._views.get(job.key)
        if view is None or _known_writes(job, view) is None:
            # Read, then appended expecting no position: its turn is needed for the append
            # only (held through the read, a fan-out's writes would read one after another).
            yield from self._writes_tries(job, held=False)
            return
        ticket = yield from self._turn(job.key)  # held through the reads: see _turn
        try:
            yield from self._writes_tries(job, held=True)
        finally:
            self._leave(job.key, ticket)

    def _writes_tries(self, job: _Writes, *, held: bool) -> Plan[None]:
        key = job.key
        stored: set[str] = set()
        for _ in range(TRIES):
            # The writes of a checkpoint this saver put are known without a read (the append
            # expects the log unchanged since), else read.
            if not held and self._busy(key):
                yield from self._settle(key)
            view = self._views.get(key)
            known = None
            if view is not None:
                known = _known_writes(job, view)
            there: Any = known
            if known is None:
                there = {}
                if any(idx >= 0 for _, idx, _, _ in job.dumped):
                    read = Call("sessions", "state", (sid(key),), {"prefix": job.task}, missing={})
                    there = yield read
                    if not held:  # behind the appends sent meanwhile (a put expecting the log)
                        yield from self._settle(key)
            state, pending = self._writes_state(job, there)
            if not state:
                return
            fresh = [p for p in pending if p[0] not in stored]
            if fresh:
                yield from self._store(key, job.thread_id, fresh, lay.WRITE_TYPE)
                stored.update(p[0] for p in fresh)
            event = self._writes_event(job, state)
            pos: int | None
            if view is None or known is None:
                pos = yield from self._append(key, job.thread_id, event, state, forget=False)
            else:
                pos = yield from self._commit(key, job.thread_id, event, state, view)
                if pos is None:
                    continue
            self._writes_landed(job, pos, state)
            return
        raise InvalidStateTransitionError(
            f"the writes of task {job.task_id[:200]!r} were not saved: other writers changed "
            f"thread {job.thread_id[:200]!r} {TRIES} times while they were being saved"
        )
