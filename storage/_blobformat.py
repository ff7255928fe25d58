"""How blobs are named and encoded at rest, apart from the index that says which exist.

A blob's *name* is its BLAKE3 digest. Its bytes are cut into chunks of ``chunk_size``; each chunk
is stored LZ4-frame-compressed when that pays (at least ``compress_min`` bytes and a saving of at
least ``min_gain``), raw otherwise, under the key ``data_id + chunk index``. ``data_id`` is a
random id, not the digest: a streamed upload writes chunks before its digest is known, and two
uploads of the same bytes never write over each other.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import attrs
import blake3
import lz4.frame

from satchel.runtime._errors import IntegrityError, ValidationError

DIGEST_SIZE = 32
DATA_ID_SIZE = 16
_CHUNK_INDEX = struct.Struct(">I")
# BLAKE3's own threads pay above one chunk. At 1 MiB they lost: the data is next compressed
# (on store) or was just decompressed (on read) on this core, and a second core first has to
# pull its half over (load of a 1 MiB artifact: hash 230-290 µs threaded, ~180 µs not).
_THREADED_HASH_FROM = 2 << 20
_SAMPLE = 16 << 10
_SAMPLES = 4
# How a chunk is framed, measured on 1 MiB (one decoder call reads either frame). Content whose
# every part compresses: 64 KiB blocks, each on its own (JSON compressed in 351 µs instead of
# 596 µs linked; one 1 MiB block made python-lz4 read through fresh scratch memory in a
# process whose allocator is not tuned: ~480 page faults, 1.55 instead of 0.88 ms a read).
# Content with an incompressible part: one block, as LZ4's frame decoder copies each block it
# stored raw through scratch memory (half random, half text decoded in 106 µs instead of 315).
_UNIFORM_FRAME: dict[str, Any] = {"block_size": lz4.frame.BLOCKSIZE_MAX64KB, "block_linked": False}
_MIXED_FRAME: dict[str, Any] = {"block_size": lz4.frame.BLOCKSIZE_MAX4MB, "block_linked": False}
# A sample packed to more than this share of its size holds an incompressible part.
_RAW_SHARE = 0.9

Buffer = bytes | bytearray | memoryview


#: How to raise ``BlobLimits.max_size``, for the errors that refuse content over it.
MAX_SIZE_HINT = (
    "the blob store's max_size: raise it with open_runtime(limits=BlobLimits(max_size=N)), "
    "or --max-artifact-bytes N on the command line and satchel serve"
)


@attrs.frozen
class BlobLimits:
    """Every size rule of the blob store in one record."""

    chunk_size: int = 1 << 20
    compress_min: int = 4096
    min_gain: float = 0.10
    max_size: int = 100 << 20

    def __attrs_post_init__(self) -> None:
        if self.chunk_size < 4096 or self.chunk_size > (64 << 20):
            raise ValidationError(f"chunk_size must be 4 KiB..64 MiB, not {self.chunk_size}")
        if not 0.0 <= self.min_gain < 1.0:
            raise ValidationError(f"min_gain must be in [0, 1), not {self.min_gain}")
        if self.max_size < 0:
            raise ValidationError(f"max_size must not be negative, not {self.max_size}")


def new_hasher(size_hint: int = 0) -> blake3.blake3:
    """A BLAKE3 hasher, multi-threaded when the input is large enough for it to pay."""
    threads = blake3.blake3.AUTO if size_hint >= _THREADED_HASH_FROM else 1
    return blake3.blake3(max_threads=threads)


def digest_of(data: Buffer) -> bytes:
    """The BLAKE3 digest of ``data``."""
    if len(data) < _THREADED_HASH_FROM:
        return blake3.blake3(data).digest()  # one thread; hashed as it is made (0.3 µs less)
    hasher = new_hasher(len(data))
    hasher.update(data)
    return hasher.digest()


def new_data_id() -> bytes:
    """A random id for the chunks of one upload (unguessable, never reused)."""
    return os.urandom(DATA_ID_SIZE)


def chunk_key(data_id: bytes, index: int) -> bytes:
    """The key of chunk ``index`` of the upload ``data_id``."""
    return data_id + _CHUNK_INDEX.pack(index)


def split_chunk_key(key: bytes) -> tuple[bytes, int]:
    """The ``(data_id, index)`` a chunk key was made from."""
    return key[:DATA_ID_SIZE], _CHUNK_INDEX.unpack_from(key, DATA_ID_SIZE)[0]


def _sample_shares(chunk: Buffer) -> list[float]:
    """The packed share of four 16 KiB samples spread over a large chunk ([] for a small one).

    Compressing 1 MiB of random bytes only to throw the result away cost 0.2-0.9 ms (mostly
    page faults on the output buffer); the samples cost a few microseconds. They are spread
    from start to end because agent output often mixes parts (a random or already compressed
    head, then text): judged by its head alone, such a chunk was stored raw.
    """
    total = len(chunk)
    if total <= 2 * _SAMPLES * _SAMPLE:
        return []
    view = memoryview(chunk)
    stride = (total - _SAMPLE) // (_SAMPLES - 1)
    return [
        len(lz4.frame.compress(view[start : start + _SAMPLE])) / _SAMPLE
        for start in range(0, stride * _SAMPLES, stride)
    ]


def encode_chunk(chunk: Buffer, limits: BlobLimits) -> tuple[bytes, bool]:
    """The bytes to store for ``chunk`` and whether they are compressed.

    A large chunk whose samples do not compress is stored raw without a full attempt.
    """
    if len(chunk) >= limits.compress_min:
        shares = _sample_shares(chunk)
        if not shares or sum(shares) / len(shares) <= 1.0 - limits.min_gain:
            mixed = bool(shares) and max(shares) > _RAW_SHARE
            packed: bytes = lz4.frame.compress(chunk, **(_MIXED_FRAME if mixed else _UNIFORM_FRAME))
            if len(packed) <= len(chunk) * (1.0 - limits.min_gain):
                return packed, True
    return chunk if type(chunk) is bytes else bytes(chunk), False


def decode_chunk(stored: bytes, compressed: bool, size: int, blob: str) -> bytes:
    """The original bytes of a stored chunk of ``size`` bytes; ``IntegrityError`` if damaged."""
    if compressed:
        try:
            raw: bytes = lz4.frame.decompress(stored)
        except RuntimeError as error:
            raise IntegrityError(f"blob {blob}: a chunk fails to decompress ({error})") from None
    else:
        raw = stored
    if len(raw) != size:
        raise IntegrityError(f"blob {blob}: a chunk holds {len(raw)} bytes, expected {size}")
    return raw


def chunk_sizes(size: int, chunk_size: int) -> list[int]:
    """The byte count of each chunk of a blob of ``size`` bytes (an empty blob has one)."""
    if size == 0:
        return [0]
    full, rest = divmod(size, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def set_bit(bitmap: bytearray, index: int) -> None:
    """Mark chunk ``index`` in a chunk bitmap, growing it as needed."""
    byte = index >> 3
    if byte >= len(bitmap):
        bitmap.extend(bytes(byte + 1 - len(bitmap)))
    bitmap[byte] |= 1 << (index & 7)


def has_bit(bitmap: bytes, index: int) -> bool:
    """Whether chunk ``index`` is marked in a chunk bitmap."""
    byte = index >> 3
    return byte < len(bitmap) and bool(bitmap[byte] & (1 << (index & 7)))
