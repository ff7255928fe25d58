"""The session archive format: member names, the manifest, the report, and tar framing.

An archive is an uncompressed POSIX tar holding, in this order:

=====================  ==========================================================================
``manifest.json``      format, version, session id, counts, and each later member's size and hash
``session.msgpack``    ``{"record": bytes, "counters": bytes}`` as the store holds them
``variables.msgpack``  ``[[key, stored value], ...]`` in key order
``artifacts.msgpack``  ``{"versions": [stored record, ...], "names": [[name, stored entry], ...],
                       "retired": [[name, last version], ...]}`` (``retired``: names whose
                       every version was deleted; from format version 2 on)
``journal.msgpack``    ``[[seq, stored entry], ...]`` from 1 on
``blobs/<hash>``       the raw content of each distinct blob, once (its hash is its BLAKE3)
=====================  ==========================================================================

Records travel as the bytes the store holds, so an import writes them back bit for bit;
everything derived from them (query indexes, id, name-order and by-update entries, deadlines,
blob references) is rebuilt on import as the sessions and artifacts code writes it.

The tar framing is written by hand (``TarInfo.tobuf`` headers, data, padding) rather than
through ``TarFile.addfile``, because content comes from an async blob stream and
``addfile`` wants a synchronous file to read from.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Callable
from typing import Any, Protocol

import attrs

from satchel.runtime._errors import InvalidArgumentError, ValidationError

from .. import _validate as validate

FORMAT = "satchel-session-archive"
VERSION = 2
#: The format versions this satchel reads (1 has no ``retired`` names).
READABLE = (1, 2)

MANIFEST = "manifest.json"
SESSION = "session.msgpack"
VARIABLES = "variables.msgpack"
ARTIFACTS = "artifacts.msgpack"
JOURNAL = "journal.msgpack"
#: The members every archive holds after its manifest, in this order; blobs follow.
FIXED = (SESSION, VARIABLES, ARTIFACTS, JOURNAL)
BLOB_DIR = "blobs/"
_BLOB_NAME = re.compile(r"blobs/([0-9a-f]{64})")
_HASH = re.compile(r"[0-9a-f]{64}")
#: A manifest lists about 120 bytes per blob: this is over half a million blobs.
MAX_MANIFEST_BYTES = 64 << 20
_COUNT_FIELDS = ("variables", "journal_entries", "artifacts", "names", "blobs")

#: Called as content goes by with ``(done_bytes, total_bytes)``.
Progress = Callable[[int, int], object]


class BinarySink(Protocol):
    """A writable binary file object (it need not seek)."""

    def write(self, data: bytes, /) -> int | None:
        """Write ``data``; how many bytes were taken (``None``: all of them)."""
        ...


class BinarySource(Protocol):
    """A readable binary file object (it need not seek)."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes; fewer only at the end."""
        ...


@attrs.frozen
class ArchiveReport:
    """What an export wrote or an import stored.

    ``artifacts`` counts versions, ``blobs`` the distinct contents the archive carries and
    ``bytes`` their size; ``blobs_reused`` (import) how many of those the target already
    held; ``parent_missing`` (import) whether the session names a parent the target lacks.
    """

    session_id: str
    artifacts: int
    blobs: int
    bytes: int
    journal_entries: int
    variables: int = 0
    blobs_reused: int = 0
    parent_missing: bool = False


@attrs.frozen
class Member:
    """One member after the manifest: its name, size, and the BLAKE3 hash of its bytes."""

    name: str
    size: int
    blake3: str


@attrs.frozen
class Manifest:
    """The first member of an archive."""

    session_id: str
    exported_at: str
    satchel_version: str
    counts: dict[str, int]
    total_bytes: int  # of the blobs
    members: tuple[Member, ...]

    def encode(self) -> bytes:
        """The manifest's bytes (JSON, so ``tar -xO`` shows what an archive holds)."""
        body = {
            "format": FORMAT,
            "version": VERSION,
            "session_id": self.session_id,
            "exported_at": self.exported_at,
            "satchel_version": self.satchel_version,
            "counts": self.counts,
            "bytes": self.total_bytes,
            "members": [attrs.asdict(m) for m in self.members],
        }
        return json.dumps(body, indent=1).encode()

    @property
    def blobs(self) -> tuple[Member, ...]:
        """The blob members, in archive order."""
        return self.members[len(FIXED) :]


def blob_member(content_hash: str) -> str:
    """The member name of the blob with ``content_hash``."""
    return BLOB_DIR + content_hash


def blob_hash(name: str) -> str | None:
    """The content hash a blob member name carries, or ``None`` if it is not one."""
    found = _BLOB_NAME.fullmatch(name)
    return None if found is None else found.group(1)


def is_hash(value: object) -> bool:
    """Whether ``value`` is a content hash: 64 lowercase hex digits."""
    return type(value) is str and _HASH.fullmatch(value) is not None


def refuse(message: str) -> ValidationError:
    """The error for an archive that cannot be imported."""
    return ValidationError(f"bad session archive: {message}")


def _count(field: str, value: object) -> int:
    if type(value) is not int or value < 0:
        raise refuse(f"manifest {field} must be a non-negative integer, not {value!r}")
    return value


def _text(field: str, value: object) -> str:
    if type(value) is not str:
        raise refuse(f"manifest {field} must be text, not {type(value).__name__}")
    return value


def parse_manifest(data: bytes) -> Manifest:
    """The manifest in ``data``, checked field by field (``ValidationError`` if anything is
    off: an unknown format version, a member name outside the format, a duplicate...)."""
    try:
        body: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise refuse("the manifest is not JSON") from None
    if type(body) is not dict or body.get("format") != FORMAT:
        raise refuse(f"the manifest does not name the format {FORMAT!r}")
    version = body.get("version")
    if version not in READABLE or type(version) is not int:
        raise refuse(
            f"format version {version!r} is unknown; this satchel reads versions "
            f"{', '.join(map(str, READABLE))}"
        )
    try:
        session_id = validate.session_id(body.get("session_id"))[0]
    except (InvalidArgumentError, ValidationError) as error:
        raise refuse(f"manifest session_id: {error}") from None
    counts = body.get("counts")
    if type(counts) is not dict or sorted(counts) != sorted(_COUNT_FIELDS):
        raise refuse(f"manifest counts must hold exactly {', '.join(_COUNT_FIELDS)}")
    members = body.get("members")
    if type(members) is not list:
        raise refuse("manifest members must be a list")
    manifest = Manifest(
        session_id=session_id,
        exported_at=_text("exported_at", body.get("exported_at")),
        satchel_version=_text("satchel_version", body.get("satchel_version")),
        counts={k: _count(f"counts.{k}", v) for k, v in counts.items()},
        total_bytes=_count("bytes", body.get("bytes")),
        members=tuple(_member(m) for m in members),
    )
    _check_members(manifest)
    return manifest


def _member(value: object) -> Member:
    if type(value) is not dict or sorted(value) != ["blake3", "name", "size"]:
        raise refuse(f"a manifest member must hold name, size and blake3: {value!r:.120}")
    digest = _text("member blake3", value["blake3"])
    if not is_hash(digest):
        raise refuse(f"member hash {digest!r:.80} is not 64 lowercase hex digits")
    return Member(_text("member name", value["name"]), _count("member size", value["size"]), digest)


def _check_members(manifest: Manifest) -> None:
    """The members must be the fixed ones in order, then distinct blobs named by hash."""
    names = [m.name for m in manifest.members]
    if tuple(names[: len(FIXED)]) != FIXED:
        raise refuse(f"the members must start with {', '.join(FIXED)}")
    seen: set[str] = set()
    for member in manifest.blobs:
        digest = blob_hash(member.name)
        if digest is None:
            raise refuse(f"member name {member.name!r:.120} is not part of the format")
        if digest in seen:
            raise refuse(f"blob {digest} is listed twice")
        if member.blake3 != digest:
            raise refuse(f"blob {digest} is listed with another hash, {member.blake3}")
        seen.add(digest)
    if manifest.counts["blobs"] != len(seen):
        raise refuse(f"the manifest counts {manifest.counts['blobs']} blobs and lists {len(seen)}")
    if manifest.total_bytes != sum(m.size for m in manifest.blobs):
        raise refuse("the manifest's byte count is not the sum of its blobs")


class TarWriter:
    """Tar members written one after another to a sink that may not seek: each member's
    size is given before its bytes, as a tar header needs it."""

    def __init__(self, sink: BinarySink, mtime: int) -> None:
        self._sink = sink
        self._mtime = mtime
        self._written = 0
        self._size = 0  # of the open member
        self._left = 0  # bytes the open member still expects

    def _put(self, data: bytes) -> None:
        while data:
            taken = self._sink.write(data)
            # Raw files may take part of a write; buffered ones take all or raise, and
            # simple hand-written sinks often return nothing.
            taken = len(data) if taken is None else taken
            if not 0 < taken <= len(data):
                raise OSError(f"the archive sink took {taken} of {len(data)} bytes")
            self._written += taken
            data = data[taken:]

    def begin(self, name: str, size: int) -> None:
        """Start member ``name`` of ``size`` bytes."""
        if self._left:
            raise AssertionError("the previous member is not finished")
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = self._mtime
        info.mode = 0o644
        info.type = tarfile.REGTYPE
        self._put(info.tobuf(tarfile.PAX_FORMAT))
        self._left = self._size = size

    def write(self, data: bytes) -> None:
        """Add bytes to the open member (never more than it announced)."""
        if len(data) > self._left:
            raise ValidationError(f"a member grew past the {self._size} bytes announced")
        self._put(data)
        self._left -= len(data)

    def end(self) -> None:
        """Finish the open member (it must have received every byte announced)."""
        if self._left:
            raise ValidationError(f"a member of {self._size} bytes is {self._left} bytes short")
        self._put(bytes(-self._size % tarfile.BLOCKSIZE))

    def add(self, name: str, pieces: list[bytes]) -> None:
        """Write a whole member held in memory as ``pieces``."""
        self.begin(name, sum(map(len, pieces)))
        for piece in pieces:
            self.write(piece)
        self.end()

    def close(self) -> None:
        """Write the end-of-archive blocks, padded to a whole tar record as ``tar`` does."""
        self._put(bytes(2 * tarfile.BLOCKSIZE))
        self._put(bytes(-self._written % tarfile.RECORDSIZE))
