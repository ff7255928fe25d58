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


@attrs.frozen
class MetricsSummary:
    """Operations by hook point, their total duration (µs) in the session's turn, and the
    artifact bytes stored, for one session (or, aggregated, for ``sessions`` of them)."""

    session_id: str | None
    operations: dict[str, int]
    durations_us: dict[str, int]
    bytes_stored: int
    sessions: int = 1


class _Counts:
    __slots__ = ("bytes", "durations", "operations")

    def __init__(self) -> None:
        self.operations: dict[str, int] = {}
        self.durations: dict[str, int] = {}
        self.bytes = 0


class Metrics:
    """What the built-in metrics hook has counted since the runtime opened (or ``reset``)."""

    def __init__(self, *, privacy: bool = False) -> None:
        self.privacy = privacy
        self._key = os.urandom(32)
        self._sessions: dict[str, _Counts] = {}

    def observe(self, context: HookContext) -> None:
        """The hook: count one finished operation."""
        counts = self._sessions.get(context.session_id)
        if counts is None:
            counts = self._sessions[context.session_id] = _Counts()
        point = context.point  # a str enum: the key reads as its name
        operations, durations = counts.operations, counts.durations
        operations[point] = operations.get(point, 0) + 1
        durations[point] = durations.get(point, 0) + context.data.get("duration_us", 0)
        if point is HookPoint.ARTIFACT_CREATED:
            counts.bytes += context.data.get("size", 0)

    def summary(self, session_id: str) -> MetricsSummary:
        """One session's counts."""
        counts = self._sessions.get(session_id, _Counts())
        return MetricsSummary(
            session_id, _plain(counts.operations), _plain(counts.durations), counts.bytes
        )

    def aggregate(self) -> MetricsSummary:
        """Every session's counts added up."""
        operations: dict[str, int] = {}
        durations: dict[str, int] = {}
        stored = 0
        for counts in self._sessions.values():
            for point, n in counts.operations.items():
                operations[str(point)] = operations.get(str(point), 0) + n
            for point, took in counts.durations.items():
                durations[str(point)] = durations.get(str(point), 0) + took
            stored += counts.bytes
        return MetricsSummary(None, operations, durations, stored, len(self._sessions))

    def export(self) -> dict[str, Any]:
        """Plain data of every session's counts, keyed by session id, or by a keyed hash of
        it in privacy mode."""
        return {
            self._label(session_id): {
                "operations": _plain(counts.operations),
                "durations_us": _plain(counts.durations),
                "bytes_stored": counts.bytes,
            }
            for session_id, counts in self._sessions.items()
        }

    def reset(self) -> None:
        """Forget every count."""
        self._sessions.clear()

    def _label(self, session_id: str) -> str:
        if not self.privacy:
            return session_id
        return blake3.blake3(session_id.encode(), key=self._key).hexdigest(length=16)


def _plain(counts: dict[str, int]) -> dict[str, int]:
    return {str(point): n for point, n in counts.items()}


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
    observe = metrics.observe
    enabled = log.isEnabledFor

    def builtin(context: HookContext) -> None:
        observe(context)
        if enabled(logging.DEBUG):
            log_operation(context)

    for point in HookPoint:
        hooks.register(
            point,
            builtin,
            name=f"satchel.builtin:{point.value}",
            phase="after",
            deadline_s=None,  # trusted and constant-time: not timed
        )
