"""A script worker process: runs scripts for the host, one run at a time, over a pipe.

Started by the host's pool (``_pool``) with a bootstrap that loads only this module, the
engine and what they import (no runtime, no storage): an idle worker stays small and starts
fast. It keeps one Lua state, so a session's globals persist between its runs while the host
keeps the worker bound to that session.

What the worker does so that a script costs only its own process:

* the channel is two descriptors of its own; descriptors 0 and 1 point at ``/dev/null``, so
  nothing a library prints can corrupt a frame;
* OS limits, set before each run: CPU time (the run's wall-time limit, plus a margin: a loop
  in C that no hook reaches is killed by the kernel) and address space (a margin over the Lua
  state's limit, for the host's answers);
* it leaves when the host closes its pipe (the host died, or ended it), and ignores the
  terminal's Ctrl-C, which is the host's to handle.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
from typing import Any

from ._channel import FdChannel
from ._core import LuaEngine

_MIB = 1 << 20
#: Address space allowed beyond what the worker uses before its first run, per byte of the
#: Lua limit (the state itself, an answer being converted into it, its frame) plus a margin.
_SPACE_PER_LUA_BYTE = 3
_SPACE_MARGIN = 256 * _MIB
#: The Lua memory limit a prepared state starts with (a run sets its own).
DEFAULT_MEMORY = 64 * _MIB


def main(host_pid: int) -> None:
    """Serve runs until the host closes the channel."""
    channel = _take_channel()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _orphaned(host_pid)
    baseline = _address_space()
    channel.send(["ready", os.getpid()])
    names: list[tuple[str, str, str]] = []
    engine: LuaEngine | None = None
    while (message := channel.receive()) is not None:
        if message[0] == "prepare":
            names = [tuple(name) for name in message[1]]
            engine = _new_engine(channel, names, DEFAULT_MEMORY, allow_io=False)
        elif message[0] == "run":
            engine = _run(channel, engine, names, message[1], baseline)
        # anything else answers a run that has ended: nothing waits for it


def _take_channel() -> FdChannel:
    reader, writer = os.dup(0), os.dup(1)  # dup'ed descriptors are not inherited
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    return FdChannel(reader, writer)


def _orphaned(host_pid: int) -> None:
    """Leave at once if the host died before this worker started. (``PR_SET_PDEATHSIG`` is
    no use here: Linux ties it to the thread that started the process, and the host starts
    workers from a thread pool whose threads come and go. A worker notices a dead host at
    its next read; a run in progress ends at its own limits first.)"""
    if os.getppid() != host_pid:
        os._exit(0)


def _address_space() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:
        return 0


def _set_limits(limits: dict[str, Any], baseline: int) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(usage.ru_utime + usage.ru_stime + float(limits["max_seconds"])) + 2
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, hard))
    if baseline:
        space = baseline + _SPACE_PER_LUA_BYTE * int(limits["max_memory"]) + _SPACE_MARGIN
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (space, hard))


def _new_engine(
    channel: FdChannel, names: list[tuple[str, str, str]], max_memory: int, *, allow_io: bool
) -> LuaEngine:
    return LuaEngine(
        max_memory, names, allow_io=allow_io, output=lambda line: channel.send(["print", line])
    )


def _run(
    channel: FdChannel,
    engine: LuaEngine | None,
    names: list[tuple[str, str, str]],
    run: dict[str, Any],
    baseline: int,
) -> LuaEngine:
    limits = run["limits"]
    _set_limits(limits, baseline)
    allow_io = bool(run["allow_io"])
    prepared = engine is not None and engine.runs == 0 and engine.allow_io == allow_io
    if engine is None or not engine.usable or (run["fresh"] and not prepared):
        engine = None  # the old state is garbage before the new one is made
        engine = _new_engine(channel, names, int(limits["max_memory"]), allow_io=allow_io)
    step = engine.start(run["source"], run["name"], run["args"], limits)
    while step[0] == "call":
        channel.send(list(step))
        answer = channel.receive()
        if answer is None:
            sys.exit(0)
        if answer[0] == "kill":
            step = engine.kill(answer[1])
        else:
            step = engine.resume(answer[1], answer[2])
    channel.send(["end", engine.usable, list(step)])
    return engine


BOOTSTRAP = """\
import sys, types
for name, path in (("satchel", sys.argv[1]), ("satchel.scripting", sys.argv[2])):
    package = types.ModuleType(name)
    package.__path__ = [path]
    sys.modules[name] = package
from satchel.scripting._worker import main
main(int(sys.argv[3]))
"""
