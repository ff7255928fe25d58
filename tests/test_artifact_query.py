"""Artifact queries: every filter, order and page agrees with a brute-force model, for the
host and for a session that sees only its own artifacts and those granted to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satchel import (
    ArtifactInfo,
    InvalidArgumentError,
    Runtime,
    ValidationError,
    open_runtime,
)
from satchel.actors.artifacts import _artifact_query

from .conftest import BACKENDS

TAGS = ["red", "green", "blue"]
NAMES = ["Report.md", "report.MD", "data.json", "Image.png", "notes.txt"]
TYPES = ["agent_output", "tool_result", "custom_kind"]
TEAMS = ["a", "b"]


async def populate(rt: Runtime) -> tuple[list[str], list[ArtifactInfo]]:
    """Four sessions, forty stores with spread times, types, tags, custom metadata, sizes
    and repeated names; then one version and one whole name deleted."""
    sessions = [await rt.sessions.create(name=f"s{i}") for i in range(4)]
    for i in range(40):
        meta: dict[str, Any] = {
            "tags": [TAGS[j] for j in range(3) if (i >> j) & 1],
            "team": TEAMS[i % 2],
            "n": [1, 1.0, True, 2][i % 4],
        }
        if i % 5 == 0:
            meta["nested"] = {"x": [1, 2], "y": "z"}
        if i % 6 == 0:
            meta["label"] = "red"  # custom metadata that looks like a tag, but is not one
        content = bytes([i]) * ((i * 37) % 50)
        await rt.artifacts.store(
            sessions[i % 4], NAMES[(i // 4) % 5], content, type=TYPES[i % 3], metadata=meta
        )
        await anyio.sleep(1 if i % 3 else 0)  # some stores share a timestamp
    first = (await rt.artifacts.versions(sessions[0], NAMES[0]))[0]
    await rt.artifacts.delete(sessions[0], first.id)
    await rt.artifacts.delete(sessions[1], NAMES[4])
    everything = []
    for sid in sessions:
        for latest in await rt.artifacts.list(sid):
            everything.extend(await rt.artifacts.versions(sid, latest.name))
    return sessions, everything


def _aid(info: ArtifactInfo) -> bytes:
    return bytes.fromhex(info.id[4:])


def model(
    everything: list[ArtifactInfo], q: dict[str, Any], readable: set[str] | None
) -> list[str]:
    """What the query should return, by brute force."""
    latest: dict[tuple[str, str], int] = {}
    for a in everything:
        key = (a.session_id, a.name)
        latest[key] = max(latest.get(key, 0), a.version)
    meta = q.get("metadata") or {}
    found = [
        a
        for a in everything
        if (readable is None or a.id in readable)
        and (q.get("all_versions") or latest[(a.session_id, a.name)] == a.version)
        and (q.get("session_id") is None or a.session_id == q["session_id"])
        and (q.get("type") is None or a.type == q["type"])
        and (q.get("name_pattern") is None or q["name_pattern"].casefold() in a.name.casefold())
        and set(q.get("tags") or ()) <= set(a.tags)
        and all(k in a.custom and _same(a.custom[k], v) for k, v in meta.items())
        and (q.get("created_after") is None or a.created_at.timestamp() > q["created_after"])
        and (q.get("created_before") is None or a.created_at.timestamp() < q["created_before"])
        and (q.get("min_size") is None or a.size >= q["min_size"])
        and (q.get("max_size") is None or a.size <= q["max_size"])
    ]
    order = q.get("order_by", "created_at")
    if order == "size":
        found.sort(key=lambda a: (a.size, a.created_at, _aid(a)))
    elif order == "name":
        found.sort(key=lambda a: (a.name.casefold(), a.created_at, _aid(a)))
    else:
        found.sort(key=lambda a: (a.created_at, _aid(a)))
    if q.get("descending"):
        found.reverse()
    offset = q.get("offset", 0)
    limit = q.get("limit")
    return [a.id for a in found[offset : None if limit is None else offset + limit]]


def _same(stored: Any, wanted: Any) -> bool:
    """JSON equality: 1 == 1.0, but a boolean is not a number."""
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return type(stored) is type(wanted) and stored == wanted
    return bool(stored == wanted)


def queries(sessions: list[str], start: float) -> st.SearchStrategy[dict[str, Any]]:
    """Random combinations of every filter."""
    times = st.none() | st.floats(min_value=start - 2, max_value=start + 30).map(round)
    sizes = st.none() | st.integers(0, 50)
    return st.fixed_dictionaries(
        {},
        optional={
            "session_id": st.none() | st.sampled_from(sessions),
            "type": st.none() | st.sampled_from(TYPES),
            "name_pattern": st.none() | st.sampled_from(["REPORT", "json", ".", "zzz"]),
            "tags": st.lists(st.sampled_from(TAGS), max_size=2, unique=True),
            "metadata": st.none()
            | st.dictionaries(
                st.sampled_from(["team", "n", "nested", "label"]),
                st.sampled_from(["a", "b", 1, 1.0, True, 2, "red", {"y": "z", "x": [1, 2]}]),
                max_size=2,
            ),
            "created_after": times,
            "created_before": times,
            "min_size": sizes,
            "max_size": sizes,
            "all_versions": st.booleans(),
            "order_by": st.sampled_from(["created_at", "size", "name"]),
            "descending": st.booleans(),
            "offset": st.integers(0, 10),
            "limit": st.none() | st.integers(0, 10),
        },
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("small", "probe"), [(512, 256), (2, 2)])
async def test_queries_match_the_model(
    tmp_path: Path,
    autojump_clock: None,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
    small: int,
    probe: int,
) -> None:
    """Random queries return what brute force returns, on both query plans, for the host
    and for a session with grants."""
    monkeypatch.setattr(_artifact_query, "SMALL", small)
    monkeypatch.setattr(_artifact_query, "PROBE", probe)
    async with open_runtime(tmp_path, store=backend) as rt:  # type: ignore[arg-type]
        sessions, everything = await populate(rt)
        assert len(everything) == 37
        caller = sessions[3]
        # A whole name of one session, and one old version of another's name.
        await rt.artifacts.share(sessions[1], NAMES[1], caller, "read")
        old = (await rt.artifacts.versions(sessions[2], NAMES[2]))[0]
        await rt.artifacts.share(sessions[2], old.id, caller, "write")
        readable = {
            a.id
            for a in everything
            if a.session_id == caller
            or (a.session_id == sessions[1] and a.name == NAMES[1])
            or a.id == old.id
        }
        start = min(a.created_at.timestamp() for a in everything)
        examples: list[dict[str, Any]] = []

        @settings(max_examples=150, deadline=None, database=None)
        @given(q=queries(sessions, start))
        def collect(q: dict[str, Any]) -> None:
            examples.append(q)

        collect()
        as_caller = rt.session(caller).artifacts
        nonempty = [0, 0]
        for q in examples:
            got = [a.id for a in await rt.artifacts.query(**q)]
            assert got == model(everything, q, None), q
            mine = [a.id for a in await as_caller.query(**q)]
            assert mine == model(everything, q, readable), q
            nonempty[0] += bool(got)
            nonempty[1] += bool(mine)
        # The examples must exercise matches, not only empty answers.
        assert min(nonempty) > len(examples) // 5, nonempty
        assert (await rt.sessions.check()).clean


async def test_tags_match_tags_and_metadata_matches_custom(
    rt: Runtime, autojump_clock: None
) -> None:
    """``tags`` matches the artifact's tags only; a custom key named like a tag is matched
    by ``metadata``; custom values compare as JSON (``1 == 1.0``, ``true`` apart)."""
    sid = await rt.sessions.create()
    tagged = await rt.artifacts.store(
        sid, "a", b"1", type="tool_result", metadata={"tags": ["red"]}
    )
    custom = await rt.artifacts.store(
        sid, "b", b"2", type="tool_result", metadata={"tag": "red", "n": 1}
    )
    flag = await rt.artifacts.store(sid, "c", b"3", type="tool_result", metadata={"n": True})
    assert [a.id for a in await rt.artifacts.query(tags=["red"])] == [tagged.id]
    assert [a.id for a in await rt.artifacts.query(metadata={"tag": "red"})] == [custom.id]
    assert [a.id for a in await rt.artifacts.query(metadata={"n": 1.0})] == [custom.id]
    assert [a.id for a in await rt.artifacts.query(metadata={"n": True})] == [flag.id]
    assert await rt.artifacts.query(metadata={"tags": ["red"]}) == []


async def test_versions_and_deletes_move_the_latest(rt: Runtime) -> None:
    """Only the newest version of a name is "latest"; deleting it makes the one before it
    latest again, and deleting the name removes it from every query."""
    sid = await rt.sessions.create()
    v1 = await rt.artifacts.store(sid, "x", b"one", type="tool_result", metadata=None)
    v2 = await rt.artifacts.store(sid, "x", b"two", type="tool_result", metadata=None)
    assert [a.id for a in await rt.artifacts.query(session_id=sid)] == [v2.id]
    every = await rt.artifacts.query(session_id=sid, all_versions=True)
    assert [a.id for a in every] == [v1.id, v2.id]
    await rt.artifacts.delete(sid, v2.id)
    assert [a.id for a in await rt.artifacts.query(session_id=sid)] == [v1.id]
    await rt.artifacts.delete(sid, "x")
    assert await rt.artifacts.query(all_versions=True) == []
    assert (await rt.sessions.check()).clean


async def test_query_indexes_survive_reopen_and_session_delete(tmp_path: Path) -> None:
    """Queries read persisted indexes after a restart, and a deleted session's artifacts
    leave every index."""
    async with open_runtime(tmp_path) as rt:
        keep = await rt.sessions.create()
        gone = await rt.sessions.create()
        kept = await rt.artifacts.store(
            keep, "k", b"k", type="agent_output", metadata={"tags": ["t"]}
        )
        await rt.artifacts.store(gone, "g", b"g", type="agent_output", metadata={"tags": ["t"]})
    async with open_runtime(tmp_path) as rt:
        assert len(await rt.artifacts.query(tags=["t"])) == 2
        await rt.sessions.delete(gone)
        assert [a.id for a in await rt.artifacts.query(tags=["t"])] == [kept.id]
        assert [a.id for a in await rt.artifacts.query(order_by="size")] == [kept.id]
        assert [a.id for a in await rt.artifacts.query(order_by="name")] == [kept.id]
        assert (await rt.sessions.check()).clean


async def test_check_rebuilds_query_indexes(tmp_path: Path) -> None:
    """``check(fix=True)`` restores a lost query index entry and drops a stray one."""
    async with open_runtime(tmp_path) as rt:
        sid = await rt.sessions.create()
        ref = await rt.artifacts.store(
            sid, "k", b"k", type="agent_output", metadata={"tags": ["t"]}
        )
        kv = rt.store.kv
        index_keys = [k for k, _ in kv.scan(b"aix\x00", b"aix\x01")]
        assert len(index_keys) == 7  # all, latest, session, type, size, name, tag
        tag_key = next(k for k in index_keys if k.startswith(b"aix\x00g"))
        batch = __import__("satchel.storage", fromlist=["Batch"]).Batch()
        batch.delete(tag_key)
        batch.put(b"aix\x00g" + bytes(16) + tag_key[-24:], b"")
        kv.write(batch)
        report = await rt.sessions.check()
        assert len(report.problems) == 2
        assert (await rt.sessions.check(fix=True)).fixed
        assert (await rt.sessions.check()).clean
        assert [a.id for a in await rt.artifacts.query(tags=["t"])] == [ref.id]


async def test_bad_queries_are_refused(rt: Runtime) -> None:
    """Unknown fields, orders and types, and bad sizes and pages, get typed errors."""
    for bad, error in (
        ({"colour": "red"}, InvalidArgumentError),
        ({"tags": "red"}, InvalidArgumentError),
        ({"metadata": ["team"]}, InvalidArgumentError),
        ({"metadata": {"x": float("nan")}}, ValidationError),
        ({"order_by": "updated_at"}, ValidationError),
        ({"min_size": -1}, InvalidArgumentError),
        ({"max_size": "5"}, InvalidArgumentError),
        ({"all_versions": 1}, InvalidArgumentError),
        ({"limit": -1}, ValidationError),
        ({"type": ""}, InvalidArgumentError),
        ({"session_id": ""}, InvalidArgumentError),
        ({"created_after": "yesterday"}, ValidationError),
    ):
        with pytest.raises(error):
            await rt.artifacts.query(**bad)
