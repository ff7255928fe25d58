"""The messages between the host and a script worker: length-prefixed msgpack frames.

Only plain values cross (``None``, booleans, integers, floats, bytes, text, lists, maps, and
``Opaque`` as an extension type); a frame never unpacks into anything that runs code, so a
worker whose sandbox were broken still could not reach into the host through its messages.

Host to worker: ``["run", {...}]`` starts a run; ``["answer", ok, values]`` answers a call;
``["kill", why]`` answers a call that came too late (the run ends at its limit).
Worker to host: ``["ready", pid]`` once, then for a run any number of ``["print", line]`` and
``["call", op, args]`` and one ``["end", usable, step]`` (``step`` as ``_core`` ends a run).
"""

from __future__ import annotations

import datetime as dt
import os
import select
import struct
from typing import Any

import msgpack

from ._values import MAX_ENTRIES, Opaque, rfc3339

HEADER = struct.Struct(">I")
#: How many times a worker's read yields the CPU before it sleeps.
_YIELDS = 200
#: Entries a frame may hold in all: what the values of one message may hold (``_values``),
#: and room for the message around them.
MAX_ITEMS = MAX_ENTRIES + 1024
_OPAQUE = 1


class FrameError(ValueError):
    """A frame that is not a message of this protocol."""


def _default(value: Any) -> Any:
    if isinstance(value, Opaque):
        return msgpack.ExtType(_OPAQUE, value.what.encode())
    if isinstance(value, dt.datetime):
        return rfc3339(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot give a {type(value).__name__} to a script")


def _ext(code: int, data: bytes) -> Any:
    if code != _OPAQUE:
        raise FrameError(f"unknown extension type {code}")
    return Opaque(data.decode(errors="replace"))


def encode(message: Any) -> bytes:
    """``message`` as one frame (``TypeError`` or ``OverflowError`` for what cannot cross)."""
    payload: bytes = msgpack.packb(message, use_bin_type=True, default=_default)
    return HEADER.pack(len(payload)) + payload


def decode(payload: bytes, max_items: int = MAX_ITEMS) -> Any:
    """The message of a frame's payload (``FrameError`` if it is not one, or if it holds
    more than ``max_items`` list and map entries in all: a frame of a million empty lists
    would otherwise become gigabytes of Python objects)."""
    left = [max_items]

    def counted(container: Any) -> Any:
        left[0] -= len(container) + 1
        if left[0] < 0:
            raise FrameError(f"a frame of more than {max_items} items")
        return container

    try:
        return msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=False,
            ext_hook=_ext,
            use_list=True,
            list_hook=counted,
            object_hook=counted,
        )
    except FrameError:
        raise
    except Exception as error:  # msgpack raises several kinds for malformed input
        raise FrameError(f"a malformed frame: {error!r}") from None


class FdChannel:
    """The worker's end: reads and writes on two pipe descriptors.

    A read that finds nothing yields the CPU a few times before it sleeps: the host's answer
    to a call usually comes within tens of microseconds, and waking a sleeping process on
    another (virtual) CPU can cost more than that. Yielding rather than spinning leaves the
    CPU to the host when both share one."""

    def __init__(self, reader: int, writer: int) -> None:
        self._reader = reader
        self._writer = writer
        self._buffer = bytearray()
        os.set_blocking(reader, False)

    def _read(self, size: int) -> bytes:
        for _ in range(_YIELDS):
            try:
                return os.read(self._reader, size)
            except BlockingIOError:
                os.sched_yield()
        while True:
            try:
                return os.read(self._reader, size)
            except BlockingIOError:
                select.select([self._reader], [], [])

    def send(self, message: Any) -> None:
        view = memoryview(encode(message))
        while view:
            view = view[os.write(self._writer, view) :]

    def receive(self) -> Any:
        """The next message; ``None`` once the host closed its end."""
        header = self._exactly(HEADER.size)
        if header is None:
            return None
        payload = self._exactly(HEADER.unpack(header)[0])
        return None if payload is None else decode(payload)

    def _exactly(self, size: int) -> bytes | None:
        # Reads ahead (a whole small frame in one call), and at most what is missing of a
        # large one.
        buffer = self._buffer
        while len(buffer) < size:
            chunk = self._read(max(1 << 16, size - len(buffer)))
            if not chunk:
                return None
            buffer += chunk
        chunk = bytes(buffer[:size])
        del buffer[:size]
        return chunk
