"""The event loop beneath the kernel: its few hot-path primitives, native to Trio or asyncio.

satchel is written against AnyIO and runs in whichever loop opens it. AnyIO's generic
primitives cost more than the backend's own where it counts (measured here: an Event made in
1.0 µs against Trio's 0.17 µs; an ask round trip through AnyIO memory object streams 41-61 µs,
through a Trio channel 18-31 µs, through an asyncio Future 8-14 µs), and an ask costs 10-30 µs
in all. So what every ask touches — the reply slot's event, the mailbox's channel, the
lent-turn budget's checkpoints, the task's identity, the clock, and the parking of a writer
that waits on a group commit — comes from a ``Native``: one per backend, picked by
``current_native()`` when a supervisor (or a group commit's write) starts.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, Generic, Protocol, TypeVar, cast, final

import anyio
import anyio.lowlevel
import sniffio
import trio

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)
T_co = TypeVar("T_co", covariant=True)


class NativeEvent(Protocol):
    """A one-shot event of the running backend (``trio.Event`` or ``asyncio.Event``)."""

    def set(self) -> None: ...
    def is_set(self) -> bool: ...
    async def wait(self) -> Any: ...


class SendSide(Protocol[T_contra]):
    """The sending side of a bounded first-in first-out channel."""

    async def send(self, item: T_contra) -> None: ...
    def send_nowait(self, item: T_contra) -> None: ...


class ReceiveSide(Protocol[T_co]):
    """The receiving side of a bounded first-in first-out channel (one receiver).

    Errors are the backend's (Trio's or AnyIO's ``WouldBlock``, ``BrokenResourceError``,
    ``ClosedResourceError``): ``Mailbox`` translates them on its rare paths, so the common
    ones pay for no wrapper."""

    async def receive(self) -> T_co: ...
    def receive_nowait(self) -> T_co: ...
    def close(self) -> None: ...


class Parker(Protocol):
    """Where one task waits, uncancellably, until another task releases it."""

    async def park(self) -> None: ...
    def unpark(self) -> None: ...


class Cancellable(Protocol):
    """A cancel scope, as far as a task group's owner uses it."""

    def cancel(self) -> None: ...


class TaskGroup(Protocol):
    """A task group of the running backend (a Trio nursery or an AnyIO task group)."""

    @property
    def cancel_scope(self) -> Cancellable: ...

    def start_soon(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any: ...
    async def start(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any: ...


class Native(Protocol):
    """The hot-path primitives of one backend. ``loop_token`` names the event loop running
    the caller (``None`` outside one of this backend's loops)."""

    name: str
    #: Whether a shield keeps every cancellation out of a turn run in a host's task. On
    #: asyncio a host may cancel its own task natively (``Task.cancel``), past any shield.
    shields_host_tasks: bool

    def event(self) -> NativeEvent: ...
    def open_task_group(self) -> AbstractAsyncContextManager[TaskGroup]: ...
    def channel(self, capacity: int) -> tuple[SendSide[Any], ReceiveSide[Any]]: ...
    def parker(self) -> Parker: ...
    def current_task(self) -> object: ...
    def loop_token(self) -> object | None: ...
    def clock(self) -> Callable[[], float]: ...
    async def checkpoint(self) -> None: ...
    async def checkpoint_if_cancelled(self) -> None: ...
    async def uncancellable_pass(self) -> None: ...
    def alone(self) -> bool:
        """Whether no other task can run before the caller's next scheduler pass ends
        (so such a pass lets no other task do anything first); False where that is not
        known cheaply."""
        ...

    def shield(self) -> trio.CancelScope: ...
    def deliver_later(self, cancelled: BaseException) -> None:
        """Deliver ``cancelled``, held off while a turn ran (``Held``), at the current
        task's next await (asyncio only: Trio's shields need no such step)."""
        ...

    def inner_cancelled(self) -> bool:
        """Whether a cancellation reaching the current task now comes from an AnyIO scope
        inside the innermost shield (asyncio only: what ``Held`` passes into its work)."""
        ...


# -- Trio ---------------------------------------------------------------------------------


def _refuse_abort(_: object) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


@final
class _TrioParker:
    __slots__ = ("_task",)

    def __init__(self) -> None:
        self._task: trio.lowlevel.Task | None = None

    async def park(self) -> None:
        self._task = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(_refuse_abort)

    def unpark(self) -> None:
        if self._task is not None:
            trio.lowlevel.reschedule(self._task)
            self._task = None


@final
class _Trio:
    name = "trio"
    shields_host_tasks = True

    def event(self) -> NativeEvent:
        return trio.Event()

    def open_task_group(self) -> AbstractAsyncContextManager[TaskGroup]:
        # A nursery, not an AnyIO task group: AnyIO wraps each task it starts in a cancel
        # scope of its own, and Trio's cancel bookkeeping costs O(live scopes) per
        # reschedule (activating an actor took 30-100 µs longer with 3,000 live ones).
        return trio.open_nursery()

    def channel(self, capacity: int) -> tuple[SendSide[Any], ReceiveSide[Any]]:
        # Trio's own channel, unwrapped: a wrapper cost an object and, for every idle
        # actor, a coroutine frame more to keep and for the garbage collector to walk.
        return trio.open_memory_channel[Any](capacity)

    def parker(self) -> Parker:
        return _TrioParker()

    def current_task(self) -> object:
        return trio.lowlevel.current_task()

    def loop_token(self) -> object | None:
        try:
            return trio.lowlevel.current_trio_token()
        except RuntimeError:
            return None

    def clock(self) -> Callable[[], float]:
        return trio.current_time

    async def checkpoint(self) -> None:
        await trio.lowlevel.checkpoint()

    async def checkpoint_if_cancelled(self) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()

    async def uncancellable_pass(self) -> None:
        await trio.lowlevel.cancel_shielded_checkpoint()

    def alone(self) -> bool:
        # Trio runs the tasks that I/O woke in the same batch as the caller, in any order,
        # and its count of runnable tasks costs most of a pass (``current_statistics``).
        return False

    def shield(self) -> trio.CancelScope:
        return trio.CancelScope(shield=True)

    def deliver_later(self, cancelled: BaseException) -> None:
        raise NotImplementedError("Trio turns are shielded by scopes")

    def inner_cancelled(self) -> bool:
        raise NotImplementedError("Trio turns are shielded by scopes")


# -- asyncio ------------------------------------------------------------------------------


_ANYIO_TASK_STATES: Any
try:
    # AnyIO's own table of its tasks' cancel scopes: read directly, a walk costs ~0.15 µs
    # where ``anyio.lowlevel.checkpoint_if_cancelled`` costs ~1.3 µs (backend lookup), on
    # every lent turn.
    from anyio._backends._asyncio import _task_states as _ANYIO_TASK_STATES
except ImportError:  # pragma: no cover - another AnyIO layout: its public check instead
    _ANYIO_TASK_STATES = None


def _anyio_scope_cancelled(task: asyncio.Task[Any]) -> bool:
    """Whether an AnyIO cancel scope around ``task`` was cancelled (not behind a shield);
    ``True`` where AnyIO's layout is not the one known (its own check then decides)."""
    states = _ANYIO_TASK_STATES
    if states is None:
        return True
    try:
        state = states.get(task)
        scope = None if state is None else state.cancel_scope
        while scope is not None:
            if scope._cancel_called:
                return True
            if scope._shield:
                return False
            scope = scope._parent_scope
    except AttributeError:  # pragma: no cover - another AnyIO layout
        return True
    return False


def _rearm(task: asyncio.Task[Any], cancelled: asyncio.CancelledError) -> None:
    """Deliver a cancellation that was held off at the task's next await, as Trio would at
    its next checkpoint (``checkpoint_if_cancelled``, after every lent turn, is that await).
    Each request caught stays counted in ``Task.cancelling()`` and arming adds none, so
    ``asyncio.timeout`` and AnyIO's scopes (which count their own) still recognise theirs."""
    task.cancel(cancelled.args[0] if cancelled.args else None)
    task.uncancel()


@final
class _AsyncioParker:
    __slots__ = ("_future", "_released")

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None
        self._released = False

    async def park(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        held: asyncio.CancelledError | None = None
        while not self._released:
            self._future = loop.create_future()
            try:
                await self._future
            except asyncio.CancelledError as cancelled:
                # A cancelled task cancels the future it awaits: wait on a new one.
                held = cancelled
        self._future = None
        if held is not None:
            _rearm(task, held)

    def unpark(self) -> None:
        self._released = True
        if self._future is not None and not self._future.done():
            self._future.set_result(None)


@final
class _AsyncioEvent:
    """``asyncio.Event`` without its deque: each live actor holds a few events, and an empty
    deque costs 760 bytes (an ``asyncio.Event`` ~1 KiB), times every live session."""

    __slots__ = ("_flag", "_waiters")

    def __init__(self) -> None:
        self._flag = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        if self._flag:
            return
        self._flag = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> bool:
        if self._flag:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)  # cancelled: its entry goes
        return True


@final
class _AsyncioChannel(Generic[T]):
    """A bounded queue for one receiver. Room freed by a receive is reserved for the sender
    it wakes (FIFO, as Trio's channel); a sender cancelled before it uses its room passes
    the reservation on."""

    __slots__ = ("_capacity", "_closed", "_getter", "_head", "_items", "_putters", "_reserved")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        # A list, and no putters' deque until a sender waits: an empty deque costs 760
        # bytes, times every live actor; a mailbox holds a few items at most most of the time.
        # Items before ``_head`` were taken; the list is cleared whenever it is all taken
        # and compacted when half of it is, so a take is O(1) at any capacity.
        self._items: list[Any] = []
        self._head = 0
        self._putters: collections.deque[asyncio.Future[None]] | None = None
        self._getter: asyncio.Future[None] | None = None
        self._closed = False
        self._reserved = 0

    def _wake_getter(self) -> None:
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    def _wake_putter(self) -> None:
        putters = self._putters
        while putters and len(self._items) - self._head + self._reserved < self._capacity:
            putter = putters.popleft()
            if not putter.done():
                self._reserved += 1
                putter.set_result(None)
                return

    def _take(self) -> Any:
        items, head = self._items, self._head
        item = items[head]
        items[head] = None
        head += 1
        if head == len(items):
            items.clear()  # so ``not self._items`` still means empty
            head = 0
        elif head >= 64 and head * 2 >= len(items):
            del items[:head]
            head = 0
        self._head = head
        return item

    def _full(self) -> bool:
        return len(self._items) - self._head + self._reserved >= self._capacity or bool(
            self._putters
        )

    def send_nowait(self, item: T) -> None:
        if self._closed:
            raise anyio.BrokenResourceError
        if self._full():
            raise anyio.WouldBlock
        self._items.append(item)
        self._wake_getter()

    async def send(self, item: T) -> None:
        if self._closed:
            raise anyio.BrokenResourceError
        if not self._full():
            self._items.append(item)
            self._wake_getter()
            return
        putter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        putters = self._putters
        if putters is None:
            putters = self._putters = collections.deque()
        putters.append(putter)
        try:
            await putter
        except BaseException:
            if putter in putters:
                putters.remove(putter)
            elif putter.done() and not putter.cancelled() and putter.exception() is None:
                self._reserved -= 1
                self._wake_putter()  # woken for room it will not use
            raise
        self._reserved -= 1
        if self._closed:
            raise anyio.BrokenResourceError
        self._items.append(item)
        self._wake_getter()

    async def receive(self) -> T:
        while not self._items:
            if self._closed:
                raise anyio.ClosedResourceError
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        item: T = self._take()
        self._wake_putter()
        return item

    def receive_nowait(self) -> T:
        if not self._items:
            raise anyio.ClosedResourceError if self._closed else anyio.WouldBlock
        item: T = self._take()
        self._wake_putter()
        return item

    def close(self) -> None:
        self._closed = True
        self._items.clear()
        self._head = 0
        putters = self._putters
        while putters:
            putter = putters.popleft()
            if not putter.done():
                putter.set_exception(anyio.BrokenResourceError())
        self._wake_getter()


@final
class _Asyncio:
    name = "asyncio"
    shields_host_tasks = False

    def event(self) -> NativeEvent:
        return _AsyncioEvent()

    def open_task_group(self) -> AbstractAsyncContextManager[TaskGroup]:
        return cast(AbstractAsyncContextManager[TaskGroup], anyio.create_task_group())

    def channel(self, capacity: int) -> tuple[SendSide[Any], ReceiveSide[Any]]:
        channel = _AsyncioChannel[Any](capacity)
        return channel, channel

    def parker(self) -> Parker:
        return _AsyncioParker()

    def current_task(self) -> object:
        return asyncio.current_task()

    def loop_token(self) -> object | None:
        return asyncio._get_running_loop()

    def clock(self) -> Callable[[], float]:
        return asyncio.get_running_loop().time

    async def checkpoint(self) -> None:
        await asyncio.sleep(0)

    async def checkpoint_if_cancelled(self) -> None:
        # A cancellation (native or AnyIO's) is a request raised at the task's next await;
        # one held off by an uncancellable wait is pending: deliver it here, as Trio would.
        task = asyncio.current_task()
        if task is None:
            return
        if task.cancelling():
            await asyncio.sleep(0)
        elif _anyio_scope_cancelled(task):
            # An AnyIO scope cancelled while the task ran (a lent turn's own code cancelling
            # its asker's scope) has not asked the task yet: AnyIO asks at its next wait.
            await anyio.lowlevel.checkpoint_if_cancelled()

    async def uncancellable_pass(self) -> None:
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError as cancelled:
            task = asyncio.current_task()
            assert task is not None
            _rearm(task, cancelled)

    def alone(self) -> bool:
        # A pass runs the callbacks ready now and then the caller; those that I/O and timers
        # make ready in that pass are queued behind the caller. So with none ready, nothing
        # else runs before the caller resumes. ``_ready`` is the loop's queue of them (the
        # standard loops'; another loop without it is never taken to be alone).
        ready = getattr(asyncio.get_running_loop(), "_ready", None)
        return type(ready) is collections.deque and not ready

    def shield(self) -> trio.CancelScope:
        raise NotImplementedError("asyncio cannot shield a host's task from Task.cancel")

    def deliver_later(self, cancelled: BaseException) -> None:
        task = asyncio.current_task()
        assert task is not None and isinstance(cancelled, asyncio.CancelledError)
        if task.cancelling():  # else whoever asked for it has taken the request back
            _rearm(task, cancelled)

    def inner_cancelled(self) -> bool:
        if _ANYIO_TASK_STATES is None:  # pragma: no cover - another AnyIO layout
            return False  # every cancellation held: the turn is never cut by one
        task = asyncio.current_task()
        return task is not None and _anyio_scope_cancelled(task)


TRIO: Native = _Trio()
ASYNCIO: Native = _Asyncio()


def current_native() -> Native:
    """The primitives of the event loop running this task (Trio or asyncio)."""
    try:
        name = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        raise RuntimeError(
            "satchel runs inside an event loop (Trio or asyncio); from plain code, use "
            "satchel.sync.open_runtime"
        ) from None
    if name == "trio":
        return TRIO
    if name == "asyncio":
        return ASYNCIO
    raise RuntimeError(f"satchel runs on Trio or asyncio, not {name}")
