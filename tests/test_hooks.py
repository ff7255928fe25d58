"""Lifecycle hooks: results obeyed (continue, cancel, modify), order, isolation, journal."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from satchel import (
    HookCancelledError,
    HookContext,
    HookResult,
    InvalidArgumentError,
    InvalidStateTransitionError,
    MetricsSummary,
    Runtime,
    ValidationError,
    open_runtime,
)
from satchel.actors.hooks import _hooks


async def test_cancel_prevents_the_write(rt: Runtime) -> None:
    """A cancelling hook fails the operation with HookCancelled and nothing is written."""
    sid = await rt.sessions.create()
    rt.hooks.register("state_changed", lambda ctx: HookResult.cancel("read-only"), name="ro")
    with pytest.raises(HookCancelledError, match="read-only"):
        await rt.sessions.set_state(sid, "k", 1)
    assert await rt.sessions.get_state(sid, "k") is None
    assert [e.kind for e in await rt.sessions.timeline(sid)] == ["session_created"]
    rt.hooks.unregister("ro")
    await rt.sessions.set_state(sid, "k", 1)
    assert await rt.sessions.get_state(sid, "k") == 1


async def test_modify_changes_what_is_stored(rt: Runtime) -> None:
    """Modified data is what lands: a variable's value, an artifact's tags, a new session's
    name and tags."""

    def redact(ctx: HookContext) -> HookResult:
        return HookResult.modify({"value": "***"}) if ctx.data["key"] == "secret" else None

    def tag(ctx: HookContext) -> HookResult:
        return HookResult.modify({"tags": [*ctx.data["tags"], "audited"]})

    def rename(ctx: HookContext) -> HookResult:
        return HookResult.modify({"name": ctx.data["name"].upper(), "tags": ["hooked"]})

    rt.hooks.register("state_changed", redact)
    rt.hooks.register("artifact_created", tag)
    rt.hooks.register("session_start", rename)
    sid = await rt.sessions.create(name="quiet", tags=["x"])
    info = await rt.sessions.get(sid)
    assert (info.name, info.tags) == ("QUIET", ("hooked",))
    await rt.sessions.set_state(sid, "secret", "hunter2")
    await rt.sessions.set_state(sid, "plain", "ok")
    assert await rt.sessions.get_state(sid, "secret") == "***"
    assert await rt.sessions.get_state(sid, "plain") == "ok"
    ref = await rt.artifacts.store(sid, "a.txt", b"a", type="tool_result", metadata={"tags": ["t"]})
    assert (await rt.artifacts.info(sid, ref.id)).tags == ("t", "audited")
    assert [a.id for a in await rt.artifacts.query(tags=["audited"])] == [ref.id]
    assert (await rt.sessions.check()).clean


async def test_a_fork_runs_the_session_start_hooks(rt: Runtime) -> None:
    """Forking starts a session: session_start hooks see the origin, may change the fork's
    name and tags or refuse it (nothing written), are journaled in its first entry, and
    observers hear of it."""
    sid = await rt.sessions.create(name="origin", tags=["x"])
    await rt.sessions.set_state(sid, "k", 1)
    seen: list[dict[str, Any]] = []
    observed: list[str] = []

    def start(ctx: HookContext) -> HookResult | None:
        seen.append(dict(ctx.data))
        if ctx.data["name"] == "refused":
            return HookResult.cancel("no forks named so")
        return HookResult.modify({"tags": [*ctx.data["tags"], "forked"]})

    rt.hooks.register("session_start", start, name="start")
    rt.hooks.register(
        "session_start", lambda ctx: observed.append(ctx.session_id), name="w", phase="after"
    )
    fork = await rt.sessions.fork(sid, name="branch")
    info = await rt.sessions.get(fork)
    assert (info.name, info.tags) == ("branch", ("x", "forked"))
    assert seen[-1]["origin_session_id"] == sid and seen[-1]["parent_session_id"] is None
    assert await rt.sessions.get_state(fork, "k") == 1
    first = (await rt.sessions.timeline(fork))[0]
    assert first.kind == "session_forked" and first.data["hooks"][0]["hook"] == "start"
    count = len(await rt.sessions.list())
    with pytest.raises(HookCancelledError, match="no forks named so"):
        await rt.sessions.fork(sid, name="refused")
    assert len(await rt.sessions.list()) == count
    rt.hooks.flush()
    assert fork in observed
    assert (await rt.sessions.check()).clean


async def test_hooks_run_by_priority_and_are_journaled(rt: Runtime) -> None:
    """Higher priority runs first and sees the original data; each execution is recorded in
    the operation's journal entry with its input, result and duration."""
    seen: list[tuple[str, Any]] = []

    def low(ctx: HookContext) -> None:
        seen.append(("low", ctx.data["value"]))

    async def high(ctx: HookContext) -> HookResult:
        await anyio.lowlevel.checkpoint()
        seen.append(("high", ctx.data["value"]))
        return HookResult.modify({"value": ctx.data["value"] + 1})

    rt.hooks.register("state_changed", low, name="low", priority=1)
    rt.hooks.register("state_changed", high, name="high", priority=5)
    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "n", 1)
    assert seen == [("high", 1), ("low", 2)]
    entry = (await rt.sessions.timeline(sid))[-1]
    assert entry.kind == "state_set" and entry.data["value"] == 2
    records = entry.data["hooks"]
    assert [(r["hook"], r["result"]) for r in records] == [("high", "modify"), ("low", "continue")]
    assert records[0]["input"] == {"key": "n", "value": 1, "deleted": False}
    assert records[0]["data"] == {"value": 2}
    assert all(r["point"] == "state_changed" and r["duration_us"] >= 0 for r in records)


async def test_failing_hooks_are_isolated_unless_required(rt: Runtime) -> None:
    """A hook that raises, returns nonsense or modifies what its point does not allow is
    skipped and counted; a required one fails the operation closed."""
    sid = await rt.sessions.create()

    def boom(ctx: HookContext) -> None:
        raise RuntimeError("bug in hook")

    rt.hooks.register("state_changed", boom, name="boom")
    rt.hooks.register("state_changed", lambda ctx: "yes", name="nonsense")  # type: ignore[arg-type, return-value]
    rt.hooks.register("state_changed", lambda ctx: HookResult.modify({"key": "x"}), name="bad")
    await rt.sessions.set_state(sid, "k", 1)
    assert await rt.sessions.get_state(sid, "k") == 1
    stats = rt.hooks.statistics()
    assert (stats.executions, stats.failures) == (3, 3)
    rt.hooks.unregister("boom")
    rt.hooks.register("state_changed", boom, name="strict", required=True)
    with pytest.raises(HookCancelledError, match="required hook 'strict'"):
        await rt.sessions.set_state(sid, "k", 2)
    assert await rt.sessions.get_state(sid, "k") == 1


async def test_overrunning_hooks(rt: Runtime, autojump_clock: None) -> None:
    """An async hook past its deadline is cancelled and skipped (or fails a required one)."""
    sid = await rt.sessions.create()

    async def slow(ctx: HookContext) -> HookResult:
        await anyio.sleep(10)
        return HookResult.cancel("too late to matter")

    rt.hooks.register("state_changed", slow, name="slow", deadline_s=0.5)
    await rt.sessions.set_state(sid, "k", 1)
    assert await rt.sessions.get_state(sid, "k") == 1
    assert rt.hooks.statistics().overruns == 1
    rt.hooks.unregister("slow")
    rt.hooks.register("state_changed", slow, name="slow!", deadline_s=0.5, required=True)
    with pytest.raises(HookCancelledError, match="overran"):
        await rt.sessions.set_state(sid, "k", 2)


async def test_sync_hook_overrun_is_ignored(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sync hook cannot be interrupted; if it took longer than its deadline, its result is
    ignored like a cancelled async one's."""
    sid = await rt.sessions.create()
    clock = [0.0]
    monkeypatch.setattr(_hooks.time, "perf_counter", lambda: clock[0])

    def slow(ctx: HookContext) -> HookResult:
        clock[0] += 5.0
        return HookResult.cancel("should be ignored")

    rt.hooks.register("state_changed", slow, deadline_s=1.0)
    await rt.sessions.set_state(sid, "k", 1)
    assert await rt.sessions.get_state(sid, "k") == 1
    assert rt.hooks.statistics().overruns == 1


async def test_lifecycle_and_artifact_hooks(rt: Runtime) -> None:
    """Hooks can stop a completion and a delete; an invalid transition fails as itself; save
    runs its hooks and journals them."""
    sid = await rt.sessions.create()
    ref = await rt.artifacts.store(sid, "keep.txt", b"k", type="tool_result", metadata=None)
    rt.hooks.register("session_complete", lambda ctx: HookResult.cancel("not yet"))
    rt.hooks.register("artifact_deleted", lambda ctx: HookResult.cancel("keep it"))
    calls: list[str] = []
    rt.hooks.register("session_resume", lambda ctx: calls.append("resume"))  # type: ignore[func-returns-value]
    rt.hooks.register("session_save", lambda ctx: calls.append("save"))  # type: ignore[func-returns-value]
    with pytest.raises(HookCancelledError):
        await rt.sessions.complete(sid)
    with pytest.raises(HookCancelledError):
        await rt.artifacts.delete(sid, ref.id)
    with pytest.raises(InvalidStateTransitionError):
        await rt.sessions.resume(sid)  # active already: the hook does not run
    assert (await rt.sessions.get(sid)).status == "active"
    assert (await rt.artifacts.get(sid, ref.id)).content == b"k"
    await rt.sessions.save(sid)
    assert calls == ["save"]
    last = (await rt.sessions.timeline(sid))[-1]
    assert last.kind == "hooks_ran" and last.data["hooks"][0]["point"] == "session_save"
    assert (await rt.sessions.check()).clean


async def test_registration_is_checked(rt: Runtime) -> None:
    """Unknown points, duplicate names, bad priorities and deadlines are refused."""
    rt.hooks.register("session_start", lambda ctx: None, name="one")
    for args, kwargs, error in (
        (("nowhere", lambda ctx: None), {}, ValidationError),
        (("session_start", lambda ctx: None), {"name": "one"}, ValidationError),
        (("session_start", "not callable"), {}, InvalidArgumentError),
        (("session_start", lambda ctx: None), {"priority": 1.5}, InvalidArgumentError),
        (("session_start", lambda ctx: None), {"deadline_s": 0}, ValidationError),
    ):
        with pytest.raises(error):
            rt.hooks.register(*args, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        rt.hooks.unregister("two")


async def test_artifact_access_hooks(rt: Runtime) -> None:
    """Reads pass the artifact_accessed hooks: a cancel refuses the read, and executions are
    journaled by the owning session's actor."""
    sid = await rt.sessions.create()
    ref = await rt.artifacts.store(sid, "r.txt", b"r", type="tool_result", metadata=None)
    seen: list[str] = []
    rt.hooks.register("artifact_accessed", lambda ctx: seen.append(ctx.data["how"]), name="log")  # type: ignore[func-returns-value]
    await rt.artifacts.get(sid, ref.id)
    await rt.artifacts.info(sid, "r.txt")
    assert b"".join([c async for c in rt.artifacts.stream(sid, ref.id)]) == b"r"
    assert seen == ["get", "info", "stream"]
    await rt.sessions.save(sid)  # after the journal records the actor was told to write
    kinds = [e.kind for e in await rt.sessions.timeline(sid)]
    assert kinds.count("hooks_ran") == 3
    rt.hooks.register("artifact_accessed", lambda ctx: HookResult.cancel("sealed"), priority=9)
    with pytest.raises(HookCancelledError, match="sealed"):
        await rt.artifacts.get(sid, ref.id)
    assert (await rt.sessions.check()).clean


async def test_after_hooks_observe_and_cannot_interfere(rt: Runtime) -> None:
    """An after hook sees the finished operation with its duration; what it returns or
    raises changes nothing."""
    seen: list[tuple[str, int]] = []

    def watch(ctx: HookContext) -> HookResult:
        seen.append((ctx.point.value, ctx.data["duration_us"]))
        return HookResult.cancel("ignored after the fact")

    def broken(ctx: HookContext) -> None:
        raise RuntimeError("observer bug")

    rt.hooks.register("state_changed", watch, phase="after")
    rt.hooks.register("state_changed", broken, phase="after")
    rt.hooks.register("session_start", watch, name="start", phase="after")
    sid = await rt.sessions.create()
    await rt.sessions.set_state(sid, "k", 1)
    assert await rt.sessions.get_state(sid, "k") == 1
    assert [p for p, _ in seen] == ["session_start", "state_changed"]
    assert all(took >= 0 for _, took in seen)
    assert "hooks" not in (await rt.sessions.timeline(sid))[-1].data
    with pytest.raises(ValidationError):
        rt.hooks.register("state_changed", watch, name="x", phase="during")


async def test_builtin_metrics_and_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The built-in hooks count operations, time and bytes per session, add them up, export
    them (with hashed session ids in privacy mode) and log each operation."""
    async with open_runtime(tmp_path, builtin_hooks=True, metrics_privacy=True) as rt:
        with caplog.at_level(logging.DEBUG, logger="satchel.operations"):
            sid = await rt.sessions.create()
            other = await rt.sessions.create()
            await rt.sessions.set_state(sid, "a", 1)
            await rt.sessions.set_state(sid, "b", 2)
            await rt.artifacts.store(sid, "x.bin", b"12345", type="tool_result", metadata=None)
            summary = rt.metrics.summary(sid)  # reading lands the batched observer calls
        assert summary.operations == {
            "session_start": 1,
            "state_changed": 2,
            "artifact_created": 1,
        }
        assert summary.bytes_stored == 5
        assert set(summary.durations_us) == set(summary.operations)
        total = rt.metrics.aggregate()
        assert (total.sessions, total.operations["session_start"]) == (2, 2)
        exported = rt.metrics.export()
        assert len(exported) == 2 and sid not in exported and other not in exported
        assert any(v["bytes_stored"] == 5 for v in exported.values())
        assert sum("state_changed " + sid in r.getMessage() for r in caplog.records) == 2


async def test_metrics_let_go_of_deleted_sessions(tmp_path: Path) -> None:
    """A deleted session (also one deleted by a cascade) leaves the per-session metrics while
    the totals keep its counts, so the table follows the sessions that exist."""
    async with open_runtime(tmp_path, builtin_hooks=True) as rt:
        kept = await rt.sessions.create()
        parent = await rt.sessions.create()
        child = await rt.sessions.create(parent_id=parent)
        for sid in (kept, parent, child):
            await rt.sessions.set_state(sid, "a", 1)
        await rt.artifacts.store(child, "x.bin", b"123", type="tool_result", metadata=None)
        before = rt.metrics.aggregate()
        await rt.sessions.delete(parent, cascade=True)
        assert set(rt.metrics.export()) == {kept}
        assert rt.metrics.summary(child).operations == {}
        assert rt.metrics.aggregate() == before
        await rt.sessions.set_state(kept, "a", 2)
        await rt.sessions.delete(kept)
        after = rt.metrics.aggregate()
        assert rt.metrics.export() == {}
        assert (after.sessions, after.operations["state_changed"]) == (3, 4)
        assert after.bytes_stored == 3
        rt.metrics.reset()
        assert rt.metrics.aggregate() == MetricsSummary(None, {}, {}, 0, 0)


async def test_untimed_observers_are_batched(tmp_path: Path, autojump_clock: None) -> None:
    """Untimed observers are called in a batch shortly after the operations, not in their turn,
    and all of them before the runtime closes."""
    seen: list[tuple[str, str]] = []

    def observe(ctx: HookContext) -> None:
        seen.append((ctx.point.value, ctx.session_id))

    async with open_runtime(tmp_path) as rt:
        rt.hooks.register("state_changed", observe, phase="after", deadline_s=None)
        sid = await rt.sessions.create()
        for i in range(3):
            await rt.sessions.set_state(sid, "k", i)
        assert seen == []
        await anyio.sleep(_hooks.FLUSH_DELAY_S * 2)
        assert seen == [("state_changed", sid)] * 3
        await rt.sessions.set_state(sid, "k", 4)
        assert len(seen) == 3
    assert len(seen) == 4


async def test_batched_observers_see_what_inline_ones_see(tmp_path: Path) -> None:
    """An untimed observer, called in a batch after the turns, gets the data a timed one gets
    in the turn: each write's key, value and deletion flag, a status change's, a duration."""
    seen: dict[str, list[dict[str, Any]]] = {"batched": [], "inline": []}
    for mode, deadline in (("batched", None), ("inline", 1.0)):
        async with open_runtime(tmp_path / mode) as rt:
            for point in ("state_changed", "session_suspend", "session_fail"):
                rt.hooks.register(
                    point,
                    lambda c, into=seen[mode]: into.append(dict(c.data)),
                    name=f"{mode} {point}",
                    phase="after",
                    deadline_s=deadline,
                )
            sid = await rt.sessions.create()
            await rt.sessions.set_state(sid, "k", {"n": 1})
            await rt.sessions.delete_state(sid, "k")
            await rt.sessions.suspend(sid)
            await rt.sessions.fail(sid, "gave up")
            assert len(seen[mode]) == (0 if mode == "batched" else 4)  # batched: not yet
    assert all(type(data.pop("duration_us")) is int for data in seen["batched"] + seen["inline"])
    assert (
        seen["batched"]
        == seen["inline"]
        == [
            {"key": "k", "value": {"n": 1}, "deleted": False},
            {"key": "k", "value": None, "deleted": True},
            {"operation": "suspend", "from": "active", "reason": None},
            {"operation": "fail", "from": "suspended", "reason": "gave up"},
        ]
    )


async def test_the_observers_backlog_keeps_no_artifact_content(tmp_path: Path) -> None:
    """Operations waiting for batched observers keep only the data those observers see, not
    the content an artifact's store carried."""
    async with open_runtime(tmp_path) as rt:
        rt.hooks.register("artifact_created", lambda c: None, phase="after", deadline_s=None)
        sid = await rt.sessions.create()
        content = b"x" * 4096
        await rt.artifacts.store(sid, "a.bin", content, type="tool_result")
        await rt.artifacts.store(sid, "a.bin", content, type="tool_result")  # already stored
        backlog = list(rt.hooks._backlog)
        assert len(backlog) == 2
        assert all(len(entry) == 2 and "xxxxxxxx" not in repr(entry) for entry in backlog)


def test_an_operation_that_cannot_be_described_costs_no_other_its_observers() -> None:
    """Where describing a batched operation raises, its observers skip it and are called for
    the next one, and the failure is counted."""
    hooks = _hooks.Hooks()
    seen: list[Any] = []
    hooks.register(
        "state_changed", lambda c: seen.append(c.data["n"]), phase="after", deadline_s=None
    )

    def broken(operation: Any, before: Any) -> dict[str, Any]:
        raise KeyError(operation)

    hooks._batching = True  # as while ``drain`` runs
    point = _hooks.HookPoint.STATE_CHANGED
    hooks.notify_later(point, "s", broken, 1, None, 5)
    hooks.notify_later(point, "s", lambda n, _: None, 1, None, 5)  # type: ignore[arg-type,return-value]
    hooks.notify_later(point, "s", lambda n, _: {"n": n}, 2, None, 5)
    hooks.notify_now(point, "s", {"n": 3})
    assert seen == []
    hooks.flush()
    assert seen == [2, 3]
    assert hooks.statistics().failures == 2


async def test_hook_records_are_safe(rt: Runtime) -> None:
    """A value over the limit never reaches a hook or its record; nested data a hook changes
    in place changes nothing; a redacting hook can keep its input out of the journal; a
    failing hook is recorded as failed."""
    sid = await rt.sessions.create(config={"max_value_bytes": 100})
    seen: list[Any] = []

    def shorten(ctx: HookContext) -> HookResult:
        seen.append(ctx.data["value"])
        return HookResult.modify({"value": "short"})

    rt.hooks.register("state_changed", shorten, name="shorten")
    with pytest.raises(ValidationError):
        await rt.sessions.set_state(sid, "k", "x" * 1000)
    assert seen == []
    rt.hooks.unregister("shorten")

    def meddle(ctx: HookContext) -> None:
        ctx.data["custom"]["huge"] = "y" * 100_000  # type: ignore[index]

    rt.hooks.register("artifact_created", meddle)
    ref = await rt.artifacts.store(sid, "a", b"a", type="tool_result", metadata={"note": "n"})
    assert (await rt.artifacts.info(sid, ref.id)).custom == {"note": "n"}

    def redact(ctx: HookContext) -> HookResult:
        return HookResult.modify({"value": "***"})

    def boom(ctx: HookContext) -> None:
        raise RuntimeError("bug")

    rt.hooks.register("state_changed", redact, name="redact", record_input=False)
    rt.hooks.register("state_changed", boom, name="boom", priority=-1)
    await rt.sessions.set_state(sid, "secret", "hunter2")
    entry = (await rt.sessions.timeline(sid))[-1]
    assert "hunter2" not in repr(entry.data)
    records = {r["hook"]: r for r in entry.data["hooks"]}
    assert records["redact"]["input"] is None
    assert records["boom"]["result"] == "failed" and "bug" in records["boom"]["error"]


async def test_read_observers_and_cancelled_reads(rt: Runtime) -> None:
    """Observers see each finished read; a read a hook cancels is not audited as made."""
    owner = await rt.sessions.create()
    reader = await rt.sessions.create()
    ref = await rt.artifacts.store(owner, "r.txt", b"r", type="tool_result", metadata=None)
    await rt.artifacts.share(owner, ref.id, reader, "read")
    reads: list[str] = []
    rt.hooks.register("artifact_accessed", lambda ctx: reads.append(ctx.data["how"]), phase="after")  # type: ignore[func-returns-value]
    view = rt.session(reader).artifacts
    await view.get(owner, ref.id)
    await view.info(owner, ref.id)
    assert b"".join([c async for c in view.stream(owner, ref.id)]) == b"r"
    assert reads == ["get", "info", "stream"]
    rt.hooks.register("artifact_accessed", lambda ctx: HookResult.cancel("no"), name="deny")
    with pytest.raises(HookCancelledError):
        await view.get(owner, ref.id)
    log = await rt.artifacts.audit_log(owner, ref.id)
    assert [(e.action, e.granted) for e in log] == [("share", True)] + [("read", True)] * 3
