"""The artifacts' repository over the record port: what the artifacts package reads, named for
what it means (a version by id or name, a name's versions and head, the grants on and to a
session, a name's audit log, the query indexes) rather than for the keys it is kept under.
The key layout (``_artifact_layout``, ``_artifact_index``) is this module's detail: the rest of
the package reads through these methods, and builds its batches from the layout's keys.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

from satchel.storage import RecordReads, iter_pairs, prefix_pairs, prefix_upper_bound
from satchel.storage import _keys as keys

from .. import _indexscan as indexscan
from ..sessions import _session_layout as session_layout
from . import _artifact_index as index
from . import _artifact_layout as layout
from ._artifact_model import ARTIFACT_CODEC, ArtifactInfo, ArtifactRecord

_ID = 16
_SEQ = struct.Struct(">Q")

#: A grant as stored: ``(owner, name, scope, target, rank, granted_us, granted_by)``.
GrantFields = tuple[bytes, bytes, bytes, bytes, int, int, bytes]


def _decode(raw: bytes | None) -> ArtifactRecord | None:
    return None if raw is None else ARTIFACT_CODEC.decode(raw)


class ArtifactRecords:
    """Every artifact record in one store (``RecordReads``).

    Promises: each read method is one call of the port (one round trip on a networked store)
    but for those that say otherwise; nothing is cached, so a read sees what is committed.
    Methods on the artifact store and get paths return the port's awaitable itself (no
    coroutine of their own). Values kept as stored (``bytes``) are what their callers decode
    or copy as they are (a head a store writes on the condition that it is unchanged, an
    archive's members).
    """

    __slots__ = ("_records",)

    def __init__(self, records: RecordReads) -> None:
        self._records = records

    # -- versions -------------------------------------------------------------------------

    async def by_id(self, aid: bytes) -> ArtifactRecord | None:
        """The version an artifact id names, if it exists (two reads)."""
        where = await self._records.get(layout.id_key(aid))
        if where is None:
            return None
        return _decode(await self._records.get(keys.ARTIFACT + where))

    async def by_name(self, sid: bytes, name: bytes, version: int | None) -> ArtifactRecord | None:
        """Version ``version`` of ``name`` (the latest if ``None``), if it exists."""
        records = self._records
        if version is None:
            # Point lookups of the name's last assigned version: cheaper than a reverse seek,
            # which no bloom filter helps. The scan is left for a last version since deleted
            # (and a missing name key, which ``check`` reports).
            named = await records.get(layout.name_key(sid, name))
            last = None if named is None else layout.decode_name_value(named)[0]
            raw = None if last is None else await records.get(layout.record_key(sid, name, last))
            if raw is None:
                prefix = layout.versions_prefix(sid, name)
                latest = await prefix_pairs(records, prefix, reverse=True, limit=1)
                raw = latest[0][1] if latest else None
        else:
            raw = await records.get(layout.record_key(sid, name, version))
        return _decode(raw)

    def stored_version(self, sid: bytes, name: bytes, version: int) -> Awaitable[bytes | None]:
        """Version ``version`` of ``name`` as stored, if it exists."""
        return self._records.get(layout.record_key(sid, name, version))

    async def versions(self, sid: bytes, name: bytes) -> list[ArtifactRecord]:
        """Every version of ``name``, version 1 first."""
        pairs = await prefix_pairs(self._records, layout.versions_prefix(sid, name))
        return [ARTIFACT_CODEC.decode(v) for _, v in pairs]

    async def version_infos(self, sid: bytes, name: bytes) -> list[ArtifactInfo]:
        """``to_info`` of every version of ``name``, version 1 first (each decoded straight
        into its info)."""
        decode, info_of, to_info = ARTIFACT_CODEC.decode_as, layout.info_of, layout.to_info
        pairs = await prefix_pairs(self._records, layout.versions_prefix(sid, name))
        return [decode(v, info_of, to_info) for _, v in pairs]

    async def latest_of_each(self, sid: bytes) -> list[ArtifactRecord]:
        """The latest version of each name, the name first stored earliest first (a read
        per name)."""
        start = len(layout.names_prefix(sid))
        named = [
            (layout.decode_name_value(value)[1], key[start:])
            for key, value in await prefix_pairs(self._records, layout.names_prefix(sid))
        ]
        found = []
        for _, name in sorted(named):
            record = await self.by_name(sid, name, None)
            if record is not None:
                found.append(record)
        return found

    async def all_of_session(self, sid: bytes) -> list[tuple[bytes, ArtifactRecord]]:
        """Every version of every name of session ``sid``, with its record key."""
        pairs = await prefix_pairs(self._records, layout.session_prefix(sid))
        return [(key, ARTIFACT_CODEC.decode(value)) for key, value in pairs]

    async def by_content(
        self, sid: bytes, content_hash: str, version: int | None
    ) -> list[ArtifactRecord]:
        """The versions numbered ``version`` of session ``sid`` that hold ``content_hash``."""
        return [
            record
            for _, record in await self.all_of_session(sid)
            if record.version == version and record.content_hash == content_hash
        ]

    def stored_versions(self, sid: bytes) -> Awaitable[list[tuple[bytes, bytes]]]:
        """Every version of session ``sid`` as stored, with its record key."""
        return prefix_pairs(self._records, layout.session_prefix(sid))

    async def has_id(self, aid: bytes) -> bool:
        """Whether artifact id ``aid`` names a version (read undecoded)."""
        return await self._records.get(layout.id_key(aid)) is not None

    async def holds_any(self, record_keys: Sequence[bytes]) -> bool:
        """Whether any of these version keys still holds a record (a read each, stopping at
        the first found)."""
        for key in record_keys:
            if await self._records.get(key):
                return True
        return False

    async def has_any(self, sid: bytes) -> bool:
        """Whether session ``sid`` has any version, head or retired name (a scan each,
        stopping at the first found)."""
        prefixes = (
            layout.session_prefix(sid),
            layout.names_prefix(sid),
            layout.retired_prefix(sid),
        )
        for prefix in prefixes:
            if await prefix_pairs(self._records, prefix, limit=1):
                return True
        return False

    # -- the session with its artifact, in one round trip ----------------------------------

    def session_and_latest(
        self, sid: bytes, name: bytes, guess: int | None
    ) -> Awaitable[list[bytes | None]]:
        """Session ``sid``'s record, the head of ``name`` and, if ``guess`` is given, that
        version of it, as stored (one multi-get). The session's record is read here, not by
        ``SessionRecords``, so a read of the latest version is one round trip."""
        wanted = [session_layout.record_key(sid), layout.name_key(sid, name)]
        if guess is not None:
            wanted.append(layout.record_key(sid, name, guess))
        return self._records.get_many(wanted)

    def session_and_version(
        self, sid: bytes, name: bytes, version: int
    ) -> Awaitable[list[bytes | None]]:
        """Session ``sid``'s record and version ``version`` of ``name``, as stored (one
        multi-get, as ``session_and_latest``)."""
        return self._records.get_many(
            [session_layout.record_key(sid), layout.record_key(sid, name, version)]
        )

    def session_and_id(self, sid: bytes, aid: bytes) -> Awaitable[list[bytes | None]]:
        """Session ``sid``'s record and where artifact id ``aid`` points (the tail of its
        version's key), as stored (one multi-get, as ``session_and_latest``)."""
        return self._records.get_many([session_layout.record_key(sid), layout.id_key(aid)])

    def stored_at(self, tail: bytes) -> Awaitable[bytes | None]:
        """The version an id's value (a version key's tail) points to, as stored."""
        return self._records.get(keys.ARTIFACT + tail)

    # -- names' heads and retired names ---------------------------------------------------

    def head(self, sid: bytes, name: bytes) -> Awaitable[bytes | None]:
        """The head of ``name`` as stored (``layout.decode_name_value``), if it has one."""
        return self._records.get(layout.name_key(sid, name))

    async def name_exists(self, sid: bytes, name: bytes) -> bool:
        """Whether ``name`` has a head in session ``sid`` (read undecoded)."""
        return await self._records.get(layout.name_key(sid, name)) is not None

    def head_and_retired(self, sid: bytes, name: bytes) -> Awaitable[list[bytes | None]]:
        """The head and retired key of ``name`` as stored (one multi-get)."""
        return self._records.get_many([layout.name_key(sid, name), layout.retired_key(sid, name)])

    async def heads(self, sid: bytes, limit: int | None = None) -> list[tuple[bytes, bytes]]:
        """``(name, head as stored)`` of the first ``limit`` names of session ``sid`` (all if
        ``None``), in name order."""
        return await self._named(layout.names_prefix(sid), limit)

    async def retired(self, sid: bytes, limit: int | None = None) -> list[tuple[bytes, bytes]]:
        """``(name, retired key's value)`` of the first ``limit`` names of session ``sid``
        deleted whole (all if ``None``), in name order."""
        return await self._named(layout.retired_prefix(sid), limit)

    async def _named(self, prefix: bytes, limit: int | None) -> list[tuple[bytes, bytes]]:
        start = len(prefix)
        pairs = await self._records.scan(prefix, prefix_upper_bound(prefix), limit=limit)
        return [(key[start:], value) for key, value in pairs]

    # -- grants ---------------------------------------------------------------------------

    async def grant_ranks(
        self, owner: bytes, name: bytes, scopes: Sequence[bytes], caller: bytes
    ) -> list[int]:
        """The ranks of the grants ``caller`` holds on ``name`` of ``owner`` in any of
        ``scopes`` (one multi-get)."""
        found = await self._records.get_many(
            [layout.grant_key(owner, name, scope, caller) for scope in scopes]
        )
        return [layout.GRANT_VALUE.unpack(v)[0] for v in found if v is not None]

    async def whole_name_rank(self, owner: bytes, name: bytes, caller: bytes) -> int | None:
        """The rank of the grant ``caller`` holds on every version of ``name``, if any."""
        raw = await self._records.get(layout.grant_key(owner, name, layout.WHOLE_NAME, caller))
        return None if raw is None else int(layout.GRANT_VALUE.unpack(raw)[0])

    async def grants_on(self, owner: bytes, name: bytes) -> list[GrantFields]:
        """Every grant on ``name`` of session ``owner``."""
        prefix = layout.grant_name_prefix(owner, name)
        found = []
        for key, value in await prefix_pairs(self._records, prefix):
            rank, at, by = layout.GRANT_VALUE.unpack(value)
            rest = key[len(prefix) :]
            found.append((owner, name, rest[:_ID], rest[_ID:], rank, at, by))
        return found

    async def all_grants(self) -> list[GrantFields]:
        """Every grant kept."""
        found = []
        for key, value in await prefix_pairs(self._records, keys.ARTIFACT_GRANT):
            rest = key[len(keys.ARTIFACT_GRANT) :]
            rank, at, by = layout.GRANT_VALUE.unpack(value)
            owner, name = rest[:_ID], rest[_ID : -2 * _ID - 1]
            scope, target = rest[-2 * _ID : -_ID], rest[-_ID:]
            found.append((owner, name, scope, target, rank, at, by))
        return found

    async def grants_given(self, owner: bytes) -> list[tuple[bytes, bytes, bytes]]:
        """``(name, scope, target)`` of every grant on an artifact of session ``owner``."""
        prefix = keys.ARTIFACT_GRANT + owner
        found = []
        for key, _ in await prefix_pairs(self._records, prefix):
            rest = key[len(prefix) :]
            found.append((rest[: -2 * _ID - 1], rest[-2 * _ID : -_ID], rest[-_ID:]))
        return found

    async def granted_to(self, target: bytes) -> list[tuple[bytes, bytes, bytes]]:
        """``(owner, name, scope)`` of every grant to session ``target``, in key order."""
        prefix = keys.ARTIFACT_GRANTED + target
        found = []
        for key, _ in await prefix_pairs(self._records, prefix):
            rest = key[len(prefix) :]
            found.append((rest[:_ID], rest[_ID : -_ID - 1], rest[-_ID:]))
        return found

    async def has_grant_in(self, caller: bytes, owner: bytes) -> bool:
        """Whether ``caller`` holds any grant on an artifact of session ``owner``."""
        prefix = keys.ARTIFACT_GRANTED + caller + owner
        return bool(await prefix_pairs(self._records, prefix, limit=1))

    # -- audit logs -----------------------------------------------------------------------

    async def audit_entries(self, owner: bytes, name: bytes, limit: int | None) -> list[bytes]:
        """The first ``limit`` entries of the audit log of ``name`` (all if ``None``), as
        stored, oldest first."""
        pairs = await prefix_pairs(self._records, layout.audit_prefix(owner, name), limit=limit)
        return [value for _, value in pairs]

    async def audit_numbers(self, owner: bytes, name: bytes) -> tuple[int, int] | None:
        """The numbers of the first and the last entry of the audit log of ``name``, if it
        has any (two scans)."""
        prefix = layout.audit_prefix(owner, name)
        first = await prefix_pairs(self._records, prefix, limit=1)
        last = await prefix_pairs(self._records, prefix, reverse=True, limit=1)
        if not first or not last:
            return None
        return _SEQ.unpack(first[0][0][-8:])[0], _SEQ.unpack(last[0][0][-8:])[0]

    # -- query indexes --------------------------------------------------------------------

    def index_pages(
        self, lower: bytes, upper: bytes, *, reverse: bool = False, page: int = 256
    ) -> AsyncGenerator[tuple[bytes, bytes], None]:
        """The entries of an index range (``_artifact_index``'s prefixes), read ``page`` at a
        time (``storage.iter_pairs``)."""
        return iter_pairs(self._records, lower, upper, reverse=reverse, page=page)

    def most_selective(
        self,
        prefixes: list[bytes],
        bounds: Callable[[bytes], tuple[bytes, bytes]],
        probe: int,
        *,
        count_one: bool,
    ) -> Awaitable[tuple[bytes, int]]:
        """The index with the fewest entries in its ``bounds`` (``_indexscan.most_selective``)."""
        return indexscan.most_selective(self._records, prefixes, bounds, probe, count_one=count_one)

    def in_index(self, prefix: bytes, suffixes: list[bytes]) -> Awaitable[list[bytes | None]]:
        """The entry of each version (by its *suffix*) in the index ``prefix``, ``None``
        where it has none (one multi-get)."""
        return self._records.get_many([prefix + s for s in suffixes])

    def summaries(self, suffixes: list[bytes]) -> Awaitable[list[bytes | None]]:
        """The all-versions entry (``index.parse_summary``) of each version, by its suffix
        (one multi-get)."""
        return self._records.get_many([index.ALL + s for s in suffixes])

    async def infos(self, summaries: list[bytes]) -> list[ArtifactInfo]:
        """``to_info`` of the version each all-versions entry names, of those still stored
        (one multi-get)."""
        wanted = [keys.ARTIFACT + index.parse_summary(v)[1] for v in summaries]
        raw = await self._records.get_many(wanted)
        return [layout.to_info(ARTIFACT_CODEC.decode(r)) for r in raw if r is not None]
