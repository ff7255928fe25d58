"""Time travel, replay and fork: rebuilt from the journal, matching the original."""

from __future__ import annotations

from typing import Any

import pytest

from satchel import (
    HookContext,
    HookResult,
    ReplayProgress,
    Runtime,
    SessionNotFoundError,
    ValidationError,
)
from satchel.actors import _validate as validate


async def snapshot(rt: Runtime, sid: str) -> tuple[dict[str, Any], list[tuple[str, int, str]]]:
    """The session's variables and every live artifact version, read the ordinary way."""
    variables = {k: await rt.sessions.get_state(sid, k) for k in await rt.sessions.list_state(sid)}
    versions = []
    for latest in await rt.artifacts.list(sid):
        for v in await rt.artifacts.versions(sid, latest.name):
            versions.append((v.name, v.version, v.content_hash))
    return variables, sorted(versions)


async def history(rt: Runtime) -> tuple[str, dict[int, Any]]:
    """A session put through variable and artifact changes; its snapshot after each entry."""
    sid = await rt.sessions.create(name="origin")
    seen = {1: await snapshot(rt, sid)}

    async def step(seq: int) -> None:
        seen[seq] = await snapshot(rt, sid)

    await rt.sessions.set_state(sid, "plan", ["a", "b"])
    await step(2)
    await rt.artifacts.store(sid, "r.json", b"one", type="tool_result", metadata=None)
    await step(3)
    await rt.sessions.set_state(sid, "n", 1)
    await step(4)
    await rt.artifacts.store(sid, "r.json", b"two", type="tool_result", metadata=None)
    await step(5)
    await rt.artifacts.store(sid, "notes.md", b"# n", type="agent_output", metadata=None)
    await step(6)
    await rt.sessions.delete_state(sid, "plan")
    await step(7)
    await rt.artifacts.delete(sid, "r.json", 1)
    await step(8)
    await rt.sessions.set_state(sid, "n", 2)
    await step(9)
    return sid, seen


async def test_state_at_matches_the_session_at_each_entry(rt: Runtime) -> None:
    """state_at(seq) gives the variables and artifact versions the session had then."""
    sid, seen = await history(rt)
    for seq, (variables, versions) in seen.items():
        state = await rt.sessions.state_at(sid, seq)
        assert state.variables == variables, seq
        assert sorted((a.name, a.version, a.content_hash) for a in state.artifacts) == versions
    assert (await rt.sessions.state_at(sid)).seq == 9
    with pytest.raises(ValidationError):
        await rt.sessions.state_at(sid, 10)


async def test_simulate_and_debug_replay(rt: Runtime) -> None:
    """simulate rebuilds the final state; debug gives the state after every entry; neither
    changes the session."""
    sid, seen = await history(rt)
    before = await rt.sessions.timeline(sid)
    result = await rt.sessions.replay(sid)
    assert (result.mode, result.events_replayed) == ("simulate", 9)
    assert result.state == seen[9][0]
    assert sorted((a.name, a.version, a.content_hash) for a in result.artifacts) == seen[9][1]
    debug = await rt.sessions.replay(sid, mode="debug", at=6)
    assert [s.seq for s in debug.steps] == list(range(1, 7))
    assert all(s.variables == seen[s.seq][0] for s in debug.steps)
    assert await rt.sessions.timeline(sid) == before


async def test_exact_replay_detects_a_changed_hook(rt: Runtime) -> None:
    """Re-running recorded hooks matches while they behave the same, and reports the entry
    where a hook now decides otherwise."""

    def cap(ctx: HookContext) -> HookResult | None:
        value = ctx.data["value"]
        return HookResult.modify({"value": 10}) if isinstance(value, int) and value > 10 else None

    rt.hooks.register("state_changed", cap, name="cap")
    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "x", 5)
    await rt.sessions.set_state(sid, "x", 50)
    same = await rt.sessions.replay(sid, mode="exact")
    assert (same.hooks_replayed, same.matched, same.mismatched) == (2, 2, 0)
    assert same.state == {"x": 10}
    rt.hooks.unregister("cap")
    rt.hooks.register("state_changed", lambda ctx: None, name="cap")  # now lets all through
    changed = await rt.sessions.replay(sid, mode="exact")
    assert changed.mismatched == 1
    (mismatch,) = changed.mismatches
    assert (mismatch.seq, mismatch.hook) == (3, "cap")
    assert mismatch.expected == {"result": "modify", "data": {"value": 10}}
    assert mismatch.actual == {"result": "continue"}
    rt.hooks.unregister("cap")
    missing = await rt.sessions.replay(sid, mode="exact")
    assert [m.actual for m in missing.mismatches] == [{"result": "missing"}] * 2


async def test_modified_replay_pins_variables(rt: Runtime) -> None:
    """Overrides hold in the replayed state and reach the re-run hooks, whose decisions are
    compared with the recorded ones."""

    def guard(ctx: HookContext) -> HookResult | None:
        return HookResult.modify({"value": "safe"}) if ctx.data["value"] == "risky" else None

    rt.hooks.register("state_changed", guard, name="guard")
    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "mode", "calm")
    await rt.sessions.set_state(sid, "other", 1)
    result = await rt.sessions.replay(sid, mode="modified", modifications={"mode": "risky"})
    assert result.state == {"mode": "risky", "other": 1}
    assert [(m.seq, m.actual["result"]) for m in result.mismatches] == [(2, "modify")]
    assert await rt.sessions.get_state(sid, "mode") == "calm"


async def test_replay_progress_and_stop(rt: Runtime) -> None:
    """Progress counts entries; a stopped replay says so and stops early."""
    sid = await rt.sessions.create()
    for n in range(20):
        await rt.sessions.set_state(sid, "n", n)
    progress = ReplayProgress()
    full = await rt.sessions.replay(sid, progress=progress)
    assert (progress.done, progress.total, full.stopped) == (21, 21, False)

    stop = ReplayProgress()
    stop.stop()
    stopped = await rt.sessions.replay(sid, progress=stop)
    assert stopped.stopped and stopped.events_replayed == 0


async def test_fork_shares_content_and_starts_from_the_origin(rt: Runtime) -> None:
    """A fork holds the origin's variables and artifacts at ``at``, shares their blobs, links
    its origin, and lives on its own afterwards."""
    sid, seen = await history(rt)
    blobs_before = len(list(rt.store.kv.scan(b"blob\x00", b"blob\x01")))
    fork = await rt.sessions.fork(sid)
    assert await snapshot(rt, fork) == seen[9]
    assert len(list(rt.store.kv.scan(b"blob\x00", b"blob\x01"))) == blobs_before
    first = (await rt.sessions.timeline(fork))[0]
    assert first.kind == "session_forked"
    assert (first.data["origin_session_id"], first.data["origin_seq"]) == (sid, 9)
    # Version 1 of r.json was deleted at entry 8: a fork at entry 6 has everything else of
    # that moment, and names what it could not copy.
    earlier = await rt.sessions.fork(sid, at=6, name="at six")
    variables, versions = await snapshot(rt, earlier)
    assert variables == seen[6][0]
    assert versions == [v for v in seen[6][1] if v[:2] != ("r.json", 1)]
    missing = (await rt.sessions.timeline(earlier))[0].data["missing"]
    assert [(m["name"], m["version"]) for m in missing] == [("r.json", 1)]
    await rt.sessions.set_state(fork, "n", 99)
    assert await rt.sessions.get_state(sid, "n") == 2
    await rt.sessions.delete(sid)
    assert (await rt.artifacts.get(fork, "notes.md")).content == b"# n"
    assert (await rt.sessions.replay(fork)).state == {**seen[9][0], "n": 99}
    assert (await rt.sessions.check()).clean
    assert (await rt.check()).clean


async def test_every_copy_a_fork_makes_has_an_id_of_its_own(rt: Runtime) -> None:
    """Each artifact version a fork copies gets a fresh, well-formed id that reads the copy,
    distinct from the origin's and from every other copy's."""
    sid = await rt.sessions.create()
    for i in range(20):
        await rt.artifacts.store(sid, f"r{i % 5}.json", b"%d" % i, type="tool_result")
    forks = [await rt.sessions.fork(sid) for _ in range(2)]
    origin_ids = {a.id for a in await rt.artifacts.query(session_id=sid, all_versions=True)}
    copies = [
        a for fork in forks for a in await rt.artifacts.query(session_id=fork, all_versions=True)
    ]
    ids = [a.id for a in copies]
    assert len(ids) == len(set(ids)) == 40 and not origin_ids & set(ids)
    for copy in copies:
        assert validate.is_artifact_id(copy.id)
        assert (await rt.artifacts.info(copy.session_id, copy.id)).name == copy.name


async def test_replay_metadata_and_errors(rt: Runtime) -> None:
    """Metadata counts entries; can_replay never raises for a well-formed id; bad modes,
    positions and ids get typed errors."""
    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "k", 1)
    meta = await rt.sessions.replay_metadata(sid)
    assert (meta.total_events, meta.can_replay) == (2, True)
    assert meta.first_event_at is not None and meta.last_event_at is not None
    assert await rt.sessions.can_replay(sid)
    unknown = "00000000-0000-4000-8000-000000000000"
    assert not await rt.sessions.can_replay(unknown)
    assert sid in await rt.sessions.list_replayable()
    with pytest.raises(ValidationError):
        await rt.sessions.replay(sid, mode="fast")
    with pytest.raises(ValidationError):
        await rt.sessions.replay(sid, at=0)
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.replay(unknown)
    with pytest.raises(SessionNotFoundError):
        await rt.sessions.fork(unknown)


async def test_forks_of_long_names_fit(rt: Runtime) -> None:
    """A fork's default name stays within the name limit."""
    sid = await rt.sessions.create(name="n" * 255)
    fork = await rt.sessions.fork(sid)
    name = (await rt.sessions.get(fork)).name
    assert name.endswith(" (fork)") and len(name.encode()) <= 255


async def test_a_debug_replay_keeps_the_states_from_the_entry_asked() -> None:
    """``steps_from`` keeps the debug states of the entries from it on, the same states a
    whole debug replay has for them; a number below 1 is refused."""
    from satchel import InvalidArgumentError, open_runtime

    async with open_runtime(store="memory") as rt:
        session_id = await rt.sessions.create()
        for n in range(10):
            await rt.sessions.set_state(session_id, "n", n)
        whole = await rt.sessions.replay(session_id, mode="debug")
        window = await rt.sessions.replay(session_id, mode="debug", steps_from=8)
        assert window.steps == tuple(s for s in whole.steps if s.seq >= 8)
        assert window.state == whole.state
        with pytest.raises(InvalidArgumentError):
            await rt.sessions.replay(session_id, mode="debug", steps_from=0)


async def test_a_journal_of_several_pages_replays_whole() -> None:
    """A journal read a page at a time (entries on both sides of a page's end) replays and
    rebuilds each state as the session had it."""
    from satchel import open_runtime
    from satchel.actors.hooks._replay import journal_pages

    page = journal_pages.__defaults__[-1]  # type: ignore[index]
    async with open_runtime(store="memory") as rt:
        sid = await rt.sessions.create()
        for n in range(2, 2 * page + 4):  # entry n sets "n" to n: the journal ends at 2p + 3
            await rt.sessions.set_state(sid, "n", n)
        result = await rt.sessions.replay(sid)
        assert (result.events_replayed, result.state) == (2 * page + 3, {"n": 2 * page + 3})
        for seq in (page, page + 1, 2 * page, 2 * page + 1):
            assert (await rt.sessions.state_at(sid, seq)).variables == {"n": seq}
        debug = await rt.sessions.replay(sid, mode="debug", at=page + 2)
        assert [s.variables.get("n") for s in debug.steps][page - 1 :] == [page, page + 1, page + 2]


@pytest.mark.parametrize(
    "damaged",
    [
        (2, "state_set", ["not", "a", "map"]),  # data of the wrong shape
        (2, "state_set", {"key": "k"}),  # a field missing
        (2, 7, {"key": "k", "value": 1}),  # a kind that is no text
    ],
)
async def test_a_damaged_journal_entry_is_a_replay_error_for_every_reader(
    rt: Runtime, damaged: tuple[int, Any, Any]
) -> None:
    """A journal entry of the wrong shape makes state_at and every replay mode raise
    ReplayError naming the entry, not a bare TypeError, KeyError or AttributeError."""
    from satchel import ReplayError
    from satchel.actors.sessions import _session_layout as layout
    from satchel.storage import Batch

    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "k", 1)
    await rt.sessions.set_state(sid, "k", 2)
    seq, kind, data = damaged
    batch = Batch()
    key = layout.journal_key(layout.bytes_of(sid), seq)
    batch.put(key, layout.encode_entry(1_700_000_000_000_000, kind, data))  # type: ignore[arg-type]
    await rt.store.records.write(batch)
    with pytest.raises(ReplayError, match="journal entry 2"):
        await rt.sessions.state_at(sid, 3)
    for mode in ("simulate", "debug", "exact"):
        with pytest.raises(ReplayError, match="journal entry 2"):
            await rt.sessions.replay(sid, mode=mode)
    with pytest.raises(ReplayError, match="journal entry 2"):
        await rt.sessions.replay(sid, mode="modified", modifications={"other": 0})
