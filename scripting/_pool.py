"""Worker processes for untrusted scripts: a supervised pool, and a run in one of them.

Every session script and every script sent over HTTP runs in a worker process (``_worker``),
never in the host: a script that exhausts memory, panics Lua, loops in C or deadlocks costs
only its worker, which the host kills and replaces. A worker runs one script at a time. The
host answers its API calls as it answers in-process runs (same dispatch, same access checks):
the worker sends plain values, never code, and holds no descriptor but its pipes.

A session keeps its worker between runs (its Lua globals live there) until its actor stops, or
until the pool, at its size limit, needs the worker for another run: the longest idle is
taken (its session starts afresh next time). The pool starts ``spares`` workers ahead of need.
"""

from __future__ import annotations

import contextlib
import os
import sys
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import attrs

import satchel
from satchel import scripting
from satchel.runtime._errors import (
    SatchelError,
    ScriptError,
    ScriptLimitExceededError,
    ValidationError,
)

from ._channel import FrameError, encode
from ._process import WorkerProcess as Worker
from ._run import Dispatch, ScriptLimits, Step, drive
from ._worker import BOOTSTRAP

#: Real seconds a new worker has to say it is ready.
_START_SECONDS = 10.0


@attrs.frozen
class ScriptWorkers:
    """The worker processes scripts run in: at most ``max_workers`` at once (each running a
    script or keeping a session's Lua state), with ``spares`` started ahead of need; with
    ``prestart`` from the start, otherwise from the first script on."""

    max_workers: int = 8
    spares: int = 1
    prestart: bool = False

    def __attrs_post_init__(self) -> None:
        if type(self.max_workers) is not int or self.max_workers < 1:
            raise ValidationError(f"max_workers must be at least 1, not {self.max_workers!r}")
        if type(self.spares) is not int or not 0 <= self.spares <= self.max_workers:
            raise ValidationError(f"spares must be 0 to max_workers, not {self.spares!r}")


class WorkerPool:
    """The supervised pool (``async with WorkerPool(config) as pool``; closing it kills every
    worker)."""

    def __init__(
        self, config: ScriptWorkers | None = None, names: Sequence[tuple[str, str, str]] = ()
    ) -> None:
        self.config = config or ScriptWorkers()
        #: The API functions scripts get: ``(global table, function name, op)``.
        self.names = [list(name) for name in names]
        self._spares: list[Worker] = []
        self._held: set[Worker] = set()  # running a script, or kept by a session
        self._dying: set[Worker] = set()  # killed, not yet reaped
        self._starting: set[Worker] = set()  # started, not yet ready
        self._spawning = 0
        self._changed = anyio.Event()
        self._failure: BaseException | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._closing = False
        self._command = [
            sys.executable,
            "-I",
            "-c",
            BOOTSTRAP,
            str(Path(satchel.__file__).parent),
            str(Path(scripting.__file__).parent),
            str(os.getpid()),
        ]
        #: Workers started, for statistics and tests.
        self.started = 0

    async def __aenter__(self) -> WorkerPool:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        if self.config.prestart:
            self._refill()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._group is not None
        self._closing = True
        workers = [*self._spares, *self._held, *self._dying]
        self._spares.clear()
        self._held.clear()
        for worker in [*workers, *self._starting]:
            worker.kill()
        # Reaped here rather than in tasks; a worker still starting sees its end, and its
        # start (a task of this group) reaps it.
        for worker in workers:
            await _close(worker)
        return await self._group.__aexit__(exc_type, exc, traceback)

    @property
    def spares_ready(self) -> bool:
        """Whether every spare is started and waiting."""
        return len(self._spares) >= self.config.spares

    async def wait_ready(self) -> None:
        """Return once every spare is started and waiting (``ScriptError`` if they cannot
        start)."""
        self._refill()
        while not self.spares_ready:
            if self._spawning == 0 and self._failure is not None:
                raise ScriptError(f"no script worker could start: {self._failure}")
            await self._changed.wait()

    @property
    def live(self) -> int:
        """Workers started or starting, and not ended."""
        return len(self._spares) + len(self._held) + self._spawning

    # -- workers --------------------------------------------------------------------------

    async def _spawn(self) -> None:
        # Shielded: a start cut short could leave a process nobody reaps.
        try:
            with anyio.CancelScope(shield=True):
                worker = await self._start_worker()
        except Exception as error:
            self._failure = error
            self._spawning -= 1
            self._notify()
            raise
        self._spawning -= 1
        if self._closing:
            await _close(worker)
            return
        self._spares.append(worker)
        self._failure = None
        self._notify()

    async def _start_worker(self) -> Worker:
        try:
            worker = await Worker.start(self._command)
        except OSError as error:  # no descriptors or processes left, no interpreter...
            raise ScriptError(f"a script worker could not start: {error}") from error
        self._starting.add(worker)
        try:
            hello = await worker.hello(_START_SECONDS)
        except FrameError:
            hello = False
        finally:
            self._starting.discard(worker)
        if not (isinstance(hello, list) and hello[:1] == ["ready"]):
            worker.kill()
            cause = await worker.cause_of_death()
            await _close(worker)
            if hello is None and not self._closing:
                cause = f"no word from it within {_START_SECONDS:g} s; it was stopped"
            raise ScriptError(f"a script worker did not start ({cause})")
        try:  # the worker makes its first Lua state now, before any script waits for it
            await worker.send(encode(["prepare", self.names]))
        except OSError:
            cause = await worker.cause_of_death()
            await _close(worker)
            raise ScriptError(f"a script worker ended as it started ({cause})") from None
        self.started += 1
        return worker

    def _refill(self) -> None:
        """Start workers until ``spares`` are ready or starting (within ``max_workers``)."""
        assert self._group is not None
        while (
            not self._closing
            and len(self._spares) + self._spawning < self.config.spares
            and (self.live < self.config.max_workers)
        ):
            self._spawning += 1
            self._group.start_soon(self._spawn_quietly)

    async def _spawn_quietly(self) -> None:
        with contextlib.suppress(Exception):  # kept in self._failure for the runs waiting
            await self._spawn()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def _end(self, worker: Worker) -> None:
        worker.kill()
        self._reap(worker)

    def _reap(self, worker: Worker) -> None:
        if self._group is not None and not self._closing:
            self._dying.add(worker)
            self._group.start_soon(self._close_dying, worker)

    async def _close_dying(self, worker: Worker) -> None:
        await _close(worker)
        self._dying.discard(worker)

    def _evictable(self) -> Worker | None:
        """The worker to take from its session: one whose session is gone, else the one
        idle longest; ``None`` while every worker runs a script."""
        idle = [w for w in self._held if not w.busy]
        if not idle:
            return None
        gone = [w for w in idle if w.owner is None or w.owner() is None]
        return (gone or sorted(idle, key=lambda w: w.last_used))[0]

    async def _take(self) -> Worker:
        """A fresh worker, held: a spare, a new one, or one taken from a session."""
        while True:
            if self._spares:
                worker = self._spares.pop()
                self._held.add(worker)
                return worker
            if self.live < self.config.max_workers:
                self._spawning += 1
                await self._spawn()
                continue
            victim = self._evictable()
            if victim is not None:
                self.release(victim)
                continue
            if self._spawning == 0 and self._failure is not None:
                raise ScriptError(f"no script worker could start: {self._failure}")
            await self._changed.wait()

    def release(self, worker: Worker) -> None:
        """End a worker no session needs any more (its actor stopped)."""
        if worker in self._held:
            self._held.discard(worker)
            self._end(worker)
            self._notify()
            self._refill()

    def release_slot(self, slot: Any) -> None:
        """Let go of the worker a session's script slot keeps (its actor stopped)."""
        worker = getattr(slot, "state", None)
        if isinstance(worker, Worker):
            slot.state = None
            self.release(worker)

    # -- runs -----------------------------------------------------------------------------

    async def run(
        self,
        source: str | bytes,
        dispatch: Dispatch,
        *,
        keeper: Any = None,
        name: str = "script",
        args: Sequence[Any] = (),
        output: Callable[[str], None] = print,
        limits: ScriptLimits | None = None,
        allow_io: bool = False,
    ) -> list[Any]:
        """Run ``source`` in a worker; what it returned. With ``keeper`` (an object with a
        ``state`` attribute: a session's script slot) the worker and its Lua state are kept
        there for the next run; without, the worker is ended after this run."""
        limits = limits or ScriptLimits()
        worker = getattr(keeper, "state", None) if keeper is not None else None
        if isinstance(worker, Worker) and worker.popen.poll() is not None:
            self.release(worker)  # it died between runs (killed from outside): start afresh
            worker = None
        if not isinstance(worker, Worker) or worker.killed or worker not in self._held:
            worker = await self._take()
            if keeper is not None:
                keeper.state = worker
                worker.owner = weakref.ref(keeper)
        worker.busy = True
        run = _WorkerRun(worker, source, name, args, limits, allow_io, output)
        finished = False
        try:
            results = await drive(run, dispatch, limits)
            finished = True
            return results
        except SatchelError:  # the run ended (its error is the answer); the worker says
            finished = True  # whether its state can be used again (``run.usable``)
            raise
        finally:
            # Spares are replaced after the run: a worker starting takes a core for a while.
            self._refill()
            worker.busy = False
            worker.last_used = anyio.current_time()
            if keeper is None or not finished or not run.usable or worker.killed:
                if keeper is not None and keeper.state is worker:
                    keeper.state = None
                self.release(worker)
            else:
                worker.has_state = True
                self._notify()


async def _close(worker: Worker) -> None:
    with anyio.CancelScope(shield=True):
        await worker.reap()


class _WorkerRun:
    """One run in a worker, as the driver steps it."""

    def __init__(
        self,
        worker: Worker,
        source: str | bytes,
        name: str,
        args: Sequence[Any],
        limits: ScriptLimits,
        allow_io: bool,
        output: Callable[[str], None],
    ) -> None:
        self._worker = worker
        self._request = {
            "fresh": not worker.has_state,
            "allow_io": allow_io,
            "source": source.encode() if isinstance(source, str) else source,
            "name": name,
            "args": list(args),
            "limits": limits.as_plain(),
        }
        self._output = output
        self._max_output = limits.max_output
        self._printed = 0
        # The largest message a run may send: a value as large as its whole Lua state, twice.
        self._max_frame = 2 * limits.max_memory + (1 << 20)
        #: False when the worker's Lua state cannot be used again.
        self.usable = False

    async def start(self) -> Step:
        try:
            frame = encode(["run", self._request])
        except (TypeError, OverflowError, ValueError) as error:
            return ("end", "error", f"InvalidArgument: script arguments: {error}", None, False)
        await self._send(frame)
        return await self._next()

    async def resume(self, ok: bool, values: Sequence[Any]) -> Step:
        try:
            frame = encode(["answer", ok, list(values)])
        except (TypeError, OverflowError, ValueError) as error:
            frame = encode(["answer", False, [f"InvalidArgument: {error}"]])
        await self._send(frame)
        return await self._next()

    async def expired(self, why: str) -> Step:
        self._worker.kill()
        return ("end", "error", why, None, True)

    async def _send(self, frame: bytes) -> None:
        try:
            await self._worker.send(frame)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await self._died()

    async def _next(self) -> Step:
        worker = self._worker
        while True:
            try:
                message = await worker.receive(self._max_frame)
            except FrameError as error:
                worker.kill()
                raise ScriptError(f"the script's worker sent {error}; it was stopped") from None
            if message is None:
                await self._died()
            try:
                tag = message[0]
                if tag == "print":
                    self._print(message[1])
                elif tag == "call" and isinstance(message[1], str):
                    return ("call", message[1], list(message[2]))
                elif tag == "end":
                    self.usable = message[1] is True
                    return _checked_end(message[2])
                else:
                    raise ValueError(tag)
            except (LookupError, TypeError, ValueError):
                worker.kill()
                raise ScriptError(
                    "the script's worker sent a malformed message; it was stopped"
                ) from None

    def _print(self, line: Any) -> None:
        if not isinstance(line, bytes):
            raise TypeError("a printed line is bytes")
        self._printed += len(line) + 1
        if self._printed > self._max_output:
            self._worker.kill()
            raise ScriptLimitExceededError(f"output limit of {self._max_output} bytes reached")
        self._output(line.decode(errors="replace"))

    async def _died(self) -> Step:
        worker = self._worker
        worker.kill()
        cause = await worker.cause_of_death()
        raise ScriptError(f"the script's worker process died ({cause})")


def _checked_end(step: Any) -> Step:
    """An end step from a worker, checked for shape (a worker's messages are not trusted)."""
    if step[0] == "end" and step[1] == "ok" and isinstance(step[2], list):
        return ("end", "ok", step[2])
    if step[0] == "end" and step[1] == "error" and isinstance(step[2], str):
        trace = step[3] if isinstance(step[3], str) else None
        return ("end", "error", step[2], trace, step[4] is True)
    raise ValueError("not an end step")
