"""The built-in hooks: an operation log and per-session metrics, both ``after`` observers.

``Metrics`` counts, per session and hook point, the operations done, the time they took in the
session's turn and the artifact bytes stored; ``summary`` reads one session, ``aggregate``
all of them, and ``export`` gives plain data for a metrics system, with session ids replaced
by a keyed hash in privacy mode (the key is random per runtime, so exports of two runtimes do
not link sessions).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import attrs
import blake3

from ._hooks import HookContext, HookPoint, Hooks

log = logging.getLogger("satchel.operations")
_debugging = log.isEnabledFor


@attrs.frozen
class MetricsSummary:
    """Operations by hook point, their total duration (µs) in the session's turn, and the
    artifact bytes stored, for one session (or, aggregated, for ``sessions`` of them)."""

    session_id: str | None
    operations: dict[str, int]
    durations_us: dict[str, int]
    bytes_stored: int
    sessions: int = 1


class Metrics:
    """What the built-in metrics hook has counted since the runtime opened (or ``reset``).

    A deleted session's counts leave the per-session table (``summary``, ``export``) and
    stay in ``aggregate``, so memory follows the sessions that exist, not all there were.
    """

    def __init__(self, *, privacy: bool = False) -> None:
        self.privacy = privacy
        self._key = os.urandom(32)
        # session id -> point -> [operations, total µs]; kept lean: one is made per session.
        self._sessions: dict[str, dict[str, list[int]]] = {}
        self._bytes: dict[str, int] = {}
        # The counts of deleted sessions, folded together, and how many they were.
        self._deleted: dict[str, list[int]] = {}
        self._deleted_bytes = 0
        self._deleted_sessions = 0
        # The hooks whose batched observer calls must land before a read (see ``install``).
        self._hooks: Hooks | None = None

    def observe(self, context: HookContext) -> None:
        """The hook: count one finished operation (and log it, at debug level)."""
        point, session_id, data = context
        points = self._sessions.get(session_id)
        if points is None:
            points = self._sessions[session_id] = {}
        took = data.get("duration_us", 0)
        entry = points.get(point)
        if entry is None:
            points[point] = [1, took]
        else:
            entry[0] += 1
            entry[1] += took
        if point is HookPoint.ARTIFACT_CREATED:
            self._bytes[session_id] = self._bytes.get(session_id, 0) + data.get("size", 0)
        if _debugging(logging.DEBUG):
            log_operation(context)

    def summary(self, session_id: str) -> MetricsSummary:
        """One session's counts."""
        self._flush()
        points = self._sessions.get(session_id, {})
        return MetricsSummary(
            session_id,
            {str(p): e[0] for p, e in points.items()},
            {str(p): e[1] for p, e in points.items()},
            self._bytes.get(session_id, 0),
        )

    def aggregate(self) -> MetricsSummary:
        """Every session's counts added up (deleted sessions' included)."""
        self._flush()
        operations: dict[str, int] = {}
        durations: dict[str, int] = {}
        for points in [*self._sessions.values(), self._deleted]:
            for point, (count, took) in points.items():
                operations[str(point)] = operations.get(str(point), 0) + count
                durations[str(point)] = durations.get(str(point), 0) + took
        stored = sum(self._bytes.values()) + self._deleted_bytes
        sessions = len(self._sessions) + self._deleted_sessions
        return MetricsSummary(None, operations, durations, stored, sessions)

    def forget(self, session_id: str) -> None:
        """Fold a deleted session's counts into those of deleted sessions: ``aggregate``
        keeps them, ``summary`` and ``export`` no longer name the session."""
        self._flush()
        points = self._sessions.pop(session_id, None)
        stored = self._bytes.pop(session_id, 0)
        if points is None and not stored:
            return
        self._deleted_sessions += 1
        self._deleted_bytes += stored
        for point, (count, took) in (points or {}).items():
            entry = self._deleted.setdefault(point, [0, 0])
            entry[0] += count
            entry[1] += took

    def export(self) -> dict[str, Any]:
        """Plain data of every session's counts, keyed by session id, or by a keyed hash of
        it in privacy mode."""
        self._flush()
        exported = {}
        for session_id in self._sessions:
            summary = self.summary(session_id)
            exported[self._label(session_id)] = {
                "operations": summary.operations,
                "durations_us": summary.durations_us,
                "bytes_stored": summary.bytes_stored,
            }
        return exported

    def reset(self) -> None:
        """Forget every count."""
        self._flush()
        self._sessions.clear()
        self._bytes.clear()
        self._deleted.clear()
        self._deleted_bytes = self._deleted_sessions = 0

    def _flush(self) -> None:
        if self._hooks is not None:
            self._hooks.flush()

    def _label(self, session_id: str) -> str:
        if not self.privacy:
            return session_id
        return blake3.blake3(session_id.encode(), key=self._key).hexdigest(length=16)


def log_operation(context: HookContext) -> None:
    """The logging hook: one debug line per finished operation."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "%s %s in %s us",
            context.point.value,
            context.session_id,
            context.data.get("duration_us"),
        )


def install(hooks: Hooks, metrics: Metrics) -> None:
    """Register the logging and metrics hooks after every point (as one registration, so an
    operation pays for one call)."""
    metrics._hooks = hooks
    for point in HookPoint:
        hooks.register(
            point,
            metrics.observe,
            name=f"satchel.builtin:{point.value}",
            phase="after",
            deadline_s=None,  # trusted and constant-time: not timed
        )
