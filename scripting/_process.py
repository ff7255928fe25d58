"""One worker process as the host holds it: started, spoken to in frames, killed, reaped.

The host talks to a worker over raw pipe descriptors in non-blocking mode, waiting on them
with the event loop (``anyio.wait_readable``) only when a read finds nothing: most answers are
already there, and a call then costs two system calls. The process is started and reaped in a
thread, so that neither ``fork`` of a large host nor ``waitpid`` holds the event loop.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import weakref
from collections.abc import Sequence
from typing import Any

import anyio

from ._channel import HEADER, FrameError, decode

#: The bytes of a worker's last words (its stderr) kept to say why it died.
_LAST_WORDS = 2048
_READ = 1 << 16


class WorkerProcess:
    """A started worker: its process, its three pipes, and what the pool knows of it."""

    def __init__(
        self, popen: subprocess.Popen[bytes], to_worker: int, from_worker: int, errors: int
    ) -> None:
        self.popen = popen
        self.pid = popen.pid
        self._to = to_worker
        self._from = from_worker
        self._errors = errors
        self._buffer = bytearray()
        self._closed = False
        #: The session slot keeping this worker (its Lua state), if any.
        self.owner: weakref.ref[Any] | None = None
        self.has_state = False
        self.busy = False
        self.last_used = 0.0
        self.killed = False

    @classmethod
    async def start(cls, command: Sequence[str]) -> WorkerProcess:
        """Start a worker running ``command`` with nothing of the host but its pipes: an
        empty environment, ``/`` as its folder, a session of its own (no terminal signals)."""
        ends: list[tuple[int, int]] = []
        try:
            for _ in range(3):
                ends.append(os.pipe())
        except OSError:
            for fd in (fd for pair in ends for fd in pair):
                os.close(fd)
            raise
        (to_read, to_write), (from_read, from_write), (err_read, err_write) = ends
        try:
            popen = await anyio.to_thread.run_sync(
                lambda: subprocess.Popen(
                    command,
                    stdin=to_read,
                    stdout=from_write,
                    stderr=err_write,
                    env={},
                    cwd="/",
                    start_new_session=True,
                    close_fds=True,
                )
            )
        except BaseException:
            for fd in (to_read, to_write, from_read, from_write, err_read, err_write):
                os.close(fd)
            raise
        for fd in (to_read, from_write, err_write):  # the worker's ends
            os.close(fd)
        for fd in (to_write, from_read, err_read):
            os.set_blocking(fd, False)
        return cls(popen, to_write, from_read, err_read)

    async def hello(self, seconds: float) -> Any:
        """The worker's first message, or ``None`` if none came within ``seconds`` of real
        time (waited for in a thread: a test's virtual clock must not cut a start short)."""
        readable, _, _ = await anyio.to_thread.run_sync(
            select.select, [self._from], [], [], seconds
        )
        return await self.receive(1 << 10) if readable else None

    async def send(self, frame: bytes) -> None:
        """Write one frame (``BrokenPipeError`` once the worker is gone)."""
        view = memoryview(frame)
        while view:
            try:
                view = view[os.write(self._to, view) :]
            except BlockingIOError:
                await anyio.wait_writable(self._to)

    async def receive(self, max_frame: int) -> Any:
        """The next message; ``None`` if the worker closed its end (it died)."""
        header = await self._exactly(HEADER.size)
        if header is None:
            return None
        size = HEADER.unpack(header)[0]
        if size > max_frame:
            raise FrameError(f"a message of {size} bytes (at most {max_frame})")
        payload = await self._exactly(size)
        return None if payload is None else decode(payload)

    async def _exactly(self, size: int) -> bytes | None:
        buffer = self._buffer
        while len(buffer) < size:
            try:
                chunk = os.read(self._from, max(_READ, size - len(buffer)))
            except BlockingIOError:
                await anyio.wait_readable(self._from)
                continue
            if not chunk:
                return None
            buffer += chunk
        chunk = bytes(buffer[:size])
        del buffer[:size]
        return chunk

    def kill(self) -> None:
        if not self.killed:
            self.killed = True
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()

    async def reap(self) -> None:
        """Kill the worker, wait for it and close the host's ends (idempotent)."""
        self.kill()
        if self.popen.returncode is None:
            await anyio.to_thread.run_sync(self.popen.wait)
        if not self._closed:
            self._closed = True
            for fd in (self._to, self._from, self._errors):
                os.close(fd)

    async def cause_of_death(self) -> str:
        """Why the worker ended: its exit status and its last words on stderr."""
        with anyio.move_on_after(1):
            await anyio.to_thread.run_sync(self.popen.wait, abandon_on_cancel=True)
        words = b""
        if not self._closed:
            with anyio.move_on_after(0.2), contextlib.suppress(OSError):
                while len(words) < 1 << 16:
                    try:
                        chunk = os.read(self._errors, _READ)
                    except BlockingIOError:
                        await anyio.wait_readable(self._errors)
                        continue
                    if not chunk:
                        break
                    words += chunk
        code = self.popen.returncode
        if code is None:
            status = "it stopped answering"
        elif code < 0:
            status = f"killed by signal {_signal_name(-code)}"
        else:
            status = f"exit status {code}"
        said = words[-_LAST_WORDS:].decode(errors="replace").strip()
        return f"{status}; it said: {said}" if said else status


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
