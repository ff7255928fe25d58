"""The session actor's turns on its event log (a part of ``SessionActor``, kept apart to
keep each module small)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from satchel.runtime._errors import InvalidStateTransitionError
from satchel.storage import Batch

from .. import _validate as validate
from .._messages import AppendEvents, ClearEvents, PopEvent
from ..hooks._hooks import HookPoint, Hooks
from . import _event_log as log
from . import _session_layout as layout
from ._budgets import count_operation
from ._session_records import OwnRecords


class EventLogTurns:
    """Append, pop and clear: each one atomic write with its journal entry."""

    if TYPE_CHECKING:
        _own: OwnRecords
        _sid: bytes
        _id: str
        _counters: layout.Counters
        _log_end: tuple[int, int] | None
        _hooks: Hooks
        _hook_records: list[dict[str, Any]]

        async def _require_active(self) -> layout.SessionRecord: ...

        def _now_us(self) -> int: ...

        async def _commit(
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
            write: Callable[[Batch], Awaitable[None]] | None = None,
        ) -> None: ...

    async def _run_append_hooks(self, point: HookPoint, message: AppendEvents) -> AppendEvents:
        """Run the ``state_changed`` hooks once for each variable the append sets or deletes,
        as ``set_state`` and ``delete_state`` would: one may cancel the whole append or
        change a value; their records go in the append's journal entry."""
        append: log.Append = message.append
        records: list[dict[str, Any]] = []
        state = []
        for key, value in append.state:
            data = {"key": key, "value": value, "deleted": False}
            after, ran = await self._hooks.run(point, self._id, data)
            records += ran
            if after is not data:
                value = after["value"]
                validate.json_like(f"state {key!r}", value)
            state.append((key, value))
        for key in append.deleted:
            _, ran = await self._hooks.run(
                point, self._id, {"key": key, "value": None, "deleted": True}
            )
            records += ran
        self._hook_records = records
        return AppendEvents(append._replace(state=tuple(state)))

    async def _count_operation(self) -> None:
        """Refuse the operation past the session's ``max_operations``."""
        config = (await self._require_active()).config
        if config.max_operations is not None:
            count_operation(self._id, self._counters, config.max_operations)

    async def _append_events(self, message: AppendEvents) -> int:
        record = await self._require_active()
        config = record.config
        append: log.Append = message.append
        created = append.expect_created_us
        if created is not None and created != record.created_us:
            was = validate.stored_datetime(record.created_us, "a session record")
            raise InvalidStateTransitionError(
                f"session {self._id} was created at {was},"
                f" not {validate.to_datetime(created)}: it was deleted and created again "
                "since it was read"
            )
        for key, value in append.expect_state:
            if not log.same_value(await self._own.variable(key), value):
                raise InvalidStateTransitionError(
                    f"session {self._id}: state {key!r} is not what the append expects: it was "
                    "changed since it was read"
                )
        if config.max_operations is not None:
            count_operation(self._id, self._counters, config.max_operations)
        now = self._now_us()
        batch = Batch()
        end = self._log_end
        if end is None:
            end = await self._own.event_log_end(self._sid)
        data = log.append_batch(
            end, self._sid, self._id, append, now, config.max_value_bytes, batch
        )
        await self._commit(batch, "events_appended", data, operation=True, now=now)
        last = int(data["first"]) + len(append.events) - 1
        self._log_end = (last, data["at"]) if append.events else end
        return last

    async def _pop_event(self, _: PopEvent) -> log.SessionEvent | None:
        await self._count_operation()
        last = await self._own.newest_event(self._sid)
        if last is None:
            return None
        batch = Batch()
        batch.delete(self._own.event_key(last.position))
        await self._commit(batch, "event_popped", {"position": last.position}, operation=True)
        return last

    async def _clear_events(self, _: ClearEvents) -> int:
        await self._count_operation()
        batch = Batch()
        count = await self._own.add_clear_events(batch, self._sid)
        if count:
            await self._commit(batch, "events_cleared", {"count": count}, operation=True)
        return count
