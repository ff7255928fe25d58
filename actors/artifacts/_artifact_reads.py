"""Artifact reads in as few record-store round trips as they can be.

On a networked record store (PostgreSQL) every read is a round trip of ~100 µs where it was a
microsecond on RocksDB, so a read of the latest version asks for the session's record, the
name's head and the version the head named last time in one ``get_many``, and keeps small
contents by hash. Both are safe to keep: a version record is never rewritten (a name's
version numbers are never given twice, even after every version was deleted), and a content
hash names one content forever; what can change (the session, the head, whether the version
still exists) is read again on every call.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import final

from . import _artifact_layout as layout
from ._artifact_model import ARTIFACT_CODEC, ArtifactRecord
from ._artifact_records import ArtifactRecords

#: Contents up to this size are kept (what a session's turn stores inline).
KEEP_MAX = 64 * 1024


@final
class ReadCache:
    """The last version seen of each name (a guess, checked on use) and recent small
    contents by hash, within a byte budget (least recently used out first)."""

    def __init__(self, budget: int = 4 << 20, names: int = 4096) -> None:
        self._budget = budget
        self._names_max = names
        self._used = 0
        self._contents: OrderedDict[str, bytes] = OrderedDict()
        self._last: dict[tuple[bytes, bytes], int] = {}

    def last_version(self, sid: bytes, name: bytes) -> int | None:
        """The version of ``name`` a read found latest last time, if any."""
        return self._last.get((sid, name))

    def saw_latest(self, sid: bytes, name: bytes, version: int) -> None:
        """Remember that ``version`` was the latest of ``name``."""
        if len(self._last) >= self._names_max:
            self._last.clear()  # a guess: losing them all costs one more read each
        self._last[sid, name] = version

    def content(self, content_hash: str) -> bytes | None:
        """The content of ``content_hash``, if kept."""
        found = self._contents.get(content_hash)
        if found is not None:
            self._contents.move_to_end(content_hash)
        return found

    def keep(self, content_hash: str, content: bytes) -> None:
        """Keep a small content read from the blob store."""
        if len(content) > KEEP_MAX or content_hash in self._contents:
            return
        self._contents[content_hash] = content
        self._used += len(content)
        while self._used > self._budget:
            self._used -= len(self._contents.popitem(last=False)[1])


def _decode(raw: bytes | None) -> ArtifactRecord | None:
    return None if raw is None else ARTIFACT_CODEC.decode(raw)


async def by_name(
    records: ArtifactRecords, cache: ReadCache, sid: bytes, name: bytes, version: int | None
) -> tuple[bool, ArtifactRecord | None]:
    """Whether session ``sid`` exists, and version ``version`` of ``name`` in it (the latest
    if ``None``), if it exists: what ``ArtifactRecords.by_name`` finds, in one round trip
    when the latest version is the one seen last time."""
    if version is not None:
        found = await records.session_and_version(sid, name, version)
        return found[0] is not None, _decode(found[1])
    guess = cache.last_version(sid, name)
    found = await records.session_and_latest(sid, name, guess)
    if found[0] is None:
        return False, None
    if found[1] is None:  # no head: the scan of ArtifactRecords.by_name (check reports it)
        return True, await records.by_name(sid, name, None)
    last = layout.decode_name_value(found[1])[0]
    if last == guess:
        raw = found[2]
    else:
        raw = await records.stored_version(sid, name, last)
    if raw is None:  # the last version given was deleted since: ArtifactRecords.by_name scans
        return True, await records.by_name(sid, name, None)
    cache.saw_latest(sid, name, last)
    return True, ARTIFACT_CODEC.decode(raw)


async def by_id(
    records: ArtifactRecords, sid: bytes, aid: bytes
) -> tuple[bool, ArtifactRecord | None]:
    """Whether session ``sid`` exists, and the version artifact id ``aid`` names (in any
    session: the caller checks it is ``sid``'s), reading the first two at once."""
    found = await records.session_and_id(sid, aid)
    if found[0] is None or found[1] is None:
        return found[0] is not None, None
    return True, _decode(await records.stored_at(found[1]))
