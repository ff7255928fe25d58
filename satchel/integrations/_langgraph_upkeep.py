"""What ``SatchelSaver`` does besides writing checkpoints, as plans: reading and listing them,
deleting and copying threads, pruning, and collecting the value artifacts no record names (a
part of ``ThreadPlans``, kept apart to keep each module small)."""

from __future__ import annotations

import base64
import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    writes_sort_key,
)

from satchel import IntegrityError, InvalidStateTransitionError

from . import _langgraph_layout as lay
from ._langgraph_calls import TRIES, Call, Emit, ListPlan, Plan, ThreadAppends, sid

if TYPE_CHECKING:
    from langgraph.checkpoint.serde.base import SerializerProtocol

#: How old an unnamed value artifact must be before collection deletes it.
_COLLECT_GRACE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ChannelBlob:
    """A channel value kept as an artifact (``SatchelSaver.stored_channel_blobs``)."""

    name: str
    namespace: str
    channel: str
    version: str
    size: int
    content_hash: str


class ThreadUpkeep(ThreadAppends):
    """Reads, deletes, copies, prune and garbage collection of ``ThreadPlans``."""

    if TYPE_CHECKING:
        serde: SerializerProtocol

        def _key(self, thread_id: Any) -> str: ...

        def _hashed(self, key: str) -> bool: ...

        def _names(self, key: str, prefix: str = "") -> Plan[builtins.list[str]]: ...

        def _get(self, key: str, name: str) -> Plan[Any]: ...

        def _threads(self) -> Plan[builtins.list[tuple[str, str]]]: ...

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
        writes = yield Call("sessions", "state", (sid(key),), {"prefix": prefix}, missing={})
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

    # -- values read back ----------------------------------------------------------------------

    def _load(self, key: str, ref: lay.Ref) -> Plan[tuple[bool, Any]]:
        """``(found, value)`` of a reference."""
        if ref[0] == "i":
            return True, self.serde.loads_typed((ref[1], base64.b64decode(ref[2])))
        if ref[0] == "a":
            call = Call("artifacts", "get", (sid(key), ref[2]), missing=None)
            artifact = yield call
            if artifact is None:
                raise IntegrityError(
                    f"the value artifact {ref[2]!r} a checkpoint names is gone from {key!r}"
                )
            return True, self.serde.loads_typed((ref[1], artifact.content))
        return False, None

    def _undoc(self, doc: builtins.list[Any]) -> Any:
        if doc[0] == "j":
            return doc[1]
        return self.serde.loads_typed((doc[1], base64.b64decode(doc[2])))

    # -- deletes and copies --------------------------------------------------------------------

    def _delete_thread_plan(self, thread_id: str) -> Plan[None]:
        key = self._key(str(thread_id))
        self._known.discard(key)
        self._forget(key)
        yield Call("sessions", "delete", (sid(key),), missing=None)

    def _delete_for_runs_plan(self, run_ids: Sequence[str]) -> Plan[None]:
        if not run_ids:
            return
        wanted = {"r:" + lay.run_prefix(str(r)) for r in run_ids}
        width = len(next(iter(wanted)))

        def of_runs(key: str, names: builtins.list[str]) -> Plan[set[tuple[str, str]]]:
            yield from ()  # a plan that reads nothing more
            return {lay.parse(n)[1:] for n in names if n.startswith("r:") and n[:width] in wanted}

        for key, thread_id in (yield from self._threads()):
            yield from self._drop_when_still(key, thread_id, of_runs, "delete_for_runs")

    def _copy_thread_plan(self, source: str, target: str) -> Plan[None]:
        source_key, target_key = self._key(str(source)), self._key(str(target))
        forked = yield Call(
            "sessions",
            "fork",
            (sid(source_key),),
            {"key": target_key, "name": lay.session_name(str(target))},
            missing=None,
        )
        if forked is None:
            return  # no such thread: nothing to copy (as delete_thread of a missing one)
        self._known.add(target_key)
        self._forget(target_key)
        if self._hashed(target_key):
            event = {"lg": "copied", "from": str(source)[:200]}
            yield from self._append(target_key, str(target), event, {"t": str(target)})

    def _prune_plan(self, thread_ids: Sequence[str], strategy: str) -> Plan[None]:
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: keep_latest or delete")
        for thread_id in thread_ids:
            if strategy == "delete":
                yield from self._delete_thread_plan(str(thread_id))
                continue
            key = self._key(str(thread_id))
            yield from self._drop_when_still(key, str(thread_id), self._all_but_latest, "prune")

    def _all_but_latest(self, key: str, names: builtins.list[str]) -> Plan[set[tuple[str, str]]]:
        """The checkpoints of ``names`` that ``prune(keep_latest)`` removes: all but each
        namespace's latest, and the ancestors it needs."""
        by_ns: dict[str, builtins.list[str]] = {}
        for name in names:
            if name.startswith("c:"):
                _, ns_id, checkpoint_id = lay.parse(name)
                by_ns.setdefault(ns_id, []).append(checkpoint_id)
        keep: set[tuple[str, str]] = set()
        for ns_id, ids in by_ns.items():
            latest = max(ids)
            keep.add((ns_id, latest))
            # A channel the latest checkpoint holds no value for (a DeltaChannel step) is
            # rebuilt from its ancestors back to one holding a value: keep those.
            record = yield from self._get(key, lay.checkpoint_key(ns_id, latest))
            need = {c for c, (_, r) in (record or {"v": {}})["v"].items() if r == lay.EMPTY}
            parent = record["p"] if record else None
            while need and parent:
                older = yield from self._get(key, lay.checkpoint_key(ns_id, parent))
                if older is None:
                    break
                keep.add((ns_id, parent))
                need -= {c for c, (_, r) in older["v"].items() if r != lay.EMPTY}
                parent = older["p"]
        return {(ns_id, cid) for ns_id, ids in by_ns.items() for cid in ids} - keep

    def _drop_when_still(
        self,
        key: str,
        thread_id: str,
        doomed_of: Callable[[str, builtins.list[str]], Plan[set[tuple[str, str]]]],
        why: str,
    ) -> Plan[None]:
        """``_drop`` what ``doomed_of`` finds in the thread's names, expecting the log where
        it was before they were read: a put landing meanwhile (a newer head, a newer
        checkpoint) makes the drop read the thread again rather than set an older head."""
        for _ in range(TRIES):
            at = yield Call("sessions", "last_event_position", (sid(key),), missing=None)
            if at is None:
                return  # no such thread
            names = yield from self._names(key)
            doomed = yield from doomed_of(key, names)
            if not doomed:
                return
            try:
                yield from self._drop(key, thread_id, names, doomed, why, at)
                return
            except InvalidStateTransitionError:
                continue  # the thread moved since its names were read
        raise InvalidStateTransitionError(
            f"{why} of thread {thread_id[:200]!r} gave up: other writers changed it {TRIES} "
            "times while it was being done"
        )

    def _drop(
        self,
        key: str,
        thread_id: str,
        names: builtins.list[str],
        doomed: set[tuple[str, str]],
        why: str,
        expect: int,
    ) -> Plan[None]:
        """Remove the checkpoints ``doomed`` (``(nsid, checkpoint_id)``), their writes and run
        index entries and fix the heads, in one write expecting the log at ``expect``
        (``InvalidStateTransitionError`` if it moved); then collect the artifacts no
        remaining record names."""
        delete: builtins.list[str] = []
        remaining: dict[str, builtins.list[str]] = {}
        for name in names:
            if name[:2] not in ("c:", "w:", "r:"):
                continue
            kind, ns_id, checkpoint_id = lay.parse(name)
            if (ns_id, checkpoint_id) in doomed:
                delete.append(name)
            elif kind == "c":
                remaining.setdefault(ns_id, []).append(checkpoint_id)
        heads: dict[str, Any] = {}
        for ns_id in {ns_id for ns_id, _ in doomed}:
            ids = remaining.get(ns_id)
            if ids:
                heads[lay.head_key(ns_id)] = max(ids)
            else:
                delete.append(lay.head_key(ns_id))
        event = {"lg": why, "removed": len(doomed)}
        yield from self._append(key, thread_id, event, heads, delete, expect=expect)
        gone = set(delete)
        yield from self._collect(key, [n for n in names if n not in gone])

    def _collect(self, key: str, names: builtins.list[str]) -> Plan[int]:
        """Delete the value artifacts that none of the variables ``names`` names."""
        used: set[str] = set()
        for name in names:
            if not name.startswith(("c:", "w:")):
                continue
            value = yield from self._get(key, name)
            if value is None:
                continue
            refs = [ref for _, ref in value["v"].values()] if name[0] == "c" else [value["val"]]
            used.update(ref[2] for ref in refs if ref[0] == "a")
        session = sid(key)
        artifacts = yield Call("artifacts", "list", (session,), missing=[])
        dropped = 0
        # A put stores its values before the record naming them: a value that new is not
        # garbage yet, whatever the records read a moment ago said.
        settled = datetime.now(UTC) - _COLLECT_GRACE
        for info in artifacts:
            if info.created_at > settled:
                continue
            if info.name.startswith((lay.CHANNEL_BLOB, lay.WRITE_BLOB)) and info.name not in used:
                yield Call("artifacts", "delete", (session, info.name), missing=0)
                dropped += 1
        return dropped

    # -- satchel extras ------------------------------------------------------------------------

    def _blobs_plan(self, thread_id: str) -> Plan[builtins.list[ChannelBlob]]:
        key = self._key(str(thread_id))
        artifacts = yield Call("artifacts", "list", (sid(key),), missing=[])
        return [
            ChannelBlob(
                name=a.name,
                namespace=str(a.custom.get("namespace", "")),
                channel=str(a.custom.get("channel", "")),
                version=str(a.custom.get("version", "")),
                size=a.size,
                content_hash=a.content_hash,
            )
            for a in artifacts
            if a.name.startswith(lay.CHANNEL_BLOB)
        ]

    def _gc_plan(self, thread_id: str) -> Plan[int]:
        key = self._key(str(thread_id))
        return (yield from self._collect(key, (yield from self._names(key))))
