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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)

from satchel import (
    IntegrityError,
    SessionNotActiveError,
    SessionNotFoundError,
)

from . import _langgraph_layout as lay
from ._langgraph_calls import RAISE, Call, Emit, ListPlan, Plan
from ._langgraph_upkeep import ThreadUpkeep, _sid

if TYPE_CHECKING:
    from langgraph.checkpoint.serde.base import SerializerProtocol

#: Sessions read per page when a call spans every thread.
_PAGE: Final = 200

#: A value waiting to be stored as an artifact: its name, bytes and custom metadata.
_Pending = tuple[str, bytes, dict[str, Any]]


class ThreadPlans(ThreadUpkeep):
    """The plans of ``SatchelSaver`` (a base class of it; ``serde`` is the saver's)."""

    serde: SerializerProtocol

    def _setup(self, key_prefix: str, app: str, user: str | None, inline_max: int) -> None:
        self._prefix = key_prefix
        self._app = app
        self._user = user
        self._inline_max = inline_max
        self._known: set[str] = set()  # session keys known to exist (a hint; misses recover)

    # -- sessions ------------------------------------------------------------------------------

    def _key(self, thread_id: Any) -> str:
        tid = str(thread_id)
        key = self._prefix + tid
        if "\0" in key or len(key.encode("utf-8", "surrogatepass")) > lay.MAX_KEY_BYTES:
            return self._prefix + lay.HASHED + lay.digest(tid, size=40)
        return key

    def _hashed(self, key: str) -> bool:
        return key.startswith(self._prefix + lay.HASHED)

    def _scope(self) -> dict[str, Any]:
        return {"app": self._app} | ({"user": self._user} if self._user is not None else {})

    def _create(self, key: str, thread_id: str) -> Plan[None]:
        options = {"key": key, "name": lay.session_name(thread_id), "tags": ["langgraph"]}
        yield Call("sessions", "create", (), options | self._scope(), exists_ok=True)
        self._known.add(key)

    def _append(
        self,
        key: str,
        thread_id: str,
        event: dict[str, Any],
        state: dict[str, Any],
        delete: Sequence[str] = (),
        expect: int | None = None,
    ) -> Plan[int]:
        """One ``append_events`` on the thread's session, creating it first if needed and
        resuming it if a policy suspended it."""
        if key not in self._known:
            yield from self._create(key, thread_id)
        call = Call(
            "sessions",
            "append_events",
            (_sid(key), [lay.json_event(event)]),
            {"state": state, "delete": list(delete), "expect_position": expect},
        )
        try:
            return cast(int, (yield call))
        except SessionNotFoundError:  # deleted meanwhile (by another saver on this runtime)
            self._known.discard(key)
            yield from self._create(key, thread_id)
        except SessionNotActiveError:
            # A thread suspended (by an idle timeout) takes writes again; a completed, failed
            # or archived one does not, and the error says so.
            info = yield Call("sessions", "get", (_sid(key),))
            if info.status != "suspended":
                raise
            yield Call("sessions", "resume", (_sid(key),))
        return cast(int, (yield call))

    def _get(self, key: str, name: str) -> Plan[Any]:
        return (yield Call("sessions", "get_state", (_sid(key), name), missing=None))

    def _names(self, key: str, prefix: str = "") -> Plan[builtins.list[str]]:
        # The core has no prefix scan of variable names: this reads every name of the thread.
        names = yield Call("sessions", "list_state", (_sid(key),), missing=[])
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

    def _ref(
        self,
        dumped: tuple[str, bytes],
        name: str,
        meta: dict[str, Any],
        pending: builtins.list[_Pending],
        budget: list[int],
    ) -> lay.Ref:
        """The reference of a serialized value; one kept as an artifact joins ``pending``."""
        type_, data = dumped
        if len(data) <= self._inline_max and len(data) <= budget[0]:
            budget[0] -= len(data)
            return ["i", type_, base64.b64encode(data).decode("ascii")]
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
                (_sid(key), name, data),
                {"type": kind, "metadata": meta},
            )
            try:
                yield call
            except SessionNotFoundError:
                self._known.discard(key)
                yield from self._create(key, thread_id)
                yield call

    def _load(self, key: str, ref: lay.Ref) -> Plan[tuple[bool, Any]]:
        """``(found, value)`` of a reference."""
        if ref[0] == "i":
            return True, self.serde.loads_typed((ref[1], base64.b64decode(ref[2])))
        if ref[0] == "a":
            call = Call("artifacts", "get", (_sid(key), ref[2]), missing=None)
            artifact = yield call
            if artifact is None:
                raise IntegrityError(
                    f"the value artifact {ref[2]!r} a checkpoint names is gone from {key!r}"
                )
            return True, self.serde.loads_typed((ref[1], artifact.content))
        return False, None

    def _doc(self, value: Any) -> builtins.list[Any]:
        """A JSON-like document of ``value``: itself if satchel keeps it as it is, else its
        serialization."""
        if lay.json_like(value):
            return ["j", value]
        type_, data = self.serde.dumps_typed(value)
        return ["s", type_, base64.b64encode(data).decode("ascii")]

    def _undoc(self, doc: builtins.list[Any]) -> Any:
        if doc[0] == "j":
            return doc[1]
        return self.serde.loads_typed((doc[1], base64.b64decode(doc[2])))

    # -- put -----------------------------------------------------------------------------------

    def _put_plan(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Plan[RunnableConfig]:
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        ns = str(conf.get("checkpoint_ns", ""))
        parent_id = conf.get("checkpoint_id")
        checkpoint_id = lay.check_id(checkpoint["id"])
        key, ns_id = self._key(thread_id), lay.nsid(ns)

        values = checkpoint["channel_values"]
        skeleton = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        pending: builtins.list[_Pending] = []
        budget = [lay.RECORD_INLINE_BUDGET]
        refs: dict[str, builtins.list[Any]] = {}
        for channel, version in new_versions.items():
            if channel not in values:
                refs[channel] = [version, lay.EMPTY]
                continue
            meta = {"namespace": ns, "channel": channel, "version": str(version)}
            name = lay.channel_blob(ns, channel, version)
            dumped = self.serde.dumps_typed(values[channel])
            refs[channel] = [version, self._ref(dumped, name, meta, pending, budget)]
        # A channel not new here keeps the value of its version: from the parent's record
        # (each record names every channel's value), else from another of the namespace's.
        versions = checkpoint["channel_versions"]
        unresolved = {c: v for c, v in versions.items() if c not in refs}
        if unresolved and parent_id:
            parent = yield from self._get(key, lay.checkpoint_key(ns_id, str(parent_id)))
            for channel, (version, ref) in (parent or {"v": {}})["v"].items():
                if unresolved.get(channel, RAISE) == version:
                    refs[channel] = [version, ref]
                    del unresolved[channel]
        if unresolved:
            yield from self._resolve_elsewhere(key, ns_id, unresolved, refs)
        for channel, version in unresolved.items():
            # No stored value anywhere: recorded as such, so the next put finds it in its
            # parent instead of searching every record of the namespace again.
            refs[channel] = [version, lay.MISSING]

        md = get_checkpoint_metadata(config, metadata)
        md.pop("writes", None)  # type: ignore[typeddict-item]
        run_id = md.get("run_id")
        type_, data = self.serde.dumps_typed(skeleton)
        record = {
            "ns": ns,
            "id": checkpoint_id,
            "p": parent_id,
            "cp": ["s", type_, base64.b64encode(data).decode("ascii")],
            "md": self._doc(dict(md)),
            "v": refs,
        }
        state: dict[str, Any] = {lay.checkpoint_key(ns_id, checkpoint_id): record}
        head = yield from self._get(key, lay.head_key(ns_id))
        if head is None or checkpoint_id >= head:
            state[lay.head_key(ns_id)] = checkpoint_id
        if run_id is not None:
            state[lay.run_key(str(run_id), ns_id, checkpoint_id)] = 1
        if self._hashed(key):
            state["t"] = thread_id
        yield from self._store(key, thread_id, pending, lay.CHANNEL_TYPE)
        event = {"lg": "put", "ns": ns, "id": checkpoint_id, "parent": parent_id, "run": run_id}
        yield from self._append(key, thread_id, event, state)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint_id,
            }
        }

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

    def _put_writes_plan(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> Plan[None]:
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        ns = str(conf.get("checkpoint_ns", ""))
        checkpoint_id = lay.check_id(str(conf["checkpoint_id"]))
        key, ns_id = self._key(thread_id), lay.nsid(ns)
        prefix = lay.writes_prefix(ns_id, checkpoint_id)
        dumped = [
            (WRITES_IDX_MAP.get(channel, n), channel, self.serde.dumps_typed(value))
            for n, (channel, value) in enumerate(writes)
        ]
        # One variable per write: tasks writing at once touch different variables, and a
        # step's writes cost what they hold, not what the step's other tasks wrote before.
        budget = [lay.RECORD_INLINE_BUDGET]
        pending: builtins.list[_Pending] = []
        state: dict[str, Any] = {}
        for idx, channel, value in dumped:
            name = prefix + lay.write_slot(task_id, idx)
            # As LangGraph's savers: a regular write (idx >= 0) is kept as first written (a
            # retried task does not repeat it); a special one (error, interrupt, ...)
            # replaces the one before.
            if idx >= 0 and (yield from self._get(key, name)) is not None:
                continue
            meta = {"namespace": ns, "checkpoint_id": checkpoint_id, "channel": channel}
            blob = lay.write_blob(ns, checkpoint_id, task_id, idx)
            ref = self._ref(value, blob, meta, pending, budget)
            state[name] = {"task": task_id, "path": task_path, "ch": channel, "idx": idx}
            state[name]["val"] = ref
        if not state:
            return
        yield from self._store(key, thread_id, pending, lay.WRITE_TYPE)
        event = {"lg": "writes", "ns": ns, "id": checkpoint_id, "task": task_id, "n": len(state)}
        yield from self._append(key, thread_id, event, state)

    # -- reads ---------------------------------------------------------------------------------

    def _tuple_plan(
        self, key: str, thread_id: str, record: dict[str, Any]
    ) -> Plan[CheckpointTuple]:
        ns, checkpoint_id, parent_id = record["ns"], record["id"], record["p"]
        checkpoint = cast(Checkpoint, self._undoc(record["cp"]))
        values: dict[str, Any] = {}
        for channel, (_version, ref) in record["v"].items():
            found, value = yield from self._load(key, ref)
            if found:
                values[channel] = value
        checkpoint["channel_values"] = values
        prefix = lay.writes_prefix(lay.nsid(ns), checkpoint_id)
        writes = yield Call("sessions", "state", (_sid(key),), {"prefix": prefix}, missing={})
        stored: builtins.list[tuple[tuple[str, str, int], PendingWrite]] = []
        for write in writes.values():
            found, value = yield from self._load(key, write["val"])
            if found:
                order = writes_sort_key(write["path"], write["task"], write["idx"])
                stored.append((order, (write["task"], write["ch"], value)))
        stored.sort(key=lambda pair: pair[0])

        def conf(cid: str) -> RunnableConfig:
            return {
                "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}
            }

        return CheckpointTuple(
            config=conf(checkpoint_id),
            checkpoint=checkpoint,
            metadata=cast(CheckpointMetadata, self._undoc(record["md"])),
            parent_config=conf(parent_id) if parent_id else None,
            pending_writes=[write for _, write in stored],
        )

    def _get_tuple_plan(self, config: RunnableConfig) -> Plan[CheckpointTuple | None]:
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        ns_id = lay.nsid(str(conf.get("checkpoint_ns", "")))
        key = self._key(thread_id)
        checkpoint_id = get_checkpoint_id(config)
        if not checkpoint_id:
            checkpoint_id = yield from self._get(key, lay.head_key(ns_id))
            if checkpoint_id is None:
                return None
        elif ":" in checkpoint_id:
            return None
        record = yield from self._get(key, lay.checkpoint_key(ns_id, checkpoint_id))
        if record is None:
            return None
        return (yield from self._tuple_plan(key, thread_id, record))

    def _list_plan(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> ListPlan:
        if limit is not None and limit <= 0:
            return
        if config is not None:
            conf = config["configurable"]
            thread_id = str(conf["thread_id"])
            threads = [(self._key(thread_id), thread_id)]
            ns = conf.get("checkpoint_ns")
            only = get_checkpoint_id(config)
        else:
            threads = yield from self._threads()
            ns, only = None, None
        before_id = get_checkpoint_id(before) if before is not None else None
        prefix = "c:" if ns is None else f"c:{lay.nsid(str(ns))}:"
        # Every candidate by its checkpoint id, newest first across threads and namespaces
        # (as SqliteSaver's ORDER BY checkpoint_id DESC); records are loaded one at a time.
        candidates: builtins.list[tuple[str, str, str, str]] = []
        for key, tid in threads:
            for name in (yield from self._names(key, prefix)):
                checkpoint_id = lay.parse(name)[2]
                if only and checkpoint_id != only:
                    continue
                if before_id is not None and checkpoint_id >= before_id:
                    continue
                candidates.append((checkpoint_id, name, key, tid))
        candidates.sort(key=lambda c: c[0], reverse=True)
        left = limit
        for _cid, name, key, tid in candidates:
            record = yield from self._get(key, name)
            if record is None:
                continue
            if filter:
                metadata = self._undoc(record["md"])
                if not all(metadata.get(k) == v for k, v in filter.items()):
                    continue
            yield Emit((yield from self._tuple_plan(key, tid, record)))
            if left is not None:
                left -= 1
                if left <= 0:
                    return
