"""The narrow interface through which the kernel persists what must outlive a process."""

from __future__ import annotations

from typing import Protocol, final

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
