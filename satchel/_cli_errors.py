"""How a failed command ends: one line ``Kind: message`` on stderr (with ``--json``, the
error object an HTTP client gets, on stdout) and exit status 1, or 2 for a command line
``argparse`` refuses. Never a Python traceback, unless ``SATCHEL_DEBUG`` asks for one."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

from satchel._cli_output import Output
from satchel.runtime._errors import SatchelError

FAILED = 1
USAGE = 2


class ApiError(Exception):
    """An error answer: its kind, message and HTTP status."""

    def __init__(self, kind: str, message: str, status: int) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.status = status


class UsageError(Exception):
    """The command line does not parse: its usage line and what is wrong."""

    def __init__(self, usage: str, message: str) -> None:
        super().__init__(message)
        self.usage = usage
        self.message = message


def invalid(message: str) -> ApiError:
    """A command's own refusal of its arguments (a file it cannot read, say)."""
    return ApiError("InvalidArgument", message, 422)


def report(out: Output, error: BaseException) -> int:
    """Print ``error`` as a failed command does; its exit status."""
    if isinstance(error, UsageError):
        if not out.as_json:
            out.error(error.usage.rstrip())
        out.failure("InvalidArgument", error.message)
        return USAGE
    leaf = _leaf(error)
    if isinstance(leaf, BrokenPipeError):
        # The reader of stdout is gone (`... | head`): nothing to tell it. What is still
        # buffered goes nowhere, not to a second error at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return FAILED
    kind, message, extra = _described(leaf)
    out.failure(kind, message, **extra)
    if kind == "InternalError" and os.environ.get("SATCHEL_DEBUG"):
        out.error("".join(traceback.format_exception(error)).rstrip())
    return FAILED


def _leaf(error: BaseException) -> BaseException:
    """The error a task group's ``ExceptionGroup`` wraps (its first, if several)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _described(error: BaseException) -> tuple[str, str, dict[str, Any]]:
    if isinstance(error, ApiError):
        return error.kind, error.message, {}
    if isinstance(error, SatchelError):
        # Any kind a script raised carries the script's stack (``ScriptError`` and the API's).
        trace = getattr(error, "lua_traceback", None)
        return error.kind, str(error), _lua_traceback(f"{error.kind}: {error}", trace)
    httpx = sys.modules.get("httpx")  # not imported: no error of its kind was raised
    if httpx is not None and isinstance(error, httpx.TransportError):
        return "ServerUnreachable", str(error) or type(error).__name__, {}
    # A bug: its type and message on one line; SATCHEL_DEBUG=1 adds the traceback.
    message = f"{type(error).__name__}: {error} (SATCHEL_DEBUG=1 shows the traceback)"
    return "InternalError", message, {}


def _lua_traceback(message: str, trace: str | None) -> dict[str, Any]:
    """Lua's stack traceback, without the error line the message already has."""
    if not trace:
        return {}
    lines = trace.splitlines()
    if lines and lines[0].strip() in (message.strip(), message.partition(": ")[2].strip()):
        lines = lines[1:]
    return {"traceback": "\n".join(lines)} if lines else {}
