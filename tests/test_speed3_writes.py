"""The store and create paths' shortcuts give what the general code gives: MIME types guessed
by extension, records unstructured by hand (the same bytes as cattrs'), a one-chunk blob
encoded directly, chunks written first in a commit, and no retired-key tombstone for a name
that never had one."""

from __future__ import annotations

import mimetypes
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from satchel import Runtime
from satchel.actors._model import SessionConfig, SessionStatus
from satchel.actors.artifacts import _artifact_layout as artifact_layout
from satchel.actors.artifacts._artifact_model import ARTIFACT_CODEC, ArtifactRecord
from satchel.actors.sessions import _session_layout as layout
from satchel.storage import BLOBS, Batch, BlobLimits, BlobStore, LocalRecords, open_store
from satchel.storage._blobformat import chunk_key, digest_of, encode_chunk
from satchel.storage._codec import converter
from satchel.storage._kv import KeyValueStore
from satchel.storage._memory import MemoryStore


@pytest.mark.parametrize(
    "name",
    [
        "report-1.json",
        "a.JSON",
        "a.tar.gz",
        "a.gz",
        "a.tgz",
        "a.svgz",
        "a.json.bz2",
        "notes",
        "x:y.json",
        "data:text/html,a.json",
        "a..txt",
        "a.",
        "a.unknownext",
        "a.PNG",
        "résumé.pdf",
    ],
)
def test_mime_types_are_the_names_guess(name: str) -> None:
    expected = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    assert artifact_layout._guess_mime(name) == expected


_TEXT = st.text(max_size=8)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)


def _cattrs_bytes(codec: Any, record: Any) -> bytes:
    return codec._header + msgpack.packb(converter.unstructure(record), use_bin_type=True)


@given(
    description=st.none() | _TEXT,
    tags=st.lists(_TEXT, max_size=3).map(tuple),
    custom=st.dictionaries(_TEXT, _JSON, max_size=3),
    compressed=st.booleans(),
)
def test_artifact_records_encode_as_cattrs_encodes_them(
    description: str | None, tags: tuple[str, ...], custom: dict[str, Any], compressed: bool
) -> None:
    record = ArtifactRecord(
        "01J00000000000000000000000", "s", "a.json", 2, "report", "application/json",
        description, tags, custom, "ab" * 32, 10, 9, compressed, 1_700_000_000_000_000, "s",
    )  # fmt: skip
    assert ARTIFACT_CODEC.encode(record) == _cattrs_bytes(ARTIFACT_CODEC, record)
    assert ARTIFACT_CODEC.decode(ARTIFACT_CODEC.encode(record)) == record


@given(
    tags=st.lists(_TEXT, max_size=3).map(tuple),
    metadata=st.dictionaries(_TEXT, _JSON, max_size=3),
    optional=st.none() | _TEXT,
    deadlines=st.lists(
        st.tuples(st.integers(0, 2**63), st.sampled_from([b"d", b"i"])), max_size=2
    ).map(tuple),
    max_bytes=st.none() | st.integers(1, 2**40),
    status=st.sampled_from(list(SessionStatus)),
)
def test_session_records_encode_as_cattrs_encodes_them(
    tags: tuple[str, ...],
    metadata: dict[str, Any],
    optional: str | None,
    deadlines: tuple[tuple[int, bytes], ...],
    max_bytes: int | None,
    status: SessionStatus,
) -> None:
    for config in (SessionConfig(), SessionConfig(max_bytes=max_bytes), SessionConfig()):
        record = layout.SessionRecord(
            "id", "name", "description", tags, metadata, optional, config, status, 5,
            None if optional is None else 7, optional, deadlines, optional, optional,
            optional, optional,
        )  # fmt: skip
        encoded = layout.RECORD_CODEC.encode(record)
        assert encoded == _cattrs_bytes(layout.RECORD_CODEC, record)
        assert layout.RECORD_CODEC.decode(encoded) == record


@pytest.mark.parametrize(
    "content", [b"", b"x", b"ab" * 2048, bytes(range(256)) * 16, b"z" * 3000], ids=repr
)
def test_one_chunk_blobs_encode_as_the_general_loop_does(content: bytes) -> None:
    store = BlobStore(LocalRecords(_memory_kv()), BlobLimits(chunk_size=4096))
    digest = digest_of(content)
    layout_, chunks = store._encode_whole(content, digest)
    stored, compressed = encode_chunk(content, store.limits)
    assert chunks == (stored,)
    assert layout_.size == len(content) and layout_.chunk_count == 1
    assert layout_.stored_size == len(stored) and layout_.chunk_size == 4096
    assert layout_.lz4_map == (b"\x01" if compressed else b"")
    assert layout_.chunk_digests == b"" and layout_.refcount == 0
    assert layout_.stored_digests == (digest_of(stored) if compressed else digest)
    assert len(layout_.data_id) == 16


def _memory_kv() -> KeyValueStore:
    return MemoryStore()


async def test_a_commit_writes_chunks_and_records_together(tmp_path: Any) -> None:
    with open_store(tmp_path / "db") as store:
        blobs = store.blobs
        staged = await blobs.put_inline(b"hello" * 100)
        batch = Batch()
        batch.put(b"owner", b"record")
        await blobs.commit(batch, add=[(staged, b"owner")])
        assert store.kv.get(b"owner") == b"record"
        assert await blobs.read(staged.ref) == b"hello" * 100
        assert await blobs.references(staged.ref) == [b"owner"]
        meta = await blobs.load_meta(staged.ref.digest)
        assert meta is not None and meta.refcount == 1
        assert store.kv.get(chunk_key(meta.data_id, 0), BLOBS) is not None


async def test_a_new_name_writes_no_retired_tombstone_and_a_retired_one_goes(
    rt: Runtime,
) -> None:
    sid = await rt.sessions.create()
    kv = rt.store.kv
    sid_bytes = layout.bytes_of(sid)
    written: list[Batch] = []
    real_write = kv.write

    def spy(batch: Batch, **kw: Any) -> None:
        written.append(batch)
        real_write(batch, **kw)

    kv.write = spy  # type: ignore[method-assign]
    try:
        await rt.artifacts.store(sid, "a.txt", b"one", type="report")
        retired = artifact_layout.retired_key(sid_bytes, b"a.txt")
        assert all(key != retired for batch in written for _, _, key, _ in batch.ops)
        await rt.artifacts.store(sid, "a.txt", b"two", type="report")
        await rt.artifacts.delete(sid, "a.txt")
        assert kv.get(retired) is not None
        ref = await rt.artifacts.store(sid, "a.txt", b"three", type="report")
        assert ref.version == 3
        assert kv.get(retired) is None
    finally:
        del kv.write


@pytest.mark.parametrize("name", ["a.json", "notes", "a.tar.gz"])
def test_no_metadata_splits_as_an_empty_map_does(name: str) -> None:
    assert artifact_layout.split_metadata(name, None) == artifact_layout.split_metadata(name, {})
