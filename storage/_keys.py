"""Key prefixes of the index space: one place, so no two record kinds ever collide.

Every index key starts with a short ASCII tag and a NUL; what follows is the tag's own layout.
The backends' own keys are here too (``cfp``, ``cfr``, ``walp``): a ``KeyValueStore`` user
keeps its index keys off these tags.
"""

from __future__ import annotations

import time

BLOB = b"blob\x00"  # + digest(32) -> BlobMeta
BLOB_REF = b"bref\x00"  # + digest(32) + owner key -> b"" (one reference to the blob)
# + data_id(16) -> when marked (pending_since) or b"" (chunks no blob owns: upload or free)
BLOB_PENDING = b"bpen\x00"


def blob_key(digest: bytes) -> bytes:
    """The index key of a blob's metadata."""
    return BLOB + digest


def ref_key(digest: bytes, owner: bytes) -> bytes:
    """The index key of the reference ``owner`` holds on a blob."""
    return BLOB_REF + digest + owner


def pending_key(data_id: bytes) -> bytes:
    """The index key marking the chunks of ``data_id`` as owned by no blob."""
    return BLOB_PENDING + data_id


CHUNK_FILE_PENDING = b"cfp\x00"  # + blob-space key -> b"" (a chunk file no committed record
#   names: being written or being removed; see RocksStore.write. The next open removes it.)


def chunk_file_pending_key(key: bytes) -> bytes:
    """The index key marking the file of blob-space ``key`` as not yet committed."""
    return CHUNK_FILE_PENDING + key


CHUNK_FILE_REPLACING = b"cfr\x00"  # + blob-space key -> b"" (the key's file is being
#   replaced: ``<file>.new`` may exist uncommitted. The next open removes that one.)


def chunk_file_replacing_key(key: bytes) -> bytes:
    """The index key marking the file of blob-space ``key`` as being replaced."""
    return CHUNK_FILE_REPLACING + key


DEMO = b"demo\x00"  # + name -> a record of the `satchel demo` command
WAL_PRIMER = b"walp\x00"  # written and deleted at open in machine durability (never kept)
# + session id (text) -> the epoch (8, big-endian) of the lease its writer holds: every write
# of a session's owner in a cluster expects it unchanged (storage._leases).
FENCE = b"fen\x00"
REMINDER = b"rmd\x00"  # + kind \x00 actor id \x00 name -> runtime.Reminder

# Sessions (satchel.actors): every key of one session carries its 16-byte id right after
# the tag, so deleting a session is a few range deletes.
SESSION = b"ses\x00"  # + id(16) -> SessionRecord
SESSION_COUNTERS = b"sct\x00"  # + id(16) -> packed counters (seq, updated, operations, ...)
SESSION_VAR = b"svar\x00"  # + id(16) + key -> encoded value
JOURNAL = b"jnl\x00"  # + id(16) + seq(8) -> journal entry
SESSION_INDEX = b"six\x00"  # + index letter + index layout -> b"" (secondary indexes)
DEADLINE = b"sdl\x00"  # + due(8) + id(16) + reason(1) -> b"" (policy and retention times)
# + holder id(16) + id(16) -> operations(8) a deleted session had counted against the budget
# of the holder (satchel.actors.sessions._budgets): they stay counted.
SESSION_SPENT = b"ssp\x00"
# A session's event log (satchel.actors.sessions._event_log):
# + id(16) + position(8) -> [at µs, data]; and + id(16) -> the last position given
# (positions are never reused, even after a pop).
SESSION_EVENT = b"sev\x00"
SESSION_EVENT_LAST = b"sel\x00"

# Artifacts (satchel.actors): versions live under their session, so deleting a session is a
# range delete; ids point back to them.
ARTIFACT = b"art\x00"  # + session id(16) + name + NUL + version(4) -> ArtifactRecord
ARTIFACT_ID = b"aid\x00"  # + artifact id(16) -> the ARTIFACT key suffix it names
ARTIFACT_NAME = b"anm\x00"  # + session id(16) + name -> last version(4) + first created(8)
# + session id(16) + name -> last version(4) of a name whose every version was deleted, so
# that a version number is never given twice in a session's life.
ARTIFACT_RETIRED = b"arr\x00"
ARTIFACT_INDEX = b"aix\x00"  # + index letter + index layout -> (query indexes)
# Grants: forward by the artifact, and reverse by the session granted to.
ARTIFACT_GRANT = b"agr\x00"  # + owner(16) + name + NUL + scope(16) + target(16) -> Grant
ARTIFACT_GRANTED = b"agt\x00"  # + target(16) + owner(16) + name + NUL + scope(16) -> b""
ARTIFACT_AUDIT = b"aud\x00"  # + owner(16) + name + NUL + seq(8) -> AuditEntry

# Host scripts' runtime-wide Lua ``State`` (satchel.actors).
HOST_STATE = b"hst\x00"  # + key -> encoded value


def pending_since(offset_s: float = 0.0) -> bytes:
    """A pending mark's value: the time it was made (µs, big-endian, comparable as bytes),
    ``offset_s`` seconds from now."""
    return (time.time_ns() // 1000 + int(offset_s * 1_000_000)).to_bytes(8, "big")
