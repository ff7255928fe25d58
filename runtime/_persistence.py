"""The narrow interface through which the kernel persists what must outlive a process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, final, runtime_checkable

import attrs


@attrs.frozen
class Reminder:
    """A durable reminder: wake actor ``kind``/``actor_id`` at wall time ``due``."""

    kind: str
    actor_id: str
    name: str
    due: float
    every: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies the reminder: one per actor and name."""
        return (self.kind, self.actor_id, self.name)


class ReminderStore(Protocol):
    """Where reminders are kept: one record per reminder, each write durable on return (a
    networked store answers after a round trip, so every call is a coroutine)."""

    async def load_reminders(self) -> list[Reminder]:
        """Every stored reminder."""
        ...

    async def save_reminder(self, reminder: Reminder) -> None:
        """Store ``reminder``, replacing the one with the same key."""
        ...

    async def delete_reminder(self, kind: str, actor_id: str, name: str) -> None:
        """Remove the reminder with that key, if any."""
        ...


@attrs.frozen
class TakenReminder:
    """A reminder a ``SharedReminderStore`` let this runtime fire: ``period`` names the due
    time taken (the store's own token), ``now`` is the store's clock when it was taken."""

    reminder: Reminder
    period: int
    now: float


@runtime_checkable
class SharedReminderStore(Protocol):
    """A ``ReminderStore`` several runtimes share (nodes of a cluster): the kernel keeps
    nothing in memory but polls it every ``poll_s`` seconds with ``take_due``, and each
    period of a reminder is taken by one runtime at a time (another takes it again only
    if that runtime did not ``finish`` it in time: at least once)."""

    @property
    def poll_s(self) -> float:
        """How often to ``take_due`` (which also keeps the taken reminders' marks alive)."""
        ...

    async def load_reminders(self) -> list[Reminder]:
        """Every stored reminder."""
        ...

    async def save_reminder(self, reminder: Reminder) -> None:
        """Store ``reminder``, replacing the one with the same key (and any mark on it)."""
        ...

    async def delete_reminder(self, kind: str, actor_id: str, name: str) -> None:
        """Remove the reminder with that key, if any."""
        ...

    async def remove_reminder(self, kind: str, actor_id: str, name: str) -> bool:
        """Remove the reminder with that key; whether there was one."""
        ...

    async def take_due(self, kinds: Sequence[str], limit: int) -> list[TakenReminder]:
        """Mark at most ``limit`` due reminders of ``kinds`` no one holds as taken by this
        runtime, and renew the marks of those it took and holds still."""
        ...

    async def finish(self, taken: TakenReminder, after: Reminder | None) -> None:
        """The period was fired: delete the reminder, or move it to ``after`` (unless it
        was replaced, removed or finished since it was taken)."""
        ...

    async def release(self, taken: TakenReminder, delay_s: float) -> None:
        """Not fired here: any runtime may take the period again after ``delay_s``."""
        ...


@final
class MemoryReminders:
    """A ``ReminderStore`` in memory, for runtimes that keep nothing."""

    def __init__(self) -> None:
        self._reminders: dict[tuple[str, str, str], Reminder] = {}

    async def load_reminders(self) -> list[Reminder]:
        """Every stored reminder."""
        return list(self._reminders.values())

    async def save_reminder(self, reminder: Reminder) -> None:
        """Store ``reminder``, replacing the one with the same key."""
        self._reminders[reminder.key] = reminder

    async def delete_reminder(self, kind: str, actor_id: str, name: str) -> None:
        """Remove the reminder with that key, if any."""
        self._reminders.pop((kind, actor_id, name), None)
