"""How ``SatchelSaver`` lays a LangGraph thread out in its satchel session: variable names,
session keys and the JSON-like records it keeps.

A thread is one session, keyed ``"langgraph:" + thread_id``. Its variables (``nsid`` is
``""`` for the root checkpoint namespace, else 24 hex digits of the namespace's BLAKE3):

* ``c:{nsid}:{checkpoint_id}`` — a checkpoint: namespace, id, parent, the serialized
  checkpoint without its channel values, the metadata, and a reference to the value of every
  channel it holds;
* ``h:{nsid}`` — the newest checkpoint id of the namespace;
* ``w:{nsid}:{checkpoint_id}:{slot}`` — one pending write of that checkpoint (its slot names
  the task and index);
* ``r:{run hash}:{nsid}:{checkpoint_id}`` — the run index ``delete_for_runs`` reads;
* ``t`` — the thread id, when it is too long (or holds NUL) to be part of the key.

A value reference (``Ref``) is ``["i", serde type, base64]`` for a small value kept in the
record, ``["a", serde type, artifact name, size]`` for one kept as an artifact (BLAKE3
content-addressed, written once per channel version) and ``["e"]`` for no value.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Mapping
from typing import Any, Final, NamedTuple, TypeAlias

from blake3 import blake3

#: The app every thread's session belongs to (``rt.sessions.list(app=...)``).
APP: Final = "langgraph"
#: The default session key prefix: keys are global, so a thread id never meets another
#: framework's session id, and never is a UUID (which would be the session id itself).
KEY_PREFIX: Final = "langgraph:"
#: Serialized values up to this many bytes stay in the record that names them.
INLINE_MAX: Final = 2048
#: At most this many inline bytes in one record (the rest become artifacts): a record is one
#: variable, at most the session's ``max_value_bytes`` (1 MiB by default).
RECORD_INLINE_BUDGET: Final = 256 * 1024
#: The artifact types of channel values and of pending-write values.
CHANNEL_TYPE: Final = "langgraph_channel"
WRITE_TYPE: Final = "langgraph_write"
#: The prefixes of their artifact names.
CHANNEL_BLOB: Final = "lgc-"
WRITE_BLOB: Final = "lgw-"
MAX_KEY_BYTES: Final = 256
HASHED: Final = "\x01"  # marks a session key that holds a hash of the thread id
MAX_NAME_BYTES: Final = 200

Ref: TypeAlias = list[Any]
EMPTY: Final[Ref] = ["e"]
#: A channel version whose value no record holds (never put): read as no value, and not
#: looked for again by later checkpoints.
MISSING: Final[Ref] = ["m"]
NO_VALUE: Final = (EMPTY, MISSING)


def digest(*parts: str, size: int = 32) -> str:
    """Hex BLAKE3 of ``parts``, ``size`` digits."""
    return blake3("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:size]


@functools.lru_cache(maxsize=4096)
def nsid(ns: str) -> str:
    """The short form of a checkpoint namespace in variable names (cached: every put and
    read needs it, and a graph has few namespaces)."""
    return "" if ns == "" else digest(ns, size=24)


def checkpoint_key(ns_id: str, checkpoint_id: str) -> str:
    return f"c:{ns_id}:{checkpoint_id}"


def head_key(ns_id: str) -> str:
    return f"h:{ns_id}"


def writes_prefix(ns_id: str, checkpoint_id: str) -> str:
    """The prefix of the variables of a checkpoint's pending writes, one per write."""
    return f"w:{ns_id}:{checkpoint_id}:"


def run_key(run_id: str, ns_id: str, checkpoint_id: str) -> str:
    return f"r:{run_prefix(run_id)}{ns_id}:{checkpoint_id}"


def run_prefix(run_id: str) -> str:
    return f"{digest(run_id, size=24)}:"


def write_slot(task_id: str, idx: int) -> str:
    """The key of one write in a checkpoint's writes record."""
    return f"{task_slots(task_id)}{idx}"


@functools.lru_cache(maxsize=4096)
def task_slots(task_id: str) -> str:
    """The start of the slots of a task's writes (cached: a task saves its writes once or
    twice, and the digest is most of the name's cost)."""
    return f"{digest(task_id, size=16)}:"


def parse(name: str) -> tuple[str, str, str]:
    """``(kind, nsid, checkpoint_id)`` of a ``c:``, ``w:`` or ``r:`` variable name."""
    kind, rest = name.split(":", 1)
    if kind == "r":
        rest = rest.split(":", 1)[1]
    ns_id, checkpoint_id = rest.split(":", 1)
    if kind == "w":
        checkpoint_id = checkpoint_id.split(":", 1)[0]  # then the write's slot
    return kind, ns_id, checkpoint_id


def channel_blob(ns: str, channel: str, version: Any) -> str:
    """The artifact name of a channel's value at a version."""
    return CHANNEL_BLOB + digest(ns, channel, f"{type(version).__name__}:{version}", size=40)


def write_blob(ns: str, checkpoint_id: str, task_id: str, idx: int) -> str:
    """The artifact name of a pending write's value."""
    return WRITE_BLOB + digest(ns, checkpoint_id, task_id, str(idx), size=40)


#: The longest checkpoint id: ``r:{24}:{24}:{id}`` (the longest name holding it) is a key.
_MAX_ID_BYTES: Final = MAX_KEY_BYTES - len("r:" + "0" * 24 + ":" + "0" * 24 + ":")


def check_id(checkpoint_id: Any) -> str:
    """A checkpoint id that fits the variable names, else ``ValueError``."""
    if not isinstance(checkpoint_id, str) or not checkpoint_id or ":" in checkpoint_id:
        raise ValueError(f"invalid checkpoint id {checkpoint_id!r}")
    if "\0" in checkpoint_id or len(checkpoint_id.encode()) > _MAX_ID_BYTES:
        raise ValueError(f"checkpoint id {checkpoint_id[:40]!r}... is longer than 204 bytes")
    return checkpoint_id


def session_name(thread_id: str) -> str:
    """A session name showing the thread id (names are at most 255 bytes, without NUL)."""
    raw = thread_id.replace("\0", "").encode("utf-8", "replace")[:MAX_NAME_BYTES]
    return raw.decode("utf-8", "ignore") or "langgraph thread"


def json_like(value: Any, depth: int = 0) -> bool:
    """Whether satchel keeps ``value`` as a variable as it is (tuples come back as lists)."""
    kind = type(value)
    if kind is str:
        # ASCII text encodes; only other text can hold a lone surrogate UTF-8 refuses.
        return value.isascii() or _utf8(value)
    if value is None or kind is bool:
        return True
    if kind is int:
        return bool(-(1 << 63) <= value <= (1 << 64) - 1)
    if kind is float:
        return math.isfinite(value)
    if depth >= 60:
        return False
    if kind is dict:
        for k, v in value.items():
            if type(k) is not str or not json_like(v, depth + 1):
                return False
        return True
    if kind is list or kind is tuple:
        return all(json_like(v, depth + 1) for v in value)
    return False


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_event(event: dict[str, Any]) -> dict[str, Any]:
    """An event with the fields satchel cannot keep as they are turned to text."""
    return {k: v if json_like(v) else repr(v) for k, v in event.items()}


class View(NamedTuple):
    """What a saver knows of a thread as of its event position ``pos``. A put relying on it
    appends with ``expect_position=pos``: if another writer appended since, the core refuses
    (``InvalidStateTransitionError``) and the saver reads the thread again. Never changed in
    place (the threads of a sync saver share it): an append of the saver replaces it."""

    pos: int
    #: The newest checkpoint id of each namespace (by nsid) that has one.
    heads: Mapping[str, str]
    #: The checkpoint the saver put last in each namespace, and its channel references: the
    #: parent of the next put there, whose record need not be read.
    last: Mapping[str, tuple[str, Mapping[str, Ref]]]
    #: Whether every write of the thread is known (the saver made the thread): ``written``
    #: then holds each namespace's newest checkpoint id that has writes (a newer one has
    #: none), and ``slots`` the write names of that checkpoint. A set of ``slots`` only
    #: grows, in place, shared by the views before and after: a name in it exists at the
    #: view's position or later, and a put_writes finding one there reads the writes rather
    #: than trust it.
    whole: bool
    written: Mapping[str, str]
    slots: Mapping[str, set[str]]
    #: The thread's session's ``created_at``, which its appends also expect: a thread
    #: deleted and made again starts its positions over, and must not pass for this one.
    created: Any = None


def new_view(pos: int, heads: Mapping[str, str], whole: bool, created: Any) -> View:
    return View(pos, heads, {}, whole, {}, {}, created)


_NONE: Final[frozenset[str]] = frozenset()


def known_writes(view: View, ns_id: str, checkpoint_id: str) -> Collection[str] | None:
    """The names of the writes of ``checkpoint_id`` as of ``view.pos`` (and maybe later
    ones), if known."""
    if not view.whole:
        return None
    newest = view.written.get(ns_id)
    if newest is None or checkpoint_id > newest:
        return _NONE
    return view.slots[ns_id] if checkpoint_id == newest else None


def after_put(
    view: View, pos: int, ns_id: str, checkpoint_id: str, refs: Mapping[str, Ref], head: bool
) -> View:
    """``view`` once the put of ``checkpoint_id`` landed at ``pos`` (``head``: it set the
    namespace's head)."""
    heads = {**view.heads, ns_id: checkpoint_id} if head else view.heads
    last = {**view.last, ns_id: (checkpoint_id, refs)}
    return View(pos, heads, last, view.whole, view.written, view.slots, view.created)


def after_writes(view: View, pos: int, ns_id: str, checkpoint_id: str, names: Any) -> View:
    """``view`` once writes ``names`` of ``checkpoint_id`` landed at ``pos``."""
    written, slots = view.written, view.slots
    if view.whole:
        newest = written.get(ns_id)
        if newest is None or checkpoint_id > newest:
            written = {**written, ns_id: checkpoint_id}
            slots = {**slots, ns_id: set(names)}
        elif checkpoint_id == newest:
            slots[ns_id].update(names)  # in place: a write's cost must not grow with the step's
        # else an older checkpoint's writes, which the view does not follow
    return View(pos, view.heads, view.last, view.whole, written, slots, view.created)
