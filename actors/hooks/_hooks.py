"""Lifecycle hooks: registered per point with a priority, run before the operation is written,
and obeyed — continue, cancel (nothing is written) or modify (the operation's data changes).

Hooks run in the turn of the session actor that performs the operation (the manager's, for
``session_start``, since no actor exists before the session does). Running them there, rather
than in another actor, costs no message per operation and lets a cancel stop the write in the
same turn. A hook that raises, returns something that is not a result, or overruns its
deadline is isolated: logged, counted, its result ignored — unless it was registered as
``required``, in which case the operation fails closed with ``HookCancelledError``. An async
hook is cancelled at its deadline; a sync one cannot be interrupted, so one that overran is
treated like an async one that was cancelled.

Each execution is recorded (hook, point, input, result, duration) in the journal entry of the
operation it ran for; a cancelled operation writes nothing, its hook records included.
"""

from __future__ import annotations

import copy
import enum
import inspect
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, NamedTuple

import anyio
import attrs

from satchel.runtime._errors import (
    HookCancelledError,
    InvalidArgumentError,
    SatchelError,
    ValidationError,
)

from .. import _validate as validate
from ..sessions._session_layout import decode_value, encode_value

log = logging.getLogger("satchel.hooks")


class HookPoint(enum.StrEnum):
    """Where hooks run."""

    SESSION_START = "session_start"
    SESSION_SUSPEND = "session_suspend"
    SESSION_RESUME = "session_resume"
    SESSION_COMPLETE = "session_complete"
    SESSION_FAIL = "session_fail"
    SESSION_ARCHIVE = "session_archive"
    SESSION_SAVE = "session_save"
    SESSION_RESTORE = "session_restore"
    STATE_CHANGED = "state_changed"
    ARTIFACT_CREATED = "artifact_created"
    ARTIFACT_ACCESSED = "artifact_accessed"
    ARTIFACT_DELETED = "artifact_deleted"
    TOOL_RESULT = "tool_result"
    AGENT_OUTPUT = "agent_output"


#: The fields of an operation's data that a hook may change with ``modify``, per point.
MODIFIABLE: dict[HookPoint, frozenset[str]] = {
    HookPoint.SESSION_START: frozenset({"name", "description", "tags", "metadata"}),
    HookPoint.STATE_CHANGED: frozenset({"value"}),
    HookPoint.ARTIFACT_CREATED: frozenset({"tags", "description", "mime_type", "custom"}),
    HookPoint.SESSION_FAIL: frozenset({"reason"}),
    HookPoint.TOOL_RESULT: frozenset({"tags", "metadata"}),
    HookPoint.AGENT_OUTPUT: frozenset({"tags", "metadata"}),
}


#: Untimed observers are called at most this long after an operation (while ``drain`` runs)…
FLUSH_DELAY_S = 0.01
#: …or as soon as this many operations wait for them.
BACKLOG_MAX = 512


class HookContext(NamedTuple):
    """What a hook sees: the point, the session, and the operation's data (a copy).

    A named tuple rather than an attrs class: one is built per hooked operation, and this
    is the cheapest immutable record to build.
    """

    point: HookPoint
    session_id: str
    data: Mapping[str, Any]


@attrs.frozen
class HookResult:
    """What a hook decides. Returning ``None`` means continue."""

    action: str  # "continue", "cancel" or "modify"
    reason: str | None = None
    data: Mapping[str, Any] | None = None

    @classmethod
    def proceed(cls) -> HookResult:
        """Let the operation go on as it is."""
        return _CONTINUE

    @classmethod
    def cancel(cls, reason: str) -> HookResult:
        """Stop the operation: it fails with ``HookCancelledError`` and writes nothing."""
        return cls("cancel", reason=str(reason))

    @classmethod
    def modify(cls, data: Mapping[str, Any]) -> HookResult:
        """Go on with these fields of the operation's data replaced."""
        return cls("modify", data=dict(data))


_CONTINUE = HookResult("continue")

HookFunction = Callable[[HookContext], "HookResult | Awaitable[HookResult | None] | None"]


@attrs.frozen
class HookRegistration:
    """One registered hook."""

    name: str
    point: HookPoint
    function: HookFunction = attrs.field(repr=False)
    priority: int = 0
    required: bool = False
    deadline_s: float | None = 1.0
    phase: str = "before"
    #: A coroutine function: run under a cancel scope at its deadline (a sync one cannot be
    #: interrupted, and entering a scope for it would only cost time).
    is_async: bool = False
    #: Whether the journal keeps the input this hook saw (off for hooks that redact it).
    record_input: bool = True


@attrs.frozen
class HookStatistics:
    """Counts since the runtime opened."""

    executions: int
    cancels: int
    modifications: int
    failures: int
    overruns: int


#: A ``notify_later`` waiting in the backlog: the observers, point, session, how to describe
#: the operation, the operation, what it found before, and its duration (µs).
_Later = tuple[
    tuple[HookRegistration, ...],
    HookPoint,
    str,
    Callable[[Any, Any], dict[str, Any]],
    Any,
    Any,
    int,
]


class _Outcome(Exception):
    """A hook's result could not be used (it raised, overran or returned nonsense)."""


class Hooks:
    """The hooks of one runtime, by point; shared by the managers and every session actor."""

    def __init__(self) -> None:
        self._by_point: dict[HookPoint, list[HookRegistration]] = {}
        self._after: dict[HookPoint, list[HookRegistration]] = {}
        #: The points with an async ``after`` hook (``notify`` must be awaited there).
        self.awaiting: frozenset[HookPoint] = frozenset()
        # Points whose ``after`` hooks are all sync and untimed (the built-ins): their hooks,
        # which ``notify_now`` calls without timing or awaitable checks.
        self._plain_after: dict[HookPoint, tuple[HookRegistration, ...]] = {}
        # Untimed observers' calls waiting for ``flush``, while ``drain`` runs: a context, or
        # what ``notify_later`` builds one from.
        self._backlog: list[tuple[tuple[HookRegistration, ...], HookContext] | _Later] = []
        self._backlog_started = anyio.Event()
        self._batching = False
        #: Whether any ``before`` hook is registered at all.
        self.has_any = False
        #: Whether any ``after`` hook is registered at all.
        self.observed = False
        self._names: dict[str, HookRegistration] = {}
        self._counts = dict.fromkeys(
            ("executions", "cancels", "modifications", "failures", "overruns"), 0
        )

    def register(
        self,
        point: str | HookPoint,
        function: HookFunction,
        *,
        name: str | None = None,
        priority: int = 0,
        required: bool = False,
        deadline_s: float | None = 1.0,
        phase: str = "before",
        record_input: bool = True,
    ) -> HookRegistration:
        """Run ``function`` (sync or async, taking a ``HookContext``) at ``point``; hooks of
        higher ``priority`` run first. ``name`` (default: the function's qualified name) must
        be unique; it is what the journal records and ``exact`` replay looks up.

        ``phase="after"`` registers an observer instead: it runs once the operation is
        written, sees its data with ``duration_us`` added, and cannot change anything (its
        result is ignored, and it is not journaled); a sync one with ``deadline_s=None`` is
        untimed, and called in batches shortly after (see ``notify_now``). ``record_input=False``
        keeps the input a
        hook saw out of the journal (for a hook that redacts it; ``exact`` replay then cannot
        re-run that hook)."""
        if phase not in ("before", "after"):
            raise ValidationError(f"phase must be 'before' or 'after', not {phase!r}")
        try:
            point = HookPoint(point)
        except ValueError:
            names = ", ".join(p.value for p in HookPoint)
            raise ValidationError(f"unknown hook point {point!r}; use one of {names}") from None
        if not callable(function):
            raise InvalidArgumentError(f"a hook must be callable, not {function!r}")
        if name is None:
            # Unnamed hooks are told apart by registration order; pass ``name`` for an identity
            # that replays of older journals can rely on.
            base = str(getattr(function, "__qualname__", repr(function)))
            name = next(n for n in _numbered(base) if n not in self._names)
        if name in self._names:
            raise ValidationError(f"a hook named {name!r} is already registered")
        if type(priority) is not int:
            raise InvalidArgumentError(f"priority must be an integer, not {priority!r}")
        if deadline_s is None:
            if phase != "after" or inspect.iscoroutinefunction(function):
                raise ValidationError("only a sync after hook may run without a deadline")
        elif not (isinstance(deadline_s, int | float) and deadline_s > 0):
            raise ValidationError(f"deadline_s must be a positive number, not {deadline_s!r}")
        is_async = inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
            getattr(function, "__call__", None)  # noqa: B004  (callable objects too)
        )
        registration = HookRegistration(
            name, point, function, priority, required, deadline_s, phase, is_async, record_input
        )
        self._names[name] = registration
        table = self._by_point if phase == "before" else self._after
        hooks = [*table.get(point, []), registration]
        hooks.sort(key=lambda r: -r.priority)  # stable: equal priorities keep their order
        table[point] = hooks
        self._note_async()
        return registration

    def _note_async(self) -> None:
        # Plain attributes, read on every operation: cheaper than properties or calls.
        self.has_any = bool(self._by_point)
        self.observed = bool(self._after)
        self.awaiting = frozenset(
            p for p, hooks in self._after.items() if any(r.is_async for r in hooks)
        )
        self._plain_after = {
            p: tuple(hooks)
            for p, hooks in self._after.items()
            if all(r.deadline_s is None for r in hooks)
        }

    def unregister(self, name: str) -> None:
        """Remove the hook named ``name``."""
        registration = self._names.pop(name, None)
        if registration is None:
            raise ValidationError(f"no hook named {name!r}")
        table = self._by_point if registration.phase == "before" else self._after
        left = [r for r in table[registration.point] if r.name != name]
        if left:
            table[registration.point] = left
        else:
            del table[registration.point]
        self._note_async()

    def has(self, point: HookPoint) -> bool:
        """Whether any hook runs at ``point`` (the fast path checks this first)."""
        return point in self._by_point

    def observes(self, point: HookPoint | None) -> bool:
        """Whether any ``after`` hook runs at ``point``."""
        return point in self._after

    def waits(self, point: HookPoint) -> bool:
        """Whether an ``after`` hook of ``point`` is async (so ``notify`` must be awaited);
        otherwise ``notify_now`` runs them all without a coroutine."""
        return point in self.awaiting

    async def notify(self, point: HookPoint, session_id: str, data: dict[str, Any]) -> None:
        """Run the ``after`` hooks of ``point``; what they return is ignored, failures and
        overruns are isolated."""
        context = HookContext(point, session_id, data)
        for registration in self._after.get(point, ()):
            self._counts["executions"] += 1
            try:
                if registration.is_async:
                    await self._invoke(registration, context)
                else:
                    pending = self._observe_now(registration, context)
                    if pending is not None:
                        await self._finish(registration, pending[0], pending[1])
            except _Outcome as failure:
                self._counts["failures"] += 1
                log.warning("hook %s after %s: %s", registration.name, point.value, failure)

    def notify_now(self, point: HookPoint, session_id: str, data: dict[str, Any]) -> None:
        """``notify`` for a point whose ``after`` hooks are all sync (see ``waits``).

        Where every one of them is untimed (the built-ins), they are called in batches by
        ``drain`` while it runs: calling the same few functions for many operations at once
        costs far less than one call in each operation's turn, whose code is no longer in the
        CPU's caches by then."""
        context = HookContext(point, session_id, data)
        plain = self._plain_after.get(point)
        if plain is not None:
            if not self._batching:
                self._call_plain(plain, context)
                return
            backlog = self._backlog
            backlog.append((plain, context))
            if len(backlog) == 1:
                self._backlog_started.set()
            elif len(backlog) >= BACKLOG_MAX:
                self.flush()
            return
        counts = self._counts
        for registration in self._after[point]:
            counts["executions"] += 1
            try:
                self._observe_now(registration, context)
            except _Outcome as failure:
                counts["failures"] += 1
                log.warning("hook %s after %s: %s", registration.name, point.value, failure)

    def notify_later(
        self,
        point: HookPoint,
        session_id: str,
        describe: Callable[[Any, Any], dict[str, Any]],
        operation: Any,
        before: Any,
        took_us: int,
    ) -> None:
        """``notify_now`` of the data ``describe(operation, before)`` with ``duration_us``
        added, built only when the observers are called: where they are batched, the
        operation's turn pays for one tuple. ``operation`` and ``before`` must not change
        (frozen records), and should hold little: the backlog keeps them until its flush."""
        plain = self._plain_after.get(point)
        if plain is not None and self._batching:
            backlog = self._backlog
            backlog.append((plain, point, session_id, describe, operation, before, took_us))
            if len(backlog) == 1:
                self._backlog_started.set()
            elif len(backlog) >= BACKLOG_MAX:
                self.flush()
            return
        data = describe(operation, before)
        data["duration_us"] = took_us
        self.notify_now(point, session_id, data)

    def flush(self) -> None:
        """Call the untimed observers of every operation noted since the last flush."""
        backlog, self._backlog = self._backlog, []
        for entry in backlog:
            if len(entry) == 2:
                self._call_plain(*entry)
                continue
            plain, point, session_id, describe, operation, before, took_us = entry
            try:
                data = describe(operation, before)
                data["duration_us"] = took_us
            except Exception as error:
                # A bug in describing: no observer sees this operation, every other's still
                # do (the backlog holds other sessions' operations too).
                self._counts["failures"] += 1
                log.warning("describing %s for its observers raised %r", point.value, error)
                continue
            self._call_plain(plain, HookContext(point, session_id, data))

    async def drain(self) -> None:
        """Until cancelled, flush the untimed observers' backlog ``FLUSH_DELAY_S`` after its
        first entry (or as soon as it holds ``BACKLOG_MAX``); afterwards call them at once."""
        self._batching = True
        try:
            while True:
                await self._backlog_started.wait()
                self._backlog_started = anyio.Event()
                await anyio.sleep(FLUSH_DELAY_S)
                self.flush()
        finally:
            self._batching = False
            self.flush()

    def _call_plain(self, plain: tuple[HookRegistration, ...], context: HookContext) -> None:
        counts = self._counts
        counts["executions"] += len(plain)
        for registration in plain:
            try:
                registration.function(context)
            except Exception as error:
                counts["failures"] += 1
                name, point = registration.name, context.point.value
                log.warning("hook %s after %s: raised %r", name, point, error)

    def _observe_now(
        self, registration: HookRegistration, context: HookContext
    ) -> tuple[Any, float] | None:
        """Call a sync observer; what it returned if that must still be awaited."""
        deadline = registration.deadline_s
        started = 0.0 if deadline is None else time.perf_counter()
        try:
            outcome = registration.function(context)
        except Exception as error:
            raise _Outcome(f"raised {error!r}") from error
        if outcome is not None and inspect.isawaitable(outcome):
            if inspect.iscoroutine(outcome) and not self.waits(context.point):
                outcome.close()  # registered as sync, called without awaiting: not run
                raise _Outcome("returned a coroutine; register an async function instead")
            return outcome, started
        if deadline is not None and time.perf_counter() - started > deadline:
            self._counts["overruns"] += 1
            raise _Outcome(f"overran its deadline of {deadline} s")
        return None

    def named(self, name: str) -> HookRegistration | None:
        """The hook registered as ``name``, if any."""
        return self._names.get(name)

    def statistics(self) -> HookStatistics:
        """Executions, cancels, modifications, failures and overruns so far."""
        self.flush()
        return HookStatistics(**self._counts)

    async def run(
        self, point: HookPoint, session_id: str, data: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run the hooks of ``point`` in priority order; the (possibly modified) data and a
        record of each execution. Raises ``HookCancelledError`` on a cancel."""
        records: list[dict[str, Any]] = []
        for registration in self._by_point.get(point, ()):
            # A deep copy: a hook that changes nested data in place changes nothing.
            given = copy.deepcopy(data)
            recorded = copy.deepcopy(data) if registration.record_input else None
            started = time.perf_counter()
            try:
                result = await self._call(registration, HookContext(point, session_id, given))
            except _Outcome as failure:
                self._counts["failures"] += 1
                log.warning("hook %s at %s: %s", registration.name, point.value, failure)
                took = round((time.perf_counter() - started) * 1e6)
                records.append(_failed(registration, recorded, str(failure), took))
                if registration.required:
                    raise HookCancelledError(
                        f"required hook {registration.name!r} at {point.value} failed: {failure}"
                    ) from None
                continue
            finally:
                self._counts["executions"] += 1
            took = round((time.perf_counter() - started) * 1e6)
            records.append(_record(registration, recorded, result, took))
            if result.action == "cancel":
                self._counts["cancels"] += 1
                raise HookCancelledError(
                    f"hook {registration.name!r} cancelled {point.value}: {result.reason}"
                )
            if result.action == "modify":
                self._counts["modifications"] += 1
                data = {**data, **copy.deepcopy(dict(result.data or {}))}
        return data, records

    async def decide(
        self, name: str, point: HookPoint, session_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        """What the hook registered as ``name`` decides on ``data`` now, in the form the
        journal records decisions (``missing`` if no such hook, ``failed`` if it raised,
        overran or returned nonsense); for ``exact`` replays."""
        registration = self._names.get(name)
        if registration is None:
            return {"result": "missing"}
        try:
            result = await self._call(registration, HookContext(point, session_id, data))
        except _Outcome as failure:
            return {"result": "failed", "error": str(failure)}
        found: dict[str, Any] = {"result": result.action}
        if result.reason is not None:
            found["reason"] = result.reason
        if result.data is not None:
            found["data"] = dict(result.data)
        # As the journal would give it back (tuples read back as lists).
        normal: dict[str, Any] = decode_value(encode_value(found))
        return normal

    async def _invoke(self, registration: HookRegistration, context: HookContext) -> object:
        """What one hook returns; ``_Outcome`` if it raised or overran its deadline."""
        started = time.perf_counter()
        cancelled = False
        try:
            if registration.is_async:
                with anyio.move_on_after(_limit(registration)) as scope:
                    result = await registration.function(context)  # type: ignore[misc]
                cancelled = scope.cancelled_caught
            else:
                result = registration.function(context)
                if inspect.isawaitable(result):  # a sync callable that returned a coroutine
                    with anyio.move_on_after(_limit(registration)) as scope:
                        result = await result
                    cancelled = scope.cancelled_caught
        except Exception as error:
            raise _Outcome(f"raised {error!r}") from error
        if cancelled or time.perf_counter() - started > _limit(registration):
            self._counts["overruns"] += 1
            raise _Outcome(f"overran its deadline of {_limit(registration)} s")
        return result

    async def _finish(self, registration: HookRegistration, pending: Any, started: float) -> None:
        """Await what a sync observer returned, within what is left of its deadline."""
        left = _limit(registration) - (time.perf_counter() - started)
        with anyio.move_on_after(max(0.0, left)) as scope:
            await pending
        if scope.cancelled_caught:
            self._counts["overruns"] += 1
            raise _Outcome(f"overran its deadline of {_limit(registration)} s")

    async def _call(self, registration: HookRegistration, context: HookContext) -> HookResult:
        """One hook's result, checked; ``_Outcome`` if it cannot be used."""
        result = await self._invoke(registration, context)
        if result is None:
            return _CONTINUE
        if not isinstance(result, HookResult) or result.action not in _ACTIONS:
            raise _Outcome(f"returned {result!r}, not a HookResult")
        if result.reason is not None and type(result.reason) is not str:
            raise _Outcome(f"gave a reason that is not text: {result.reason!r}")
        if result.data is not None:
            if result.action != "modify" or not isinstance(result.data, Mapping):
                raise _Outcome(f"gave data {result.data!r} with {result.action!r}")
            try:
                validate.json_like("hook data", dict(result.data))
                validate.encoded("hook data", encode_value, dict(result.data))
            except SatchelError as error:
                raise _Outcome(str(error)) from None
        if result.action == "modify":
            allowed = MODIFIABLE.get(context.point, frozenset())
            extra = sorted(set(result.data or {}) - allowed)
            if extra:
                raise _Outcome(
                    f"modified {', '.join(extra)}, which {context.point.value} does not allow "
                    f"(allowed: {', '.join(sorted(allowed)) or 'none'})"
                )
        return result


_ACTIONS = frozenset({"continue", "cancel", "modify"})


def _limit(registration: HookRegistration) -> float:
    """A hook's deadline in seconds (an untimed observer's is unbounded)."""
    return math.inf if registration.deadline_s is None else registration.deadline_s


def _numbered(base: str) -> Iterator[str]:
    yield base
    yield from (f"{base}#{n}" for n in itertools.count(2))


def _failed(
    registration: HookRegistration, given: dict[str, Any] | None, error: str, took_us: int
) -> dict[str, Any]:
    return {
        "hook": registration.name,
        "point": registration.point.value,
        "input": given,
        "result": "failed",
        "error": error,
        "duration_us": took_us,
    }


def _record(
    registration: HookRegistration, given: dict[str, Any] | None, result: HookResult, took_us: int
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "hook": registration.name,
        "point": registration.point.value,
        "input": given,
        "result": result.action,
        "duration_us": took_us,
    }
    if result.reason is not None:
        record["reason"] = result.reason
    if result.data is not None:
        record["data"] = dict(result.data)
    return record
