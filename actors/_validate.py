"""Every rule about session input, in one place: ids, names, tags, JSON-like values, times.

Wrong types raise ``InvalidArgumentError``; values of the right type out of bounds raise
``ValidationError``. Each message names the field and the value at fault.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from satchel.runtime._errors import IntegrityError, InvalidArgumentError, ValidationError

MAX_NAME_BYTES = 255
MAX_DESCRIPTION_BYTES = 64 * 1024
MAX_TAG_BYTES = 64
MAX_TAGS = 64
MAX_METADATA_BYTES = 64 * 1024
MAX_KEY_BYTES = 256
MAX_DEPTH = 64
#: The deepest a container may be and still hold an empty one.
_LAST_DEPTH = MAX_DEPTH - 1
MAX_REASON_BYTES = 4096

_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 64) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_HEX = frozenset("0123456789abcdef")


#: The longest session key a caller may choose (UTF-8 bytes).
MAX_SESSION_KEY_BYTES = 256
#: The namespace of the UUIDs that keyed sessions get (``session_id_for``).
_KEY_NAMESPACE = uuid.UUID("5a7c4e1e-9d2b-5c3f-8a61-0b7e2f4d9c10")
_KEY_NAMESPACE_BYTES = _KEY_NAMESPACE.bytes


def session_id(value: object) -> tuple[str, bytes]:
    """The canonical text and 16 bytes of the session ``value`` names: a UUID in its
    36-character form (new ids are UUIDv4; the nil UUID names no session), or any other text
    a caller chose as a session's key, which names the UUID ``session_id_for`` derives from
    it; ``InvalidArgumentError`` for anything else."""
    if (
        type(value) is str
        and len(value) == 36
        and value[8] == value[13] == value[18] == value[23] == "-"
    ):
        # Every operation names its session: canonical ids skip building a UUID (1.7 µs).
        digits = value.replace("-", "")
        if _HEX.issuperset(digits):
            return value, bytes.fromhex(digits)
    if type(value) is not str:
        raise InvalidArgumentError(f"a session id must be a string, not {type(value).__name__}")
    if len(value) == 36:
        with contextlib.suppress(ValueError):
            parsed = uuid.UUID(value)
            return str(parsed), parsed.bytes
    return _id_for_key(value)


def session_key(value: object) -> str:
    """A caller-chosen session key, checked: text of 1..256 UTF-8 bytes, no NUL."""
    key = text("a session key", value, MAX_SESSION_KEY_BYTES)
    if not key:
        raise InvalidArgumentError("Invalid session ID: a session key must not be empty")
    return key


def session_id_for(key: object) -> tuple[str, bytes]:
    """The id of the session keyed ``key``: the key itself if it is a UUID, else a UUIDv5
    derived from it (the same key names the same session in every store)."""
    checked = session_key(key)
    if len(checked) == 36:
        with contextlib.suppress(ValueError):
            parsed = uuid.UUID(checked)
            if parsed.int == 0:
                raise InvalidArgumentError("Invalid session ID: the nil UUID names no session")
            return str(parsed), parsed.bytes
    # uuid.uuid5 by hand (RFC 4122: SHA-1 of namespace and name, version and variant bits
    # set), without its UUID objects: 0.8 instead of 3 µs on every keyed call.
    raw = bytearray(
        hashlib.sha1(_KEY_NAMESPACE_BYTES + checked.encode(), usedforsecurity=False).digest()[:16]
    )
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", bytes(raw)


#: ``session_id_for`` of a key text, remembered: a framework adapter names its session by key
#: on every call (1.3 µs a derivation, 0.05 a hit). Bounded: a key and its id are a few
#: hundred bytes at most, and a key that fails its checks raises and is not kept.
_id_for_key = functools.lru_cache(maxsize=1024)(session_id_for)


def new_session_id() -> tuple[str, bytes]:
    """A fresh, unguessable session id (122 random bits from the OS), as ``uuid.uuid4``
    makes it but without building a ``UUID`` object on the create path."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", bytes(raw)


def text(field: str, value: object, limit: int, *, nul_ok: bool = False) -> str:
    """``value`` checked to be a string of at most ``limit`` UTF-8 bytes."""
    if type(value) is not str:
        raise InvalidArgumentError(f"{field} must be a string, not {type(value).__name__}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValidationError(f"{field} {_short(value)} is not valid Unicode text") from None
    if size > limit:
        raise ValidationError(f"{field} is {size} bytes; the limit is {limit}")
    if not nul_ok and "\x00" in value:
        raise ValidationError(f"{field} {_short(value)} contains a NUL character")
    return value


def tags(values: object) -> tuple[str, ...]:
    """Tags checked, deduplicated, first occurrence order kept."""
    items: Iterable[object]
    if type(values) is list or type(values) is tuple:
        items = values  # the common case, without the slower ABC checks
    elif isinstance(values, Sequence) and not isinstance(values, (str, bytes)):
        items = values  # ordered: a set or a map's keys would make the order arbitrary
    else:
        raise InvalidArgumentError(f"tags must be an array of strings, not {_short(values)}")
    seen: dict[str, None] = {}
    for tag in items:
        checked = text("a tag", tag, MAX_TAG_BYTES)
        if not checked:
            raise ValidationError("a tag must not be empty")
        seen[checked] = None
    if len(seen) > MAX_TAGS:
        raise ValidationError(f"{len(seen)} tags; the limit is {MAX_TAGS}")
    return tuple(seen)


#: A field's name, or a prefix and the key it names (``("state", "k")`` reads ``state 'k'``):
#: a hot path passes the pair, and the text is made only for an error's message.
Field = str | tuple[str, object]


def field_name(field: Field) -> str:
    """The text of ``field``."""
    return field if type(field) is str else f"{field[0]} {field[1]!r}"


def json_like(field: Field, value: Any) -> None:
    """Raise unless ``value`` is null, a boolean, number, string, array or string-keyed map.

    Strings are not checked for lone surrogates here: encoding them fails, and the callers
    that encode map that failure to ``ValidationError`` (see ``encoded``).
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:  # most variables: no walk to make
        return
    try:
        _walk(value, 0)
    except _Unfit as unfit:
        where = field_name(field) + "".join(f"[{step!r}]" for step in reversed(unfit.path))
        raise unfit.error(f"{where}: {unfit.reason}") from None


def json_encoded(field: Field, encode: Callable[[Any], bytes], value: Any) -> bytes:
    """``value`` checked to be JSON-like (``json_like``), then ``encode(value)`` (``encoded``):
    one call where a value is both checked and stored."""
    try:
        _walk(value, 0)
        return encode(value)
    except _Unfit as unfit:
        where = field_name(field) + "".join(f"[{step!r}]" for step in reversed(unfit.path))
        raise unfit.error(f"{where}: {unfit.reason}") from None
    except UnicodeEncodeError as error:
        raise not_unicode(field, error) from None


class _Unfit(Exception):
    """A value that is not JSON-like; ``path`` is filled in while unwinding."""

    def __init__(self, error: type[Exception], reason: str) -> None:
        self.error = error
        self.reason = reason
        self.path: list[object] = []


def _walk(value: Any, depth: int) -> None:
    kind = type(value)
    if kind is dict or kind is list or kind is tuple:
        if depth >= MAX_DEPTH:
            raise _Unfit(ValidationError, f"nested more than {MAX_DEPTH} levels deep")
        # The two loops differ only in how they step (a map's keys are checked too): one loop
        # testing the kind at every item costs a tenth more on an ADK event.
        if kind is dict:
            for step, item in value.items():
                if type(step) is not str:
                    raise _Unfit(
                        InvalidArgumentError,
                        f"map keys must be strings, not {type(step).__name__} {_short(step)}",
                    )
                # Text, null, numbers, booleans and empty containers are most of what a
                # message holds: passed over without a call (the checks below, inline; ``x - x``
                # is 0.0 for a finite float, NaN for an infinite one or NaN).
                item_kind = type(item)
                if item_kind is str or item is None or item_kind is bool:
                    continue
                if item_kind is int:
                    if _INT_MIN <= item <= _INT_MAX:
                        continue
                elif item_kind is float:
                    if item - item == 0.0:
                        continue
                elif (item_kind is dict or item_kind is list) and not item and depth < _LAST_DEPTH:
                    continue
                try:
                    _walk(item, depth + 1)
                except _Unfit as unfit:
                    unfit.path.append(step)
                    raise
        else:
            for index, item in enumerate(value):
                # As in the loop above.
                item_kind = type(item)
                if item_kind is str or item is None or item_kind is bool:
                    continue
                if item_kind is int:
                    if _INT_MIN <= item <= _INT_MAX:
                        continue
                elif item_kind is float:
                    if item - item == 0.0:
                        continue
                elif (item_kind is dict or item_kind is list) and not item and depth < _LAST_DEPTH:
                    continue
                try:
                    _walk(item, depth + 1)
                except _Unfit as unfit:
                    unfit.path.append(index)
                    raise
        return
    if kind is str or kind is bool or value is None:
        return
    if kind is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise _Unfit(ValidationError, f"integer {value} does not fit in 64 bits")
        return
    if kind is float:
        if not math.isfinite(value):
            raise _Unfit(ValidationError, f"{value} is not a finite number")
        return
    if depth >= MAX_DEPTH:  # as before the walk took containers first: depth is judged first
        raise _Unfit(ValidationError, f"nested more than {MAX_DEPTH} levels deep")
    raise _Unfit(InvalidArgumentError, f"{kind.__name__} is not a JSON-like value")


def encoded(field: Field, encode: Callable[[Any], bytes], value: Any) -> bytes:
    """``encode(value)``, with text that UTF-8 cannot carry reported as ``ValidationError``."""
    try:
        return encode(value)
    except UnicodeEncodeError as error:
        raise not_unicode(field, error) from None


def not_unicode(field: Field, error: UnicodeEncodeError) -> ValidationError:
    """The error for text in ``field`` that UTF-8 cannot carry (``error`` says which)."""
    bad = error.object[error.start : error.end]
    return ValidationError(f"{field_name(field)} holds text that is not valid Unicode ({bad!r})")


def metadata(value: object) -> dict[str, Any]:
    """A metadata map checked to be JSON-like (its size is checked once encoded)."""
    if value is None:
        return {}
    if type(value) is not dict and not isinstance(value, Mapping):
        raise InvalidArgumentError(f"metadata must be a map, not {type(value).__name__}")
    result = dict(value)
    json_like("metadata", result)
    return result


def state_key(key: object) -> bytes:
    """A variable name as stored: non-empty, at most 256 UTF-8 bytes."""
    if type(key) is not str:
        raise InvalidArgumentError(f"a state key must be a string, not {type(key).__name__}")
    if not key:
        raise ValidationError("a state key must not be empty")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"state key {_short(key)} is not valid Unicode text") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise ValidationError(
            f"state key {_short(key)} is {len(encoded)} bytes; the limit is {MAX_KEY_BYTES}"
        )
    return encoded


def aware(field: str, moment: datetime) -> datetime:
    """``moment`` with its offset from UTC (a naive one, or one whose time zone gives none,
    is UTC); ``InvalidArgumentError`` if its time zone fails to give one."""
    try:
        offset = moment.utcoffset()
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(f"{field}: its time zone gives no offset ({error})") from None
    return moment if offset is not None else moment.replace(tzinfo=UTC)


def micros(field: str, value: object) -> int:
    """A time given as a datetime, RFC 3339 text or seconds since the epoch, in microseconds."""
    if isinstance(value, datetime):
        return round(aware(field, value).timestamp() * 1_000_000)
    if type(value) in (int, float):
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except OverflowError:
            seconds = math.inf
        if not math.isfinite(seconds):
            raise ValidationError(f"{field} must be a finite time, not {_short(value)}")
        return round(seconds * 1_000_000)
    if type(value) is str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(f"{field} {_short(value)} is not an RFC 3339 time") from None
        return micros(field, moment)
    raise InvalidArgumentError(
        f"{field} must be a time (RFC 3339 text or seconds), not {type(value).__name__}"
    )


#: The last microsecond a datetime can hold (year 9999): the latest time satchel stores.
LAST_US = 253_402_300_799_999_999


def to_datetime(us: int) -> datetime:
    """A UTC datetime from microseconds since the epoch."""
    return _EPOCH + timedelta(0, 0, us)  # positional: a third cheaper than by keyword


def stored_datetime(us: int, what: str) -> datetime:
    """``to_datetime`` of a time read from the store: ``IntegrityError`` if no datetime can
    hold it (before year 1 or after 9999, or no number: a damaged record), not
    ``OverflowError`` or ``TypeError``."""
    try:
        return _EPOCH + timedelta(0, 0, us)
    except OverflowError:
        raise IntegrityError(f"{what} holds a time no date can: {us} µs") from None
    except TypeError:
        raise IntegrityError(f"{what} holds a time that is no number: {us!r}") from None


def page(offset: object, limit: object) -> None:
    """Check a page: ``offset`` an integer >= 0, ``limit`` one or ``None``."""
    for field, value in (("offset", offset), ("limit", limit)):
        if value is None and field == "limit":
            continue
        if type(value) is not int:
            raise InvalidArgumentError(f"{field} must be an integer, not {type(value).__name__}")
        if not 0 <= value <= MAX_PAGE:
            raise ValidationError(f"{field} must be from 0 to {MAX_PAGE}, not {value}")


#: The largest offset or limit of a page (Python's own bound on a slice).
MAX_PAGE = sys.maxsize
MAX_ARTIFACT_NAME_BYTES = 255
MAX_TYPE_BYTES = 64
MAX_MIME_BYTES = 255
MAX_CUSTOM_BYTES = 64 * 1024
ARTIFACT_ID_PREFIX = "art_"


def artifact_name(name: object) -> bytes:
    """An artifact name as stored: 1-255 UTF-8 bytes, no ``/``, ``\\``, NUL or leading ``.``."""
    if type(name) is not str:
        raise InvalidArgumentError(f"an artifact name must be a string, not {type(name).__name__}")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"artifact name {_short(name)} is not valid Unicode text") from None
    if not 1 <= len(encoded) <= MAX_ARTIFACT_NAME_BYTES:
        raise ValidationError(
            f"artifact name {_short(name)} is {len(encoded)} bytes; it must be 1 to "
            f"{MAX_ARTIFACT_NAME_BYTES}"
        )
    bad = next((c for c in ("/", "\\", "\x00") if c in name), None)
    if bad is not None or name.startswith("."):
        why = f"contains {bad!r}" if bad is not None else "starts with '.'"
        raise ValidationError(f"artifact name {_short(name)} {why}")
    if len(encoded) == 36 and is_artifact_id(name):
        # Where an artifact is given by id or name, this text would be taken for an id.
        raise ValidationError(f"artifact name {_short(name)} has the form of an artifact id")
    return encoded


def artifact_type(value: object) -> str:
    """An artifact type: one of the spec's, or any other non-empty string (a custom type)."""
    if type(value) is not str or not value:
        raise InvalidArgumentError(f"an artifact type must be a non-empty string, not {value!r}")
    return text("artifact type", value, MAX_TYPE_BYTES)


def artifact_id(value: object) -> bytes:
    """The 16 bytes of an artifact id (``art_`` and 32 hex digits)."""
    if (
        type(value) is str
        and len(value) == 36
        and value.startswith(ARTIFACT_ID_PREFIX)
        and _HEX.issuperset(value[4:])
    ):
        return bytes.fromhex(value[4:])
    raise InvalidArgumentError(f"malformed artifact id {_short(value)}")


def is_artifact_id(value: object) -> bool:
    """Whether ``value`` has the form of an artifact id (rather than a name)."""
    try:
        artifact_id(value)
    except InvalidArgumentError:
        return False
    return True


def new_artifact_id() -> tuple[str, bytes]:
    """A fresh, unguessable artifact id (128 random bits)."""
    raw = os.urandom(16)
    return ARTIFACT_ID_PREFIX + raw.hex(), raw


def new_artifact_ids(count: int) -> list[tuple[str, bytes]]:
    """``count`` fresh artifact ids, as ``new_artifact_id`` makes them, from one read of
    the system's random source (a fork names thousands)."""
    raw = os.urandom(16 * count)
    return [
        (ARTIFACT_ID_PREFIX + raw[i : i + 16].hex(), raw[i : i + 16])
        for i in range(0, 16 * count, 16)
    ]


def mime_type(value: object) -> str:
    """A MIME type: printable text containing ``/`` (it becomes an HTTP header)."""
    checked = text("mime_type", value, MAX_MIME_BYTES)
    if "/" not in checked:
        raise ValidationError(f"mime_type {_short(checked)} is not a MIME type (no '/')")
    if not checked.isprintable():
        raise ValidationError(f"mime_type {_short(checked)} holds control characters")
    return checked
