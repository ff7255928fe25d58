"""The runtime calls of ``SatchelSaver``'s logic, and the two ways of making them.

The saver's operations are written once, as generators ("plans") that yield ``Call``s —
``rt.<area>.<method>(*args, **kwargs)`` — and receive each answer (or have its error thrown
in). ``drive_async`` awaits them on ``satchel.open_runtime``'s runtime; ``drive_sync`` calls
the blocking twins of ``satchel.sync``'s. Listing plans also yield ``Emit``s, the items they
hand to their caller one at a time. A plan yields a ``Settle`` to wait until its saver's
other appends on a thread are answered (``drive_async`` waits and answers ``True``; the sync
drivers answer ``False`` at once: their callers' threads cannot wait on the loop).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, TypeVar, cast

from satchel import (
    ArtifactNotFoundError,
    InvalidStateTransitionError,
    SessionExistsError,
    SessionNotActiveError,
    SessionNotFoundError,
    session_id_for,
)

from . import _langgraph_layout as lay

T = TypeVar("T")

RAISE: Final = object()
#: Threads whose view a saver keeps.
_VIEWS: Final = 4096
#: Appends refused because another writer came first before a put gives up.
TRIES: Final = 64
_NO_KWARGS: Final[Mapping[str, Any]] = MappingProxyType({})


class Call:
    """One call on the runtime, the same name on the async runtime (awaited) and on
    ``satchel.sync``'s (blocking). A plain class with slots: a put makes one, and a frozen
    dataclass takes several times as long to build."""

    __slots__ = ("area", "args", "exists_ok", "kwargs", "method", "missing")

    def __init__(
        self,
        area: Literal["sessions", "artifacts"],
        method: str,
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] = _NO_KWARGS,
        missing: Any = RAISE,
        exists_ok: bool = False,
    ) -> None:
        self.area = area
        self.method = method
        self.args = args
        self.kwargs = kwargs
        #: What a missing session or artifact answers instead of raising (``RAISE``: raise).
        self.missing = missing
        #: Whether ``SessionExistsError`` answers ``None`` instead of raising.
        self.exists_ok = exists_ok

    def __repr__(self) -> str:
        return f"Call({self.area}.{self.method}, {self.args!r}, {dict(self.kwargs)!r})"


@dataclass(frozen=True, slots=True)
class Emit:
    """An item a listing plan hands to its caller."""

    item: Any


class Settle:
    """A wait a plan asks its async driver for: ``until()`` is what to await."""

    __slots__ = ("until",)

    def __init__(self, until: Callable[[], Awaitable[None]]) -> None:
        self.until = until


Plan: TypeAlias = Generator["Call | Settle", Any, T]


@functools.lru_cache(maxsize=4096)
def sid(key: str) -> str:
    """The session id of a thread's key (derived from it; cached, as every call needs it)."""
    return session_id_for(key)


ListPlan: TypeAlias = Generator["Call | Settle | Emit", Any, None]


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
    try:
        while True:
            try:
                call = _step(plan, reply, error)
            except StopIteration as stop:
                return cast(T, stop.value)
            if isinstance(call, Settle):
                reply, error = False, None
            else:
                reply, error = _call_sync(rt, call)
    finally:
        plan.close()  # an interrupted plan's cleanups run now


async def drive_async(rt: Any, plan: Plan[T]) -> T:
    """Run ``plan`` on an async runtime; its result. (``_call_async`` inlined: most plans
    make one call, and a put's every microsecond counts.)"""
    reply: Any = None
    error: Exception | None = None
    try:
        while True:
            try:
                call = plan.throw(error) if error is not None else plan.send(reply)
            except StopIteration as stop:
                return cast(T, stop.value)
            if isinstance(call, Settle):
                await call.until()
                reply, error = True, None
                continue
            try:
                area = getattr(rt, call.area)
                reply = await getattr(area, call.method)(*call.args, **call.kwargs)
                error = None
            except Exception as failure:
                reply, error = _settle(call, failure)
    finally:
        plan.close()  # an interrupted (cancelled) plan's cleanups run now


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
        elif isinstance(step, Settle):
            reply, error = False, None
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
        elif isinstance(step, Settle):
            await step.until()
            reply, error = True, None
        else:
            reply, error = await _call_async(rt, step)


async def collect_async(rt: Any, plan: ListPlan) -> list[Any]:
    """Every item of a listing plan, run on an async runtime."""
    return [item async for item in iter_async(rt, plan)]


class ThreadAppends:
    """How ``SatchelSaver``'s plans append to a thread (a base class of ``ThreadPlans``):
    creating its session when needed, counting the appends in flight, and appending with
    ``expect_position`` where the thread's view (``lay.View``) saw the log."""

    if TYPE_CHECKING:
        rt: Any

        def _scope(self) -> dict[str, Any]: ...

    def _setup_appends(self) -> None:
        self._known: set[str] = set()  # session keys known to exist (a hint; misses recover)
        self._views: dict[str, lay.View] = {}  # what is known of each thread (see lay.View)
        #: The appends of this saver in flight on each thread (the sync methods run in
        #: several threads: counted under a lock).
        self._inflight: dict[str, int] = {}
        self._counting = threading.Lock()
        #: What the plans waiting for those appends to be answered await (async driver).
        self._waiters: dict[str, asyncio.Future[None]] = {}
        #: The plans waiting for their turn on each thread, first come first (``_turn``).
        self._queued: dict[str, list[object]] = {}
        #: How many times an append was refused since another writer came first (a figure
        #: for tests and benchmarks).
        self.conflicts = 0

    def _create(self, key: str, thread_id: str) -> Plan[bool]:
        """Create the thread's session unless it exists; whether this made it."""
        options = {"key": key, "name": lay.session_name(thread_id), "tags": ["langgraph"]}
        made = yield Call("sessions", "create", (), options | self._scope(), exists_ok=True)
        self._known.add(key)
        return made is not None

    def _append(
        self,
        key: str,
        thread_id: str,
        event: dict[str, Any],
        state: dict[str, Any],
        delete: Sequence[str] = (),
        expect: int | None = None,
        forget: bool = True,
    ) -> Plan[int]:
        """One ``append_events`` on the thread's session, creating it first if needed and
        resuming it if a policy suspended it; ``forget``: the append changes what the
        saver's view of the thread knows (a delete or a copy)."""
        if forget:
            self._forget(key)
        if key not in self._known:
            yield from self._create(key, thread_id)
        call = Call(
            "sessions",
            "append_events",
            (sid(key), [lay.json_event(event)]),
            {"state": state, "delete": list(delete), "expect_position": expect},
        )
        for _ in range(TRIES):
            try:
                return cast(int, (yield from self._send(key, call)))
            except SessionNotFoundError:  # deleted meanwhile (by another saver on this runtime)
                self._known.discard(key)
                self._forget(key)
                yield from self._create(key, thread_id)
            except SessionNotActiveError as refused:
                self._forget(key)
                yield from self._resume(key, refused)
        return cast(int, (yield from self._send(key, call)))

    def _resume(self, key: str, refused: SessionNotActiveError) -> Plan[None]:
        """Have a suspended thread (an idle timeout suspends) take writes again, for the
        caller to retry; a completed, failed or archived thread does not, and ``refused``
        says so. Another plan may resume it first: that one's resume is enough. A thread
        deleted meanwhile is forgotten: the retry makes it again."""
        info = yield Call("sessions", "get", (sid(key),), missing=None)
        if info is not None and info.status != "suspended":
            if info.status != "active":  # ended
                raise refused
            return  # resumed meanwhile
        if info is not None:
            try:
                resumed = yield Call("sessions", "resume", (sid(key),), missing=False)
            except InvalidStateTransitionError:
                return  # resumed (or ended) meanwhile: the retry finds out which
            if resumed is not False:
                return
        self._known.discard(key)  # deleted meanwhile
        self._forget(key)

    def _send(self, key: str, call: Call) -> Plan[Any]:
        """``call``, an append, counted as in flight on the thread until it is answered."""
        self._sending(key)
        try:
            return (yield call)
        finally:
            self._answered(key)

    def _sending(self, key: str) -> None:
        with self._counting:
            self._inflight[key] = self._inflight.get(key, 0) + 1

    def _answered(self, key: str) -> None:
        with self._counting:
            left = self._inflight.pop(key) - 1
            if left:
                self._inflight[key] = left
        if not left:
            self._wake(key)

    def _wake(self, key: str) -> None:
        """Let the plans waiting on the thread look again (``_turn``)."""
        waiter = self._waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)  # only made by the async driver: on this loop

    def _busy(self, key: str) -> bool:
        """Whether an append of this saver is in flight on the thread or a plan waits for its
        turn there: a new append then waits behind them (``_turn``)."""
        return bool(self._inflight.get(key) or self._queued.get(key))

    async def _append_at_once(
        self, key: str, event: dict[str, Any], state: dict[str, Any], view: lay.View
    ) -> int | None:
        """``_commit`` without a plan, on the async runtime: the common put and put_writes
        are this one call, and the generators of a plan and its driver cost about a tenth of
        the saver's own share of it. ``None`` if the append was refused or the thread is gone
        or not active: the plan then runs, and sees to it."""
        self._sending(key)
        try:
            position: int = await self.rt.sessions.append_events(
                sid(key),
                [event],
                state=state,
                expect_position=view.pos,
                expect_created_at=view.created,
            )
            return position
        except InvalidStateTransitionError:
            self.conflicts += 1
            current = self._views.get(key)
            if current is None or current.pos <= view.pos:
                self._forget(key)  # another writer came first
        except SessionNotFoundError:
            self._known.discard(key)
            self._forget(key)
        except SessionNotActiveError:
            self._forget(key)
        finally:
            self._answered(key)
        return None

    def _turn(self, key: str) -> Plan[object]:
        """Wait for this plan's turn on the thread and keep it: until no other append of this
        saver is in flight there (an append expecting the log where the view saw it would be
        refused once that one lands) and the plans that came to wait before this one had
        theirs, first come first. While a plan holds its turn (from here to ``_leave``, its
        reads included) no new append of this saver starts on the thread (``_busy``), so a
        task appending in a loop can neither keep it waiting nor slip in between its reads
        and its append. The ticket to hand to ``_leave``. (The sync drivers go on at once: a
        refused append is read again and retried.)"""
        ticket = object()
        with self._counting:
            queue = self._queued.setdefault(key, [])
            queue.append(ticket)
        try:
            while self._inflight.get(key) or queue[0] is not ticket:
                if not (yield Settle(lambda: self._idle(key))):
                    break
        except BaseException:  # cancelled while it waited (the plan closed)
            self._leave(key, ticket)
            raise
        return ticket

    def _settle(self, key: str) -> Plan[None]:
        """Wait for a turn on the thread and give it up at once: an append that expects no
        position goes behind the appends in flight and the plans waiting (``_turn``)."""
        ticket = yield from self._turn(key)
        self._leave(key, ticket)

    def _leave(self, key: str, ticket: object) -> None:
        """End the turn of ``_turn``'s ``ticket``: the next in line looks again (this plan may
        append no more, and then only this wakes it)."""
        with self._counting:
            queue = self._queued[key]  # kept while it holds the ticket
            queue.remove(ticket)
            if not queue:
                del self._queued[key]
        if queue:
            self._wake(key)

    def _idle(self, key: str) -> asyncio.Future[None]:
        waiter = self._waiters.get(key)
        if waiter is None or waiter.done():
            waiter = self._waiters[key] = asyncio.get_running_loop().create_future()
        # Every plan waiting on the thread shares ``waiter``: a task cancelled while it
        # waits must cancel its own wait, not the one the others are waiting on.
        return asyncio.shield(waiter)

    def _forget(self, key: str) -> None:
        self._views.pop(key, None)

    def _keep(self, key: str, old: lay.View | None, new: lay.View) -> None:
        """Replace ``old`` by ``new`` unless another call replaced it meanwhile."""
        if self._views.get(key) is old:
            if old is None and len(self._views) >= _VIEWS:
                self._views.pop(next(iter(self._views)))  # the thread seen first goes
            self._views[key] = new

    def _view(self, key: str, thread_id: str) -> Plan[lay.View]:
        """The view of a thread, read (three calls) or made with it (two)."""
        session = sid(key)
        while True:
            made = key not in self._known and (yield from self._create(key, thread_id))
            # The creation time first: if the thread is made again after it is read, the
            # appends expecting it are refused, whatever the reads below saw.
            info = yield Call("sessions", "get", (session,), missing=None)
            if info is not None and made:
                # Made here: empty, every write known.
                view = lay.new_view(0, {}, whole=True, created=info.created_at)
                break
            pos = yield Call("sessions", "last_event_position", (session,), missing=None)
            # The heads read after the position: if the log moved in between, the append
            # expecting that position is refused.
            heads = yield Call("sessions", "state", (session,), {"prefix": "h:"}, missing=None)
            if info is not None and pos is not None and heads is not None:
                heads = {k[2:]: v for k, v in heads.items()}
                view = lay.new_view(pos, heads, whole=False, created=info.created_at)
                break
            self._known.discard(key)  # deleted meanwhile
        self._keep(key, None, view)
        return view

    def _commit(
        self,
        key: str,
        thread_id: str,
        event: dict[str, Any],
        state: dict[str, Any],
        view: lay.View,
    ) -> Plan[int | None]:
        """One ``append_events`` expecting the log where ``view`` saw it; its position, or
        ``None`` when the thread changed meanwhile, for a retry: by another append of this
        saver (whose view then is the current one), by another writer, a delete or a
        suspension (the view is dropped, and a suspended thread resumed)."""
        call = Call(
            "sessions",
            "append_events",
            (sid(key), [event]),
            {"state": state, "expect_position": view.pos, "expect_created_at": view.created},
        )
        try:
            return cast(int, (yield from self._send(key, call)))
        except InvalidStateTransitionError:
            self.conflicts += 1
            current = self._views.get(key)
            if current is not None and current.pos > view.pos:
                return None  # this saver's own append came first: its view is current
        except SessionNotFoundError:
            self._known.discard(key)
        except SessionNotActiveError as refused:
            yield from self._resume(key, refused)
        self._forget(key)
        return None
