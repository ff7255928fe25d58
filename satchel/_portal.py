"""Proxies that let non-Trio hosts call the Trio-side runtime: one definition of each
operation, reached from asyncio (``satchel.aio``) or from plain threads (``satchel.sync``)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Protocol

from satchel._runtime import Runtime
from satchel.actors._artifact_manager import ArtifactManager
from satchel.actors._builtin_hooks import Metrics
from satchel.actors._collect import Collectors
from satchel.actors._handle import SessionHandle
from satchel.actors._hooks import Hooks
from satchel.actors._manager import SessionManager
from satchel.runtime import ActorRef

# Trio-side objects handed out wrapped, so every call on them is marshalled too.
PROXIED_TYPES: tuple[type, ...] = (
    Runtime,
    ActorRef,
    SessionManager,
    SessionHandle,
    ArtifactManager,
    Collectors,
    Hooks,
    Metrics,
)


class Portal(Protocol):
    """Runs a callable in the runtime's Trio context and hands its result back."""

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any: ...


def is_async(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` must be awaited."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__func__", None)
    )


def with_keywords(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Callable[..., Any]:
    """``fn`` with its keyword arguments bound (Trio's portals pass positional ones only)."""
    return functools.partial(fn, **kwargs) if kwargs else fn


class Proxy:
    """Forwards attribute reads and method calls to a Trio-side object through a portal."""

    __slots__ = ("_portal", "_target")

    def __init__(self, target: Any, portal: Portal) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_portal", portal)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._target!r}>"

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value) or isinstance(value, type):
            return self._wrap(value)
        return self._method(value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} attributes are read-only")

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, PROXIED_TYPES):
            return type(self)(value, self._portal)
        if isinstance(value, list) and any(isinstance(v, PROXIED_TYPES) for v in value):
            return [self._wrap(v) for v in value]
        return value

    def _method(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        raise NotImplementedError
