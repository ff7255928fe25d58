"""How artifacts sit in the index space, next to their session's keys: versions, ids, names'
heads and retired names, grants and audit logs. ``ArtifactRecords`` (``_artifact_records``)
reads them; batches are built from these keys.
"""

from __future__ import annotations

import functools
import mimetypes
import struct
from collections.abc import Awaitable, Mapping
from typing import Any

from satchel.runtime._errors import ValidationError
from satchel.storage import RecordReads
from satchel.storage import _keys as keys

from .. import _validate as validate
from ..sessions._session_layout import encode_value
from ._artifact_model import ArtifactInfo, ArtifactRecord, record_fields

_U32 = struct.Struct(">I")
_NAME_VALUE = struct.Struct(">IQ24s")
_RESERVED = ("mime_type", "description", "tags")
#: The scope of a grant that covers every version of a name.
WHOLE_NAME = bytes(16)
#: A grant's value: its permission's rank, when it was granted (µs) and by whom.
GRANT_VALUE = struct.Struct(">BQ16s")


def session_prefix(sid: bytes) -> bytes:
    """The prefix of every artifact version of session ``sid``."""
    return keys.ARTIFACT + sid


def versions_prefix(sid: bytes, name: bytes) -> bytes:
    """The prefix of every version of ``name`` in session ``sid`` (in version order)."""
    return keys.ARTIFACT + sid + name + b"\x00"


def record_key(sid: bytes, name: bytes, version: int) -> bytes:
    """Where one version's record is; also the owner key of its blob reference."""
    return versions_prefix(sid, name) + _U32.pack(version)


def id_key(aid: bytes) -> bytes:
    """Where an artifact id points to its version's record."""
    return keys.ARTIFACT_ID + aid


def name_key(sid: bytes, name: bytes) -> bytes:
    """Where a name's last assigned version and first creation time are."""
    return keys.ARTIFACT_NAME + sid + name


def retired_key(sid: bytes, name: bytes) -> bytes:
    """Where the last version of a name whose every version was deleted is kept."""
    return keys.ARTIFACT_RETIRED + sid + name


def retired_prefix(sid: bytes) -> bytes:
    """The prefix of every retired name of session ``sid``."""
    return keys.ARTIFACT_RETIRED + sid


def decode_retired(raw: bytes | None) -> int:
    """The last version a retired key's value holds (0 for no key)."""
    return 0 if raw is None else int(_U32.unpack(raw)[0])


def encode_retired(last_version: int) -> bytes:
    """The value of a retired key."""
    return _U32.pack(last_version)


def grant_name_prefix(owner: bytes, name: bytes) -> bytes:
    """Every grant on ``name`` (any scope) of session ``owner``."""
    return keys.ARTIFACT_GRANT + owner + name + b"\x00"


def grant_key(owner: bytes, name: bytes, scope: bytes, target: bytes) -> bytes:
    """Where one grant is kept, under the artifact."""
    return grant_name_prefix(owner, name) + scope + target


def granted_key(target: bytes, owner: bytes, name: bytes, scope: bytes) -> bytes:
    """Where one grant is kept, under the session it was granted to."""
    return keys.ARTIFACT_GRANTED + target + owner + name + b"\x00" + scope


def audit_prefix(owner: bytes, name: bytes) -> bytes:
    """The keys of one name's audit entries."""
    return keys.ARTIFACT_AUDIT + owner + name + b"\x00"


def audit_session_prefix(owner: bytes) -> bytes:
    """The keys of every audit entry of session ``owner``'s artifacts."""
    return keys.ARTIFACT_AUDIT + owner


def names_prefix(sid: bytes) -> bytes:
    """The prefix of every artifact name of session ``sid``."""
    return keys.ARTIFACT_NAME + sid


def encode_name_value(last_version: int, first_created_us: int, latest: bytes) -> bytes:
    """The value of a name key; ``latest`` is the query-index suffix of the latest version."""
    return _NAME_VALUE.pack(last_version, first_created_us, latest)


def decode_name_value(value: bytes) -> tuple[int, int, bytes]:
    """``(last_version, first_created_us, latest_suffix)`` of a name key's value."""
    last, first, latest = _NAME_VALUE.unpack(value)
    return last, first, latest


def to_info(record: ArtifactRecord) -> ArtifactInfo:
    """The metadata table of a stored version."""
    # Positional, in ArtifactInfo's field order: listing versions builds one per version.
    return ArtifactInfo(
        record.id,
        record.session_id,
        record.name,
        record.version,
        record.type,
        record.mime_type,
        record.description,
        record.size,
        record.content_hash,
        record.tags,
        record.custom,
        validate.stored_datetime(record.created_us, "an artifact record"),
        record.created_by,
        record.compressed,
        record.stored_size,
    )


def info_of(raw: Any) -> ArtifactInfo:
    """``to_info`` of the record unpacked as ``raw`` (see ``record_fields``), without
    building the record."""
    f = record_fields(raw)
    return ArtifactInfo(
        f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[10], f[9], f[7], f[8],
        validate.stored_datetime(f[13], "an artifact record"), f[14], f[12], f[11],
    )  # fmt: skip


_info_of = info_of  # its name before the repository read with it (tests use it)


def _guess_mime(name: str) -> str:
    dot = name.rfind(".")
    if dot < 0 and ":" not in name:
        return "application/octet-stream"  # no extension, no URL: nothing to guess from
    if dot > 0 and ":" not in name and name[dot:] not in mimetypes.encodings_map:
        # A checked name (no "/", no leading ".") with no URL scheme and no encoding
        # suffix (".gz" makes "a.tar.gz" a tar) has its extension's type, so names that
        # differ (report-1.json, report-2.json...) share one cache entry.
        return _guess_named("x" + name[dot:])
    return _guess_named(name)


@functools.lru_cache(maxsize=1024)
def _guess_named(name: str) -> str:
    # Artifact names repeat (each new version reuses one), and guessing parses the name.
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def split_metadata(
    name: str, metadata: Mapping[str, Any] | None
) -> tuple[str, str | None, tuple[str, ...], dict[str, Any]]:
    """``(mime_type, description, tags, custom)`` from a store call's metadata map."""
    if metadata is None:
        # What the checks below make of no metadata (most stores give none).
        return validate.mime_type(_guess_mime(name)), None, (), {}
    given = validate.metadata(metadata)
    mime = given.get("mime_type")
    if mime is None:
        mime = _guess_mime(name)
    description = given.get("description")
    if description is not None:
        description = validate.text("description", description, validate.MAX_DESCRIPTION_BYTES)
    tags = validate.tags(given.get("tags") or ())
    custom = {k: v for k, v in given.items() if k not in _RESERVED}
    size = len(validate.encoded("custom metadata", encode_value, custom))
    if size > validate.MAX_CUSTOM_BYTES:
        raise ValidationError(
            f"custom metadata encodes to {size} bytes; the limit is {validate.MAX_CUSTOM_BYTES}"
        )
    return validate.mime_type(mime), description, tags, custom


# -- reads, for callers outside the package that hold only the port ----------------------------


def all_of_session(
    records: RecordReads, sid: bytes
) -> Awaitable[list[tuple[bytes, ArtifactRecord]]]:
    """``ArtifactRecords.all_of_session`` (for the sessions package's removal)."""
    # Imported here: the repository is built on this module's keys.
    from ._artifact_records import ArtifactRecords

    return ArtifactRecords(records).all_of_session(sid)


def versions(records: RecordReads, sid: bytes, name: bytes) -> Awaitable[list[ArtifactRecord]]:
    """``ArtifactRecords.versions``."""
    from ._artifact_records import ArtifactRecords

    return ArtifactRecords(records).versions(sid, name)
