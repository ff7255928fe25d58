"""The runtime calls of ``SatchelSaver``'s logic, and the two ways of making them.

The saver's operations are written once, as generators ("plans") that yield ``Call``s —
``rt.<area>.<method>(*args, **kwargs)`` — and receive each answer (or have its error thrown
in). ``drive_async`` awaits them on ``satchel.open_runtime``'s runtime; ``drive_sync`` calls
the blocking twins of ``satchel.sync``'s. Listing plans also yield ``Emit``s, the items they
hand to their caller one at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias, TypeVar, cast

from satchel import ArtifactNotFoundError, SessionExistsError, SessionNotFoundError

T = TypeVar("T")

RAISE: Final = object()


@dataclass(frozen=True, slots=True)
class Call:
    """One call on the runtime, the same name on the async runtime (awaited) and on
    ``satchel.sync``'s (blocking)."""

    area: Literal["sessions", "artifacts"]
    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: What a missing session or artifact answers instead of raising (``RAISE``: raise).
    missing: Any = RAISE
    #: Whether ``SessionExistsError`` answers ``None`` instead of raising.
    exists_ok: bool = False


@dataclass(frozen=True, slots=True)
class Emit:
    """An item a listing plan hands to its caller."""

    item: Any


Plan: TypeAlias = Generator[Call, Any, T]
ListPlan: TypeAlias = Generator["Call | Emit", Any, None]


def _settle(call: Call, error: Exception) -> tuple[Any, Exception | None]:
    if call.missing is not RAISE and isinstance(
        error, SessionNotFoundError | ArtifactNotFoundError
    ):
        return call.missing, None
    if call.exists_ok and isinstance(error, SessionExistsError):
        return None, None
    return None, error


def _target(rt: Any, call: Call) -> Callable[..., Any]:
    return cast(Callable[..., Any], getattr(getattr(rt, call.area), call.method))


def _call_sync(rt: Any, call: Call) -> tuple[Any, Exception | None]:
    try:
        return _target(rt, call)(*call.args, **call.kwargs), None
    except Exception as error:
        return _settle(call, error)


async def _call_async(rt: Any, call: Call) -> tuple[Any, Exception | None]:
    try:
        return await _target(rt, call)(*call.args, **call.kwargs), None
    except Exception as error:
        return _settle(call, error)


def _step(plan: Generator[Any, Any, Any], reply: Any, error: Exception | None) -> Any:
    return plan.throw(error) if error is not None else plan.send(reply)


def drive_sync(rt: Any, plan: Plan[T]) -> T:
    """Run ``plan`` on a ``satchel.sync`` runtime; its result."""
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            call = _step(plan, reply, error)
        except StopIteration as stop:
            return cast(T, stop.value)
        reply, error = _call_sync(rt, call)


async def drive_async(rt: Any, plan: Plan[T]) -> T:
    """Run ``plan`` on an async runtime; its result."""
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            call = _step(plan, reply, error)
        except StopIteration as stop:
            return cast(T, stop.value)
        reply, error = await _call_async(rt, call)


def iter_sync(rt: Any, plan: ListPlan) -> Iterator[Any]:
    """The items of a listing plan, run on a ``satchel.sync`` runtime."""
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            step = _step(plan, reply, error)
        except StopIteration:
            return
        if isinstance(step, Emit):
            reply, error = None, None
            yield step.item
        else:
            reply, error = _call_sync(rt, step)


async def iter_async(rt: Any, plan: ListPlan) -> AsyncIterator[Any]:
    """The items of a listing plan, run on an async runtime."""
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            step = _step(plan, reply, error)
        except StopIteration:
            return
        if isinstance(step, Emit):
            reply, error = None, None
            yield step.item
        else:
            reply, error = await _call_async(rt, step)


async def collect_async(rt: Any, plan: ListPlan) -> list[Any]:
    """Every item of a listing plan, run on an async runtime."""
    return [item async for item in iter_async(rt, plan)]
