"""The session actor's turns on its event log (a part of ``SessionActor``, kept apart to
keep each module small)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from satchel.storage import Batch, KeyValueStore

from . import _event_log as log
from . import _layout as layout
from ._budgets import count_operation
from ._messages import AppendEvents, ClearEvents, PopEvent


class EventLogTurns:
    """Append, pop and clear: each one atomic write with its journal entry."""

    if TYPE_CHECKING:
        _kv: KeyValueStore
        _sid: bytes
        _id: str
        _counters: layout.Counters

        def _require_active(self) -> layout.SessionRecord: ...

        def _now_us(self) -> int: ...

        def _commit(
            self,
            batch: Batch,
            kind: str,
            data: dict[str, Any],
            *,
            operation: bool,
            record: layout.SessionRecord | None = None,
            now: int | None = None,
            artifacts: int = 0,
            size: int = 0,
            write: Callable[[Batch], None] | None = None,
        ) -> None: ...

    def _append_events(self, message: AppendEvents) -> int:
        config = self._require_active().config
        if config.max_operations is not None:
            count_operation(self._id, self._counters, config.max_operations)
        now = self._now_us()
        batch = Batch()
        append: log.Append = message.append
        data = log.append_batch(
            self._kv, self._sid, self._id, append, now, config.max_value_bytes, batch
        )
        self._commit(batch, "events_appended", data, operation=True, now=now)
        return int(data["first"]) + len(append.events) - 1

    def _pop_event(self, _: PopEvent) -> log.SessionEvent | None:
        self._require_active()
        last = log.newest(self._kv, self._sid)
        if last is None:
            return None
        batch = Batch()
        batch.delete(log.event_key(self._sid, last.position))
        self._commit(batch, "event_popped", {"position": last.position}, operation=True)
        return last

    def _clear_events(self, _: ClearEvents) -> int:
        self._require_active()
        batch = Batch()
        count = log.clear_batch(self._kv, self._sid, batch)
        if count:
            self._commit(batch, "events_cleared", {"count": count}, operation=True)
        return count
