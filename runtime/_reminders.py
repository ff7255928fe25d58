"""Durable reminders: persisted one record each, fired by one scheduler task, coalesced.

On one runtime every stored reminder is loaded at start and held in memory. Runtimes that
share their reminders (nodes of a cluster: a ``SharedReminderStore``) hold none: the
scheduler polls the store for due reminders no other runtime has taken, fires those, then
tells the store the period is done, so each period fires once across the runtimes (at least
once: a period taken by a runtime that died is taken again when its mark expires).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from ._errors import (
    ActorCrashedError,
    ActorFailedError,
    RuntimeClosedError,
    ValidationError,
)
from ._messages import ReminderFired, ReplySlot
from ._persistence import Reminder, ReminderStore, SharedReminderStore, TakenReminder

if TYPE_CHECKING:
    from ._supervisor import Supervisor

log = logging.getLogger("satchel.runtime")

#: A one-shot reminder whose actor crashed on it is fired again after this long.
RETRY_AFTER_S = 5.0
#: At most this many reminders are taken by one poll of a shared store (more: poll again).
TAKE_LIMIT = 100


class Reminders:
    """The reminders of one supervisor; ``run`` is the scheduler task."""

    def __init__(self, supervisor: Supervisor, store: ReminderStore) -> None:
        self._supervisor = supervisor
        self._store = store
        self._shared = store if isinstance(store, SharedReminderStore) else None
        self._by_key: dict[tuple[str, str, str], Reminder] = {}
        # Taken from a shared store and not finished yet (their marks are kept alive).
        self._in_flight = 0
        self._wake = anyio.Event()
        self._nursery: anyio.abc.TaskGroup | None = None

    def __len__(self) -> int:
        return len(self._by_key) if self._shared is None else self._in_flight

    async def set(
        self, kind: str, actor_id: str, name: str, at: float, every: float | None
    ) -> Reminder:
        """Persist and schedule a reminder, replacing one of the same actor and name."""
        if every is not None and not every > 0:
            raise ValidationError(f"a reminder interval must be positive, not {every}")
        if not math.isfinite(at):
            raise ValidationError(f"a reminder time must be finite, not {at}")
        reminder = Reminder(kind=kind, actor_id=actor_id, name=name, due=at, every=every)
        await self._store.save_reminder(reminder)
        if self._shared is None:
            self._by_key[reminder.key] = reminder
            self._wake.set()
        elif at <= self._supervisor.clock() + self._shared.poll_s:
            self._wake.set()  # due before the next poll: poll now
        await anyio.lowlevel.checkpoint()
        return reminder

    async def cancel(self, kind: str, actor_id: str, name: str) -> bool:
        """Delete a reminder; whether there was one."""
        if self._shared is not None:
            found = await self._shared.remove_reminder(kind, actor_id, name)
        else:
            await self._store.delete_reminder(kind, actor_id, name)
            found = self._by_key.pop((kind, actor_id, name), None) is not None
        self._wake.set()
        await anyio.lowlevel.checkpoint()
        return found

    def wake(self) -> None:
        """Look at the reminders again (a kind was registered)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop firing (the runtime is closing); stored reminders stay for the next run."""
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Load stored reminders and fire each when due, until ``stop``."""
        if self._shared is not None:
            await self._run_shared(self._shared, task_status)
            return
        for reminder in await self._store.load_reminders():
            self._by_key[reminder.key] = reminder
        async with anyio.create_task_group() as nursery:
            self._nursery = nursery
            task_status.started()
            while True:
                self._wake = anyio.Event()
                # Reminders of kinds not registered yet wait for their kind (see ``wake``).
                ready = (r for r in self._by_key.values() if self._supervisor.has_kind(r.kind))
                soonest = min(ready, key=lambda r: r.due, default=None)
                if soonest is None:
                    await self._wake.wait()
                    continue
                delay = soonest.due - self._supervisor.clock()
                if delay > 0:
                    with anyio.move_on_after(delay):
                        await self._wake.wait()
                    continue
                self._fire(soonest, nursery)
                await anyio.lowlevel.checkpoint()

    def _fire(self, reminder: Reminder, nursery: anyio.abc.TaskGroup) -> None:
        """Schedule the next tick in memory and deliver this one.

        The stored record changes only once the actor has handled the tick (``_deliver``):
        a tick still queued when the runtime closes fires again on the next open.
        """
        missed = 0
        after: Reminder | None = None
        if reminder.every is None:
            del self._by_key[reminder.key]
        else:
            late = self._supervisor.clock() - reminder.due
            missed = int(late // reminder.every)
            after = attrs.evolve(reminder, due=reminder.due + (missed + 1) * reminder.every)
            self._by_key[reminder.key] = after
        fired = ReminderFired(name=reminder.name, due=reminder.due, missed=missed)
        nursery.start_soon(self._deliver, reminder, after, fired)

    async def _deliver(
        self, reminder: Reminder, after: Reminder | None, fired: ReminderFired
    ) -> None:
        slot = ReplySlot(self._supervisor.native.event())
        key = (reminder.kind, reminder.actor_id)
        try:
            await self._supervisor.deliver(key, (fired, slot))
            await slot.wait()
        except (RuntimeClosedError, ActorFailedError) as error:
            log.warning("reminder %s for %s/%s kept for later: %r", fired.name, *key, error)
            return
        except ActorCrashedError as error:
            # The actor crashed on the tick (and restarts): it was not handled. The stored
            # record stays; a one-shot reminder is fired again shortly.
            log.warning("reminder %s for %s/%s: actor crashed, %r", fired.name, *key, error)
            if after is None and reminder.key not in self._by_key:
                retry = attrs.evolve(reminder, due=self._supervisor.clock() + RETRY_AFTER_S)
                self._by_key[reminder.key] = retry
                self._wake.set()
            return
        except Exception as error:
            # The actor handled the tick and raised: it was delivered all the same.
            log.warning("reminder %s for %s/%s: handler raised %r", fired.name, *key, error)
        current = self._by_key.get(reminder.key)
        if after is None and current is None:
            await self._store.delete_reminder(*reminder.key)
        elif after is not None and current is after:
            await self._store.save_reminder(after)

    async def _run_shared(
        self, store: SharedReminderStore, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        """Poll ``store`` for due reminders and fire those taken, until ``stop``."""
        async with anyio.create_task_group() as nursery:
            self._nursery = nursery
            task_status.started()
            while True:
                self._wake = anyio.Event()
                taken = await self._take(store)
                for one in taken:
                    self._fire_taken(store, one, nursery)
                await anyio.lowlevel.checkpoint()
                if len(taken) < TAKE_LIMIT:  # else more are due: take them at once
                    with anyio.move_on_after(store.poll_s):
                        await self._wake.wait()

    async def _take(self, store: SharedReminderStore) -> list[TakenReminder]:
        # Only kinds registered here: a reminder of another kind waits for a runtime that
        # has it (this one, once it registers it: ``wake``).
        kinds = self._supervisor.kinds()
        try:
            return await store.take_due(kinds, TAKE_LIMIT)
        except Exception as error:
            # The store is unreachable for now: the next poll tries again, and what this
            # runtime holds expires for others to take.
            log.warning("reminders not polled: %r", error)
            return []

    def _fire_taken(
        self, store: SharedReminderStore, taken: TakenReminder, nursery: anyio.abc.TaskGroup
    ) -> None:
        """Deliver a taken period; the store hears of it once the actor has handled it."""
        reminder, missed, after = taken.reminder, 0, None
        if reminder.every is not None:
            missed = max(0, int((taken.now - reminder.due) // reminder.every))
            after = attrs.evolve(reminder, due=reminder.due + (missed + 1) * reminder.every)
        fired = ReminderFired(name=reminder.name, due=reminder.due, missed=missed)
        self._in_flight += 1
        nursery.start_soon(self._deliver_taken, store, taken, after, fired)

    async def _deliver_taken(
        self,
        store: SharedReminderStore,
        taken: TakenReminder,
        after: Reminder | None,
        fired: ReminderFired,
    ) -> None:
        reminder = taken.reminder
        slot = ReplySlot(self._supervisor.native.event())
        key = (reminder.kind, reminder.actor_id)
        try:
            try:
                await self._supervisor.deliver(key, (fired, slot))
                await slot.wait()
            except RuntimeClosedError as error:
                log.warning("reminder %s for %s/%s left to others: %r", fired.name, *key, error)
                await store.release(taken, 0.0)
                return
            except (ActorFailedError, ActorCrashedError) as error:
                # Not handled: fired again shortly (a repeating one at its next period).
                log.warning("reminder %s for %s/%s not handled: %r", fired.name, *key, error)
                if after is None or isinstance(error, ActorFailedError):
                    await store.release(taken, RETRY_AFTER_S)
                    return
            except Exception as error:
                # The actor handled the tick and raised: it was delivered all the same.
                log.warning("reminder %s for %s/%s: handler raised %r", fired.name, *key, error)
            await store.finish(taken, after)
        except Exception as error:
            # The store could not be told: the mark expires and the period fires again.
            log.warning("reminder %s for %s/%s not finished: %r", fired.name, *key, error)
        finally:
            self._in_flight -= 1
