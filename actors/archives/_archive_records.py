"""The archives' repository over the record port: a session's own records as they are stored,
byte for byte, for an archive to carry them (its record and counters, variables, journal)
and for an import to find what a session left behind. Archives keep no records of their own;
what they read of artifacts goes through ``ArtifactRecords``, and whether a session exists
through ``SessionRecords``. These raw reads are here because ``SessionRecords`` decodes what
it reads, and an archive copies the stored bytes unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable

from satchel.storage import RecordReads, prefix_pairs

from ..sessions import _session_layout as layout


class ArchiveRecords:
    """A session's stored records in one store (``RecordReads``), undecoded.

    Promises: each read method is one call of the port but for those that say otherwise;
    nothing is decoded, so damaged records are carried (and refused on import) as stored.
    """

    __slots__ = ("_records",)

    def __init__(self, records: RecordReads) -> None:
        self._records = records

    def stored_session(self, sid: bytes) -> Awaitable[list[bytes | None]]:
        """The record and counters of session ``sid`` as stored, ``None`` each where there
        is none (one multi-get)."""
        return self._records.get_many([layout.record_key(sid), layout.counters_key(sid)])

    async def stored_variables(self, sid: bytes) -> list[tuple[bytes, bytes]]:
        """``(name, value)`` of every variable of session ``sid``, as stored, by name."""
        start = len(layout.var_prefix(sid))
        return [
            (k[start:], v) for k, v in await prefix_pairs(self._records, layout.var_prefix(sid))
        ]

    async def stored_journal(self, sid: bytes) -> list[tuple[int, bytes]]:
        """``(seq, entry)`` of every journal entry of session ``sid``, as stored, in order."""
        pairs = await prefix_pairs(self._records, layout.journal_prefix(sid))
        return [(int.from_bytes(k[-8:], "big"), v) for k, v in pairs]

    async def has_leftovers(self, sid: bytes) -> bool:
        """Whether session ``sid`` has counters, variables or journal entries (a scan each,
        stopping at the first found): what a delete left half done, or ``check`` would find."""
        for prefix in (
            layout.counters_key(sid),
            layout.var_prefix(sid),
            layout.journal_prefix(sid),
        ):
            if await prefix_pairs(self._records, prefix, limit=1):
                return True
        return False
