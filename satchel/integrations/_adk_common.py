"""What the Google ADK session and artifact services share: how ADK's names become satchel
session keys, and how ADK values become satchel values."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast
from urllib.parse import quote

import blake3
from pydantic_core import to_jsonable_python

import satchel
from satchel.actors import _validate as validate
from satchel.actors.sessions._session_layout import encode_value

if TYPE_CHECKING:
    from satchel.storage import Backend

#: The longest session key satchel takes, in UTF-8 bytes.
KEY_MAX_BYTES: Final = 256
#: Tags of the satchel sessions the services create, by what they hold.
TAG_SESSION: Final = "adk:session"
TAG_APP: Final = "adk:app-state"
TAG_USER: Final = "adk:user-state"
TAG_ARTIFACTS: Final = "adk:artifacts"

_Service = TypeVar("_Service")


# Every call of a service builds its keys (percent-encoding each part, ~2 µs); a service sees
# the same few names over and over.
@functools.lru_cache(maxsize=4096)
def key(*parts: str) -> str:
    """The satchel session key of a tuple of ADK names: ``adk/<part>/<part>...`` with each part
    percent-encoded (so no part holds the separator or NUL) while it fits in 256 bytes, else
    ``adk/h/<BLAKE3 of the parts>``; the same tuple always gives the same key."""
    readable = "adk/" + "/".join(quote(part, safe="") for part in parts)
    if len(readable.encode()) <= KEY_MAX_BYTES:
        return readable
    # Hashed as the readable form is built (each part escaped), so two tuples never share it.
    digest = blake3.blake3(readable.encode("utf-8", "surrogatepass")).hexdigest()
    return f"adk/h/{quote(parts[0], safe='')[:32]}/{digest}"


def json_safe(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` as JSON-like values, as ADK's SQL services store it: a value JSON cannot hold
    becomes its ``str()``, a non-finite float becomes ``None``."""
    return cast(dict[str, Any], to_jsonable_python(dict(state), fallback=str, inf_nan_mode="null"))


def strip_id(session_id: str | None) -> str | None:
    """A session id as ADK's in-memory service takes it: trimmed, and ``None`` when blank."""
    if session_id is None:
        return None
    return session_id.strip() or None


def async_runtime(runtime: object, service: str) -> satchel.Runtime:
    """``runtime``, refused with a ``TypeError`` that says what to pass unless it is
    ``satchel.open_runtime``'s: ADK calls a service on its own loop, and the service calls
    the runtime there."""
    if not isinstance(runtime, satchel.Runtime):
        raise TypeError(
            f"{service} takes satchel.open_runtime's runtime, used on the loop that opened it, "
            f"not {type(runtime).__name__}; or open one with `async with "
            f"{service}.from_path(...)`"
        )
    return runtime


@contextlib.asynccontextmanager
async def standalone(
    make: Callable[[satchel.Runtime], _Service],
    path: str | None,
    store: Backend,
    options: Mapping[str, Any],
) -> AsyncIterator[_Service]:
    """A service on a runtime of its own, opened on ``path`` and closed on exit."""
    async with satchel.open_runtime(path, store=store, **options) as rt:
        yield make(rt)


def refuse_unstorable(deltas: Mapping[str, Mapping[str, Any]], event: Any = None) -> None:
    """Refuse, before anything is written, state (``{"app"|"user"|"session": {name: value}}``)
    or an event satchel would not store: a write of shared state must not land for an event
    or a session that is then refused.

    Only needed when there is app: or user: state to write first: a write of the session
    alone is one atomic satchel write, which refuses the same values itself (with the same
    errors) and writes nothing then, so checking before it would check everything twice."""
    if not deltas["app"] and not deltas["user"]:
        return
    for scope in deltas.values():
        for name, value in scope.items():
            validate.state_key(name)
            validate.json_like(f"state {name!r}", value)
            validate.encoded(f"state {name!r}", encode_value, value)
    if event is not None:
        validate.json_like("the event", event)
        validate.encoded("the event", encode_value, event)
