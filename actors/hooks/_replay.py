"""Time travel and replay: a session's state rebuilt from its journal, never changing it.

The journal holds every change with what it changed to (variable values, artifact versions
with their hashes, status moves) and the hook executions that decided it, so:

* ``state_at(seq)`` folds the entries up to ``seq`` into variables, artifacts and status;
* ``simulate`` replays every entry with its recorded results; ``debug`` does the same and
  keeps the state after each step;
* ``exact`` also re-runs each recorded hook (looked up by name among those registered now) on
  its recorded input and compares what it decides with what was recorded;
* ``modified`` pins the given variables to override values — in the starting state and in
  every write to them — and re-runs the hooks on the inputs so changed, reporting where their
  decisions diverge from the recorded ones.

A fork's first entry holds the state it started from, so a fork replays on its own.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import AsyncGenerator, Iterable, Mapping
from contextlib import aclosing
from typing import Any

import anyio
import anyio.lowlevel
import attrs

from satchel.runtime._errors import InvalidArgumentError, ReplayError, ValidationError
from satchel.storage import RecordReads

from ..sessions._session_records import SessionRecords
from ._hooks import HookPoint, Hooks

#: Entries replayed between two checkpoints (and progress reports).
STEP = 512


class ReplayMode(enum.StrEnum):
    """How a replay treats the recorded hook executions."""

    SIMULATE = "simulate"
    EXACT = "exact"
    MODIFIED = "modified"
    DEBUG = "debug"


@attrs.frozen
class ArtifactAt:
    """An artifact version as the journal knows it."""

    id: str
    name: str
    version: int
    content_hash: str
    size: int
    type: str


@attrs.frozen
class SessionState:
    """A session as it was after journal entry ``seq``."""

    session_id: str
    seq: int
    status: str
    variables: dict[str, Any]
    artifacts: tuple[ArtifactAt, ...]  # by name, then version
    #: The event log: (position, time in µs, data), oldest first; and the last position given.
    events: tuple[tuple[int, int, dict[str, Any]], ...] = ()
    last_event: int = 0
    last_event_at: int = 0  # µs: the time of the last event appended (popped or not)


@attrs.frozen
class Mismatch:
    """A re-run hook that decided differently from the record."""

    seq: int
    hook: str
    expected: dict[str, Any]
    actual: dict[str, Any]


@attrs.frozen
class ReplayStep:
    """The state after one entry (``debug`` mode)."""

    seq: int
    kind: str
    variables: dict[str, Any]


@attrs.frozen
class ReplayResult:
    """What a replay found; the replayed session is unchanged."""

    session_id: str
    mode: ReplayMode
    events_replayed: int
    hooks_replayed: int
    matched: int
    mismatched: int
    state: dict[str, Any]
    artifacts: tuple[ArtifactAt, ...]
    mismatches: tuple[Mismatch, ...]
    steps: tuple[ReplayStep, ...] = ()
    stopped: bool = False


@attrs.define
class ReplayProgress:
    """Watch a running replay (``done`` of ``total`` entries) and stop it early. One per
    replay: once stopped it stays stopped."""

    total: int = 0
    done: int = 0
    stop_requested: bool = False

    def stop(self) -> None:
        """Stop after the entry being replayed; the result says ``stopped``."""
        self.stop_requested = True


_EVENT_KINDS = frozenset({"events_appended", "event_popped", "events_cleared"})


class _Fold:
    """A session's state, built entry by entry."""

    def __init__(self) -> None:
        self.status = "active"
        self.variables: dict[str, Any] = {}
        self.artifacts: dict[str, ArtifactAt] = {}
        self.events: dict[int, tuple[int, dict[str, Any]]] = {}
        self.last_event = 0
        self.last_event_at = 0

    def apply(self, kind: str, data: Mapping[str, Any]) -> None:
        if kind in _EVENT_KINDS:
            self._apply_event_change(kind, data)
        elif kind == "state_set":
            self.variables[data["key"]] = data["value"]
        elif kind == "session_created":
            self.variables.update(data.get("state", {}))
        elif kind == "state_deleted":
            self.variables.pop(data["key"], None)
        elif kind == "status_changed":
            self.status = data["to"]
        elif kind == "artifact_stored":
            self.artifacts[data["id"]] = _artifact(data)
        elif kind == "artifact_deleted":
            for gone in data["deleted"]:
                self.artifacts.pop(gone["id"], None)
        elif kind == "session_forked":
            self.variables = dict(data["variables"])
            self.artifacts = {a["id"]: _artifact(a) for a in data["artifacts"]}
            self.events = {p: (at, d) for p, at, d in data.get("events", ())}
            self.last_event = data.get("last_event", 0)
            self.last_event_at = data.get("last_event_at", 0)
        elif type(kind) is not str:  # other kinds change nothing here; this is no kind
            raise TypeError(f"a journal entry's kind is {type(kind).__name__}, not text")

    def _apply_event_change(self, kind: str, data: Mapping[str, Any]) -> None:
        if kind == "events_appended":
            self.variables.update(data.get("state", {}))
            for key in data.get("deleted", ()):
                self.variables.pop(key, None)
            for offset, event in enumerate(data["events"]):
                self.events[data["first"] + offset] = (data["at"], event)
            self.last_event = data["first"] + len(data["events"]) - 1
            if data["events"]:
                self.last_event_at = data["at"]
        elif kind == "event_popped":
            self.events.pop(data["position"], None)
        else:
            self.events.clear()

    def event_list(self) -> tuple[tuple[int, int, dict[str, Any]], ...]:
        return tuple((p, at, d) for p, (at, d) in sorted(self.events.items()))

    def artifact_list(self) -> tuple[ArtifactAt, ...]:
        return tuple(sorted(self.artifacts.values(), key=lambda a: (a.name, a.version)))


def event_log_of(
    entries: Iterable[tuple[str, Mapping[str, Any]]],
) -> tuple[dict[int, tuple[int, dict[str, Any]]], int, int]:
    """The event log (position → (time µs, data)), last position and last event time a
    journal's ``(kind, data)`` entries leave."""
    fold = _Fold()
    for kind, data in entries:
        if kind in _EVENT_KINDS or kind == "session_forked":
            fold.apply(kind, data)
    return fold.events, fold.last_event, fold.last_event_at


def _artifact(data: Mapping[str, Any]) -> ArtifactAt:
    return ArtifactAt(
        data["id"], data["name"], data["version"], data["hash"], data["size"], data["type"]
    )


#: ``(seq, at_us, kind, data, cause)`` (``SessionRecords.journal``).
Entry = tuple[int, int, str, dict[str, Any], dict[str, Any] | None]


async def journal_pages(
    records: RecordReads, sid: bytes, upto: int | None = None, page: int = 256
) -> AsyncGenerator[list[Entry], None]:
    """The journal of ``sid`` in order, up to and including entry ``upto``, a page of
    decoded entries at a time (a replay may stop early; its loop over a page's entries is a
    plain one, which costs a tenth of going through an async generator per entry).

    A page of 1,024 entries kept some 4,000 objects alive at once: the collector's young
    passes moved them to the old generations, and full collections ran over the whole heap
    (a replay of 10,000 entries 17-18 ms instead of 12.7-12.9 with pages of 256)."""
    journal = SessionRecords(records)
    first = 1
    while upto is None or first <= upto:
        limit = page if upto is None else min(page, upto - first + 1)
        entries = await journal.journal(sid, first, limit)
        if entries:
            yield entries
        if len(entries) < limit:
            return
        first = entries[-1][0] + 1


async def last_seq(records: RecordReads, sid: bytes) -> int:
    """The sequence of the newest journal entry (0 if none)."""
    newest = await SessionRecords(records).last_entry(sid)
    return 0 if newest is None else newest[0]


def check_seq(at: object, last: int, session_id: str) -> int:
    """A journal position: 1..last (``None`` means ``last``)."""
    if at is None:
        return last
    if type(at) is not int:
        raise InvalidArgumentError(f"a journal sequence must be an integer, not {at!r}")
    if not 1 <= at <= last:
        raise ValidationError(f"session {session_id} has journal entries 1..{last}, not {at}")
    return at


#: What folding a damaged journal entry (data of the wrong shape) raises.
_UNREPLAYABLE = (KeyError, TypeError, AttributeError)


def _unreplayable(session_id: str, seq: int, kind: object, error: Exception) -> ReplayError:
    return ReplayError(
        f"session {session_id}: journal entry {seq} ({kind}) cannot be replayed: {error!r}"
    )


async def state_at(records: RecordReads, sid: bytes, session_id: str, seq: int) -> SessionState:
    """The session after entry ``seq``."""
    fold = _Fold()
    pages = journal_pages(records, sid, seq)
    async with aclosing(pages):
        async for page in pages:
            for entry, _, kind, data, _ in page:
                try:
                    fold.apply(kind, data)
                except _UNREPLAYABLE as error:
                    raise _unreplayable(session_id, entry, kind, error) from None
    return SessionState(
        session_id,
        seq,
        fold.status,
        fold.variables,
        fold.artifact_list(),
        fold.event_list(),
        fold.last_event,
        fold.last_event_at,
    )


async def replay(
    records: RecordReads,
    hooks: Hooks,
    sid: bytes,
    session_id: str,
    *,
    mode: ReplayMode,
    upto: int,
    modifications: Mapping[str, Any],
    compare_results: bool,
    stop_on_error: bool,
    progress: ReplayProgress,
    steps_from: int = 1,
) -> ReplayResult:
    """Replay entries 1..``upto`` of ``sid`` in ``mode`` (see the module docstring); in
    ``debug`` mode, with the state after each entry from ``steps_from`` on."""
    fold = _Fold()
    pinned = dict(modifications) if mode is ReplayMode.MODIFIED else {}
    fold.variables.update(copy.deepcopy(pinned))
    rerun = mode in (ReplayMode.EXACT, ReplayMode.MODIFIED)
    counts = {"events": 0, "hooks": 0, "matched": 0}
    mismatches: list[Mismatch] = []
    steps: list[ReplayStep] = []
    progress.total, progress.done = upto, 0
    halted = False
    journal = journal_pages(records, sid, upto)
    async with aclosing(journal):
        async for page in journal:
            for seq, _, kind, data, _ in page:
                if progress.stop_requested:
                    break
                try:
                    if pinned and kind in ("state_set", "state_deleted") and data["key"] in pinned:
                        # A pinned variable keeps its override through writes and deletes alike.
                        data = {**data, "value": copy.deepcopy(pinned[data["key"]])}
                        kind = "state_set"
                    ran = data.get("hooks", ()) if rerun else ()
                except _UNREPLAYABLE as error:
                    raise _unreplayable(session_id, seq, kind, error) from None
                if rerun:
                    for record in ran:
                        found = await _rerun(
                            hooks, session_id, seq, record, pinned, compare_results
                        )
                        counts["hooks"] += 1
                        if found is None:
                            counts["matched"] += 1
                        else:
                            mismatches.append(found)
                            halted = stop_on_error
                try:
                    fold.apply(kind, data)
                except _UNREPLAYABLE as error:
                    raise _unreplayable(session_id, seq, kind, error) from None
                if pinned and kind in ("session_created", "session_forked", "events_appended"):
                    # An append's state delta does not override a pin either.
                    fold.variables.update(copy.deepcopy(pinned))
                counts["events"] += 1
                progress.done = seq
                if mode is ReplayMode.DEBUG and seq >= steps_from:
                    steps.append(ReplayStep(seq, kind, copy.deepcopy(fold.variables)))
                if halted:
                    break
                if counts["events"] % STEP == 0:
                    await anyio.lowlevel.checkpoint()
            else:
                continue  # the page is done: read the next
            break  # stopped or halted within the page

    if progress.done < upto and not (progress.stop_requested or halted):
        # The journal is read a page at a time: entries gone before their page was read
        # (the session deleted meanwhile) must not pass for a whole replay.
        raise ReplayError(
            f"session {session_id}: the journal ended at entry {progress.done} of {upto} "
            "during the replay (was the session deleted?)"
        )
    return ReplayResult(
        session_id=session_id,
        mode=mode,
        events_replayed=counts["events"],
        hooks_replayed=counts["hooks"],
        matched=counts["matched"],
        mismatched=len(mismatches),
        state=fold.variables,
        artifacts=fold.artifact_list(),
        mismatches=tuple(mismatches),
        steps=tuple(steps),
        stopped=progress.stop_requested or (halted and counts["events"] < upto),
    )


async def _rerun(
    hooks: Hooks,
    session_id: str,
    seq: int,
    record: Mapping[str, Any],
    pinned: Mapping[str, Any],
    compare_results: bool,
) -> Mismatch | None:
    """Run a recorded hook again (with its deadline) on its recorded input, pinned variables
    applied; a ``Mismatch`` if it decides otherwise."""
    expected = {"result": record["result"]}
    for field in ("reason", "data", "error"):
        if field in record:
            expected[field] = record[field]
    if record.get("input") is None:
        actual: dict[str, Any] = {"result": "unrecorded"}  # registered with record_input=False
    else:
        given = copy.deepcopy(dict(record["input"]))
        if pinned and given.get("key") in pinned and "value" in given:
            given["value"] = copy.deepcopy(pinned[given["key"]])
        point = HookPoint(record["point"])
        actual = await hooks.decide(record["hook"], point, session_id, given)
    if expected.get("result") == "failed" and actual.get("result") == "failed":
        return None  # failed then and now (the messages may differ)
    if not compare_results or actual == expected:
        return None
    return Mismatch(seq, record["hook"], expected, actual)


def mode_of(value: object) -> ReplayMode:
    """A replay mode from its name."""
    try:
        return ReplayMode(value)  # type: ignore[arg-type]
    except ValueError:
        names = ", ".join(m.value for m in ReplayMode)
        raise ValidationError(f"unknown replay mode {value!r}; use one of {names}") from None
