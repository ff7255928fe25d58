"""The heads of a session's artifact names as its actor keeps them, so a store does not read
them first.

A name's head (``layout.name_key``: its last version number, first creation time and latest
version) and, for a name deleted whole, its retired key are written only by the session's
actor (in a cluster, the lease holder's, whose every write is fenced), and by session
deletes, forks and imports, none of which writes a session whose actor is live: a delete
passivates the actor it runs in, and refuses a cascade into a live one; a fork or an import
makes a new session. So the actor can keep what it read or wrote. It loads the session's
heads and retired keys once (two scans, when there are few), after which it knows of every
name whether it has a head or a retired key. A store then writes the head on the condition
that it is as kept (``Equals``, or ``ABSENT`` for a new name) and, for a retired name, deletes
the retired key expecting its value: a stale head fails the write whole
(``WriteConflictError``), and the actor forgets everything and plans the store again from a
read. Whatever may be stale is forgotten: after a write that failed (it may have landed), a
conflict, and with the actor (a new one loads again).
"""

from __future__ import annotations

from typing import final

import attrs

from satchel.storage import ABSENT, Batch, Equals, RecordReads

from . import _artifact_layout as layout
from ._artifact_records import ArtifactRecords

#: A session with more heads (or retired names) than this is not loaded whole: a store of a
#: name not kept reads its head first.
LOAD_MAX = 256
#: How many names' heads an actor keeps; past that it forgets them and reads again.
KEEP_MAX = 2048


@attrs.frozen
class NameState:
    """A name's head and retired key as a store plans from them."""

    head: bytes | None
    retired: bytes | None
    #: Kept, not read: written on the condition that they are still so.
    kept: bool

    def write(self, batch: Batch, sid: bytes, name: bytes, head: bytes) -> None:
        """Put the name's new head (and delete its retired key) in ``batch``."""
        key = layout.name_key(sid, name)
        if not self.kept:
            batch.put(key, head)
        elif self.head is None:
            batch.put(key, head, expect=ABSENT)
        else:
            batch.put(key, head, expect=Equals(self.head))
        if self.retired is not None:
            # Only a name deleted whole has one (deletes are never held back in a turn, so
            # the store has it); a tombstone for nothing would cost every later read.
            expect = Equals(self.retired) if self.kept else None
            batch.delete(layout.retired_key(sid, name), expect=expect)


@final
class NameHeads:
    """The heads and retired keys of one session's names (see the module docstring)."""

    __slots__ = ("_heads", "_loaded", "_retired", "_sid", "_whole")

    def __init__(self, sid: bytes) -> None:
        self._sid = sid
        self._heads: dict[bytes, bytes] = {}
        self._retired: dict[bytes, bytes] = {}
        self._loaded = False
        #: Whether every head and retired key of the session is in ``_heads``/``_retired``.
        self._whole = False

    def forget(self) -> None:
        """Drop everything kept (it may be stale): the next store loads again."""
        self._heads.clear()
        self._retired.clear()
        self._loaded = self._whole = False

    def kept(self, name: bytes) -> NameState | None:
        """The head and retired key of ``name`` as kept, if they are (no read needed)."""
        head = self._heads.get(name)
        if head is not None:
            return NameState(head, None, kept=True)
        if self._whole:
            return NameState(None, self._retired.get(name), kept=True)
        return None

    async def state(self, records: RecordReads, name: bytes, *, keep: bool = True) -> NameState:
        """The head and retired key of ``name`` to plan a store from: as kept if ``keep``
        and known, else read (one ``get_many``)."""
        if keep:
            if not self._loaded:
                await self._load(ArtifactRecords(records))
            head = self._heads.get(name)
            if head is not None:
                return NameState(head, None, kept=True)
            if self._whole:
                return NameState(None, self._retired.get(name), kept=True)
        head, retired = await ArtifactRecords(records).head_and_retired(self._sid, name)
        return NameState(head, retired, kept=False)

    async def _load(self, reads: ArtifactRecords) -> None:
        self._loaded = True
        # One more than is loaded: whether there were more tells if the load is whole.
        heads = await reads.heads(self._sid, limit=LOAD_MAX + 1)
        retired = await reads.retired(self._sid, limit=LOAD_MAX + 1)
        self._heads, self._retired = dict(heads[:LOAD_MAX]), dict(retired[:LOAD_MAX])
        self._whole = len(heads) <= LOAD_MAX and len(retired) <= LOAD_MAX

    def stored(self, name: bytes, head: bytes) -> None:
        """A store of ``name`` wrote ``head`` (and deleted any retired key)."""
        if len(self._heads) >= KEEP_MAX and name not in self._heads:
            self.forget()  # a new name past the limit: read from now on
            self._loaded = True
            return
        self._heads[name] = head
        self._retired.pop(name, None)

    def deleted(self, name: bytes, batch: Batch) -> None:
        """A delete of versions of ``name`` wrote ``batch``: keep the head and retired key
        it leaves."""
        head_key = layout.name_key(self._sid, name)
        retired_key = layout.retired_key(self._sid, name)
        for op, _, key, value in batch.ops:
            if key == head_key:
                if op == "put" and value is not None:
                    self._heads[name] = value
                else:
                    self._heads.pop(name, None)
            elif key == retired_key:
                if op == "put" and value is not None:
                    self._retired[name] = value
                else:
                    self._retired.pop(name, None)
