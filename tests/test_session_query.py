"""Session queries: every filter, order and page agrees with a brute-force model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satchel import InvalidArgumentError, Runtime, SessionInfo, ValidationError, open_runtime
from satchel.actors.sessions import _query

from .conftest import BACKENDS

TAGS = ["red", "green", "blue"]
NAMES = ["Alpha", "beta", "Gamma", "delta", "alpha"]


async def populate(rt: Runtime) -> list[SessionInfo]:
    """Thirty sessions with spread creation times, statuses, tags, parents and names."""
    ids: list[str] = []
    for i in range(30):
        parent = ids[i % 3] if i >= 3 and i % 4 == 0 else None
        sid = await rt.sessions.create(
            name=f"{NAMES[i % 5]}-{i}",
            description="needle inside" if i % 7 == 0 else "hay",
            tags=[TAGS[j] for j in range(3) if (i >> j) & 1],
            parent_id=parent,
        )
        ids.append(sid)
        await anyio.sleep(1)
    for i, sid in enumerate(ids):
        if i % 5 == 1:
            await rt.sessions.suspend(sid)
        elif i % 5 == 2:
            await rt.sessions.complete(sid)
        elif i % 5 == 3:
            await rt.sessions.fail(sid)
        elif i % 10 == 4:
            await rt.sessions.complete(sid)
            await rt.sessions.archive(sid)
        await anyio.sleep(1)
    # Touch some sessions so the update order differs from the creation order.
    for sid in ids[::-4]:
        info = await rt.sessions.get(sid)
        if info.status == "active":
            await rt.sessions.set_state(sid, "touch", True)
            await anyio.sleep(1)
    return await rt.sessions.list()


def model(everything: list[SessionInfo], q: dict[str, Any]) -> list[str]:
    """What the query should return, by brute force."""
    found = [
        s
        for s in everything
        if (q.get("status") is None or s.status == q["status"])
        and set(q.get("tags") or ()) <= set(s.tags)
        and (q.get("parent_session_id") is None or s.parent_session_id == q["parent_session_id"])
        and (
            q.get("search") is None
            or q["search"].casefold() in s.name.casefold()
            or q["search"].casefold() in s.description.casefold()
        )
        and (q.get("created_after") is None or s.created_at.timestamp() > q["created_after"])
        and (q.get("created_before") is None or s.created_at.timestamp() < q["created_before"])
    ]
    order = q.get("order_by", "created_at")
    if order == "name":
        found.sort(key=lambda s: (s.name.casefold(), bytes.fromhex(s.id.replace("-", ""))))
    elif order == "updated_at":
        found.sort(key=lambda s: (s.updated_at, bytes.fromhex(s.id.replace("-", ""))))
    else:
        found.sort(key=lambda s: (s.created_at, bytes.fromhex(s.id.replace("-", ""))))
    if q.get("descending"):
        found.reverse()
    offset = q.get("offset", 0)
    limit = q.get("limit")
    return [s.id for s in found[offset : None if limit is None else offset + limit]]


def queries(everything: list[SessionInfo]) -> st.SearchStrategy[dict[str, Any]]:
    """Random combinations of every filter."""
    start = min(s.created_at.timestamp() for s in everything)
    parents = sorted({s.parent_session_id for s in everything if s.parent_session_id})
    times = st.none() | st.floats(min_value=start - 2, max_value=start + 32).map(round)
    return st.fixed_dictionaries(
        {},
        optional={
            "status": st.none()
            | st.sampled_from(["active", "suspended", "completed", "failed", "archived"]),
            "tags": st.lists(st.sampled_from(TAGS), max_size=2, unique=True),
            "parent_session_id": st.none() | st.sampled_from(parents),
            "search": st.none() | st.sampled_from(["alpha", "NEEDLE", "a-1", "zzz"]),
            "created_after": times,
            "created_before": times,
            "order_by": st.sampled_from(["created_at", "updated_at", "name"]),
            "descending": st.booleans(),
            "offset": st.integers(0, 12),
            "limit": st.none() | st.integers(0, 12),
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
    """Random queries return what brute force returns, on both query plans."""
    monkeypatch.setattr(_query, "SMALL", small)
    monkeypatch.setattr(_query, "PROBE", probe)
    async with open_runtime(tmp_path, store=backend) as rt:  # type: ignore[arg-type]
        everything = await populate(rt)
        assert len(everything) == 30
        examples: list[dict[str, Any]] = []

        @settings(max_examples=150, deadline=None, database=None)
        @given(q=queries(everything))
        def collect(q: dict[str, Any]) -> None:
            examples.append(q)

        collect()
        for q in examples:
            got = [s.id for s in await rt.sessions.list(**q)]
            assert got == model(everything, q), q
        assert (await rt.sessions.check()).clean


async def test_each_filter_alone(rt: Runtime, autojump_clock: None) -> None:
    """Each filter on its own selects exactly the sessions it names."""
    everything = await populate(rt)
    for q in (
        {"status": "suspended"},
        {"tags": ["red", "blue"]},
        {"parent_session_id": everything[0].id},
        {"search": "needle"},
        {"created_after": everything[10].created_at},
        {"created_before": everything[5].created_at.isoformat()},
        {"order_by": "name", "limit": 5},
        {"order_by": "updated_at", "descending": True, "offset": 3, "limit": 4},
    ):
        got = [s.id for s in await rt.sessions.list(**q)]
        plain = {k: (v.timestamp() if hasattr(v, "timestamp") else v) for k, v in q.items()}
        if isinstance(plain.get("created_before"), str):
            plain["created_before"] = everything[5].created_at.timestamp()
        assert got == model(everything, plain), q
        assert got, q


async def test_bad_queries_are_refused(rt: Runtime) -> None:
    """Unknown fields, statuses and orders, and negative pages, get typed errors."""
    for bad, error in (
        ({"colour": "red"}, InvalidArgumentError),
        ({"tags": "red"}, InvalidArgumentError),
        ({"descending": "yes"}, InvalidArgumentError),
        ({"status": "sleeping"}, ValidationError),
        ({"order_by": "size"}, ValidationError),
        ({"limit": -1}, ValidationError),
        ({"offset": 1.5}, InvalidArgumentError),
        ({"limit": "5"}, InvalidArgumentError),
        ({"status": 5}, InvalidArgumentError),
        ({"created_before": 10**400}, ValidationError),
        ({"created_after": "yesterday"}, ValidationError),
        ({"parent_session_id": ""}, InvalidArgumentError),
        ({"parent_session_id": 7}, InvalidArgumentError),
        ({"app": ""}, ValidationError),
        ({"app": "a", "user": "u\x00"}, ValidationError),
        ({"user": "u"}, InvalidArgumentError),
    ):
        with pytest.raises(error):
            await rt.sessions.list(**bad)
    # Far-off but finite times are valid bounds: nothing is created after them.
    await rt.sessions.create()
    assert await rt.sessions.list(created_after=1e300) == []
    assert len(await rt.sessions.list(created_before=1e300)) == 1


@pytest.mark.parametrize("small", [512, 2])
async def test_exact_update_order_within_one_second(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch, small: int
) -> None:
    """Sessions updated within the same second still come back in exact update order."""
    monkeypatch.setattr(_query, "SMALL", small)
    ids = [await rt.sessions.create(name=f"s{i}", tags=["t"]) for i in range(8)]
    for sid in (ids[3], ids[0], ids[6], ids[1], ids[3]):
        await rt.sessions.set_state(sid, "k", 1)
    everything = await rt.sessions.list()
    for q in (
        {"order_by": "updated_at"},
        {"order_by": "updated_at", "descending": True},
        {"order_by": "updated_at", "tags": ["t"], "offset": 2, "limit": 3},
    ):
        assert [s.id for s in await rt.sessions.list(**q)] == model(everything, q), q
    newest = model(everything, {"order_by": "updated_at", "descending": True})[:3]
    assert await rt.sessions.restore_recent(3) == newest
    assert newest[0] == ids[3]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_queries_among_some_sessions_see_no_other(
    tmp_path: Path, autojump_clock: None, backend: str
) -> None:
    """A query among some sessions (a session script's own) answers as if the others did
    not exist: filters, order, page and counts alike."""
    async with open_runtime(tmp_path, store=backend) as rt:  # type: ignore[arg-type]
        everything = await populate(rt)
        examples: list[tuple[list[str], dict[str, Any]]] = []
        ids = [s.id for s in everything]

        @settings(max_examples=150, deadline=None, database=None)
        @given(own=st.lists(st.sampled_from(ids), max_size=12, unique=True), q=queries(everything))
        def collect(own: list[str], q: dict[str, Any]) -> None:
            examples.append((own, q))

        collect()
        for own, q in examples:
            got = [s.id for s in await rt.sessions.list_among(own, **q)]
            assert got == model([s for s in everything if s.id in own], q), (own, q)
