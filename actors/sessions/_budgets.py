"""Budgets shared down a tree of sessions: a session created (or forked) by a session script
counts its operations, artifacts and bytes against the budget of the session it came from as
well as its own, and takes that session's rate-limit tokens too; so does what it creates in
turn, up the whole chain. Without this a script could escape its session's limits by doing
its work in new sessions.

A session whose record names a ``budget_of`` is a *sharer*; the session it names is a
*holder*. A holder's usage is its own counters plus those of every sharer below it, summed
from the stored counters when first needed and kept up to date by each commit after that
(every counted write goes through a session actor on this runtime). A deleted session drops
what is kept, which is then summed again.
"""

from __future__ import annotations

import anyio
import attrs

from satchel.runtime._errors import (
    QuotaExceededError,
    RateLimitedError,
    SessionNotActiveError,
    SessionNotFoundError,
)
from satchel.storage import Batch, RecordReads

from .._model import SessionConfig, SessionStatus
from . import _session_layout as layout
from ._ratelimit import TokenBucket
from ._session_records import SessionRecords

_QUOTAS = ("max_operations", "max_artifacts", "max_bytes")


def take_token(
    bucket: TokenBucket, session_id: str, config: SessionConfig, holder: str | None = None
) -> None:
    """Take one rate-limit token for an operation of ``session_id`` (from ``holder``'s
    bucket if given), or refuse it."""
    wait = bucket.take(anyio.current_time())
    if wait:
        whose = "its" if holder is None else f"session {holder}'s"
        raise RateLimitedError(
            f"session {session_id} is over {whose} rate limit of {config.rate_limit} "
            f"operations/s; retry in {wait:.3f} s"
        )


def count_operation(session_id: str, counters: layout.Counters, limit: int) -> None:
    """Refuse an operation past a session's own ``max_operations``."""
    if counters.operations >= limit:
        raise QuotaExceededError(
            f"session {session_id} has used its {limit} operations (max_operations)"
        )


def limits_anything(config: SessionConfig) -> bool:
    """Whether a config has a quota or a rate limit a sharer could count against."""
    return config.rate_limit is not None or any(getattr(config, q) is not None for q in _QUOTAS)


@attrs.frozen
class Holder:
    """A session whose budget an operation counts against."""

    id: str
    config: SessionConfig


class Budgets:
    """The runtime's view of shared budgets (one per runtime, shared by its session actors)."""

    def __init__(self, records: RecordReads, buckets: dict[str, TokenBucket]) -> None:
        self._sessions = SessionRecords(records)
        self._buckets = buckets
        self._known: dict[str, layout.SessionRecord | None] = {}
        self._has_sharers: dict[str, bool] = {}
        self._usage: dict[str, list[int]] = {}

    async def holders(self, session_id: str, record: layout.SessionRecord) -> list[Holder]:
        """What an operation of ``session_id`` counts against besides its own counters: its
        own tree's usage if sharers count against it, then each holder up its chain."""
        found = []
        if limits_anything(record.config) and await self._sharers_of(session_id):
            found.append(Holder(session_id, record.config))
        current, seen = record, {session_id}
        while current.budget_of is not None and current.budget_of not in seen:
            seen.add(current.budget_of)
            holder = await self._record(current.budget_of)
            if holder is None:
                break  # deleted: its budget went with it
            if limits_anything(holder.config):
                found.append(Holder(holder.id, holder.config))
            current = holder
        return found

    def bucket(self, session_id: str, config: SessionConfig) -> TokenBucket:
        """The rate-limit bucket of a session (kept by the runtime: passivating must not
        refill it)."""
        bucket = self._buckets.get(session_id)
        if bucket is None:
            bucket = TokenBucket(config.rate_limit or 1.0, config.burst, anyio.current_time())
            self._buckets[session_id] = bucket
        return bucket

    def throttle(self, session_id: str, holders: list[Holder]) -> None:
        """Take a rate-limit token from each holder up the chain (its own bucket is the
        session's own business)."""
        for holder in holders:
            if holder.id != session_id and holder.config.rate_limit is not None:
                bucket = self.bucket(holder.id, holder.config)
                take_token(bucket, session_id, holder.config, holder.id)

    async def reserve(
        self, session_id: str, holders: list[Holder], operations: int, artifacts: int, size: int
    ) -> None:
        """Count a write against each holder before it is made, or refuse what would take a
        holder past one of its quotas (nothing counted then). Counted at once, with no
        suspension between the test and the count: writes awaited at the same time (on a
        store that suspends) each see the others'. ``release`` gives it back if the write
        fails."""
        usage = [await self._used(holder.id) for holder in holders]
        wanted = (operations, artifacts, size)
        for holder, used in zip(holders, usage, strict=True):
            config = holder.config
            for index, (name, more) in enumerate(zip(_QUOTAS, wanted, strict=True)):
                most = getattr(config, name)
                if most is not None and more > 0 and used[index] + more > most:
                    raise QuotaExceededError(
                        f"session {session_id} counts against the budget of session "
                        f"{holder.id}, which would pass its {name} of {most}"
                    )
        for used in usage:
            for index, more in enumerate(wanted):
                used[index] += more

    def release(self, holders: list[Holder], operations: int, artifacts: int, size: int) -> None:
        """Give back what ``reserve`` counted for a write that was not made."""
        for holder in holders:
            used = self._usage.get(holder.id)
            if used is not None:
                used[0] -= operations
                used[1] -= artifacts
                used[2] -= size

    async def admit(
        self,
        batch: Batch,
        record: layout.SessionRecord,
        sid: bytes,
        artifacts: int = 0,
        size: int = 0,
    ) -> list[Holder] | None:
        """Before a session is written: if it counts against another's budget, refuse it when
        that session is not active or the budgets up the chain cannot take its creation (one
        operation, with the artifacts and bytes it starts with), else count the creation
        against them and answer the holders (to ``release`` if it is not written);
        ``batch`` gets the entry that keeps its creation counted."""
        if record.budget_of is None:
            return None
        holder = await self._sessions.record(layout.bytes_of(record.budget_of))
        if holder is None:
            raise SessionNotFoundError(f"Session not found: {record.budget_of}")
        status = holder.status
        if status is not SessionStatus.ACTIVE:
            raise SessionNotActiveError(
                f"session {record.budget_of} is {status.value}: it cannot start sessions that "
                "count against its budget"
            )
        holders = await self.holders(record.id, record)
        self.throttle(record.id, holders)
        await self.reserve(record.id, holders, 1, artifacts, size)
        self._sessions.add_creation_counted(batch, layout.bytes_of(record.budget_of), sid)
        return holders

    def admitted(self, record: layout.SessionRecord) -> None:
        """The session ``record``, which counts against another's budget, was written (its
        creation was counted by ``admit``; ``release`` gives it back if it was not)."""
        assert record.budget_of is not None
        self._has_sharers[record.budget_of] = True

    def forget(self, session_id: str) -> None:
        """A session was deleted: what is kept is summed again when next needed."""
        self._known.pop(session_id, None)
        self._has_sharers.clear()
        self._usage.clear()

    async def holder_of(self, session_id: str) -> str | None:
        """The session whose budget ``session_id`` counts against, if any."""
        record = await self._record(session_id)
        return None if record is None else record.budget_of

    async def sharers(self, holder_id: str) -> list[str]:
        """The sessions counting against the budget of ``holder_id`` directly."""
        sharers = await self._sessions.sharers(layout.bytes_of(holder_id))
        return [layout.text_of(sid) for sid in sharers]

    # -- reading the store ------------------------------------------------------------------

    async def _record(self, session_id: str) -> layout.SessionRecord | None:
        found = self._known.get(session_id)
        if found is None:
            found = await self._sessions.record(layout.bytes_of(session_id))
            if found is None:
                # Not remembered: a keyed session's id is known before it exists, and a
                # session created under it later must count against its budget.
                return None
            self._known[session_id] = found
        return found

    async def _sharers_of(self, session_id: str) -> bool:
        known = self._has_sharers.get(session_id)
        if known is None:
            known = await self._sessions.has_sharers(layout.bytes_of(session_id))
            self._has_sharers[session_id] = known
        return known

    async def _used(self, holder_id: str) -> list[int]:
        used = self._usage.get(holder_id)
        if used is None:
            summed = await self._sum(layout.bytes_of(holder_id))
            # Another task may have summed it meanwhile and counted writes on its list: keep
            # that one (this sum, read before those writes, would lose them).
            used = self._usage.setdefault(holder_id, summed)
        return used

    async def _sum(self, holder: bytes) -> list[int]:
        """The counters of ``holder`` and every sharer below it, summed from the store."""
        total, pending, seen = [0, 0, 0], [holder], {holder}
        while pending:
            sid = pending.pop()
            counters = await self._sessions.counters(sid)
            if counters is not None:
                total[0] += counters.operations
                total[1] += counters.artifacts
                total[2] += counters.total_bytes
            for value in await self._sessions.spent_by_deleted(sid):
                total[0] += int.from_bytes(value, "big")  # what deleted sharers did
            for sharer in await self._sessions.sharers(sid):
                if sharer not in seen:
                    seen.add(sharer)
                    pending.append(sharer)
        return total
