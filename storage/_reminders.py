"""The kernel's durable reminders, kept in the store: one record per reminder."""

from __future__ import annotations

from typing import final

from satchel.runtime import Reminder
from satchel.runtime._errors import ValidationError

from . import _keys
from ._codec import RecordCodec
from ._kv import Batch
from ._ports import RecordStore, prefix_pairs

REMINDER_CODEC = RecordCodec(Reminder, kind="reminder", version=1)


def _reminder_key(kind: str, actor_id: str, name: str) -> bytes:
    parts = [kind, actor_id, name]
    if any("\x00" in part or not part for part in parts):
        raise ValidationError(f"reminder key parts must be non-empty and NUL-free: {parts!r}")
    return _keys.REMINDER + "\x00".join(parts).encode()


@final
class StoreReminders:
    """A ``satchel.runtime.ReminderStore`` in a record store."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def load_reminders(self) -> list[Reminder]:
        """Every stored reminder."""
        found = await prefix_pairs(self._records, _keys.REMINDER)
        return [REMINDER_CODEC.decode(value) for _, value in found]

    async def save_reminder(self, reminder: Reminder) -> None:
        """Store ``reminder`` (one atomic write), replacing the one with the same key."""
        batch = Batch()
        batch.put(_reminder_key(*reminder.key), REMINDER_CODEC.encode(reminder))
        await self._records.write(batch)

    async def delete_reminder(self, kind: str, actor_id: str, name: str) -> None:
        """Remove the reminder with that key, if any."""
        batch = Batch()
        batch.delete(_reminder_key(kind, actor_id, name))
        await self._records.write(batch)
