"""Collectors: what hosts report (tool results, agent outputs) becomes artifacts.

Reports go to the one shared hook actor, which decides by the collection config (size
bounds, sampling rate, errors or not), runs the ``tool_result``/``agent_output`` hooks (which
may add tags and metadata, or cancel), and stores the artifact through the owning session's
actor. Each tool's results are versions of one name (``tool-<tool>.json``), each agent's outputs
of another (``agent-<agent>.txt`` or ``.json``), so a session's history of a tool reads as the
versions of its name.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from typing import Any, final

import attrs
from satchel.runtime import Actor, ActorSpec, ReminderFired, Supervisor
from satchel.storage import KeyValueStore

from satchel._errors import (
    InvalidArgumentError,
    SatchelError,
    SessionNotActiveError,
    SessionNotFoundError,
    ValidationError,
)

from . import _schedules as schedules
from . import _validate as validate
from ._artifact_manager import ArtifactManager
from ._artifact_model import ArtifactRef
from ._hooks import HookPoint, Hooks
from ._manager import SessionManager
from ._messages import RecordHooks
from ._model import SessionStatus
from ._query import load
from ._schedules import SCHEDULE_CODEC, Replays, Schedule, Unschedule
from ._session import SESSION_KIND

HOOKS_KIND = "hooks"
HOOKS_ID = "shared"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@attrs.frozen
class CollectionConfig:
    """What is collected: content sizes in bytes (inclusive), the share of reports kept
    (``sampling_rate`` 0..1), tags added to every collected artifact, and whether failed tool
    calls are collected."""

    min_size: int = 0
    max_size: int = 10 * 1024 * 1024
    sampling_rate: float = 1.0
    auto_tags: tuple[str, ...] = ()
    collect_errors: bool = True

    def __attrs_post_init__(self) -> None:
        if type(self.min_size) is not int or type(self.max_size) is not int:
            raise InvalidArgumentError("min_size and max_size must be integers")
        if not 0 <= self.min_size <= self.max_size:
            raise ValidationError(
                f"need 0 <= min_size <= max_size, not {self.min_size} and {self.max_size}"
            )
        if not (isinstance(self.sampling_rate, int | float) and 0 <= self.sampling_rate <= 1):
            raise ValidationError(f"sampling_rate must be in 0..1, not {self.sampling_rate!r}")
        validate.tags(self.auto_tags)


@attrs.frozen
class ToolResult:
    """A tool call a host reports."""

    session_id: str
    tool: str
    params: Any
    result: Any
    error: str | None


@attrs.frozen
class AgentOutput:
    """An agent output a host reports."""

    session_id: str
    agent: str
    output: Any
    model: str | None
    usage: Mapping[str, Any] | None


@final
class HookActor(Actor[Any]):
    """The shared hook actor: turns reports into artifacts, one at a time."""

    def __init__(
        self,
        artifacts: ArtifactManager,
        hooks: Hooks,
        collectors: Collectors,
        supervisor: Supervisor,
        sessions: SessionManager,
        kv: KeyValueStore,
    ) -> None:
        self._sessions = sessions
        self._sessions_kv = kv
        self._supervisor = supervisor
        self._artifacts = artifacts
        self._hooks = hooks
        self._collectors = collectors

    async def receive(self, message: Any) -> Any:
        """Collect one report (the artifact stored, or ``None`` if the config skipped it),
        or keep, drop or run a scheduled replay."""
        if isinstance(message, ToolResult):
            return await self._collect(message, *_tool_artifact(message))
        if isinstance(message, AgentOutput):
            return await self._collect(message, *_agent_artifact(message))
        if isinstance(message, ReminderFired):
            return await self._run_scheduled(message.name)
        if isinstance(message, Schedule):
            replay = message.replay
            schedules.keep(self._sessions_kv, replay)
            await self.context.set_reminder(replay.id, at=replay.due, every=replay.every_s)
            return None
        if isinstance(message, Unschedule):
            await self.context.cancel_reminder(message.schedule_id)
            return schedules.forget(self._sessions_kv, message.schedule_id)
        raise TypeError(f"the hook actor takes no {type(message).__name__}")

    async def _run_scheduled(self, schedule_id: str) -> None:
        kv = self._sessions_kv
        raw = kv.get(schedules.schedule_key(schedule_id))
        if raw is None:
            await self.context.cancel_reminder(schedule_id)  # left by a cancelled schedule
            return
        replay = SCHEDULE_CODEC.decode(raw)
        ran_us = round(self.context.now() * 1_000_000)
        try:
            found = await self._sessions.replay(
                replay.session_id,
                mode=replay.mode,
                at=replay.at,
                modifications=replay.modifications,
                compare_results=replay.compare_results,
            )
        except SessionNotFoundError:
            await self.context.cancel_reminder(schedule_id)
            schedules.forget(kv, schedule_id)
            return
        except SatchelError as error:
            schedules.record_run(kv, schedule_id, ran_us, None, schedules.describe(error))
        else:
            schedules.record_run(kv, schedule_id, ran_us, found, None)
        if replay.every_s is None:
            # A one-shot schedule is done; its runs stay readable until it is cancelled.
            schedules.keep(kv, attrs.evolve(replay, due=-1.0))

    async def _collect(
        self,
        report: ToolResult | AgentOutput,
        point: HookPoint,
        name: str,
        content: bytes,
        metadata: dict[str, Any],
    ) -> ArtifactRef | None:
        collectors = self._collectors
        config = collectors.config
        failed = isinstance(report, ToolResult) and report.error is not None
        if (
            (failed and not config.collect_errors)
            or not config.min_size <= len(content) <= config.max_size
            or collectors.rng.random() >= config.sampling_rate
        ):
            collectors.skipped += 1
            return None
        tags = list(dict.fromkeys([*config.auto_tags, *metadata.pop("tags")]))
        data: dict[str, Any] = {
            "name": name,
            "size": len(content),
            "tags": tags,
            "metadata": metadata,
        }
        if self._hooks.has(point):
            data, records = await self._hooks.run(point, report.session_id, data)
            if records:
                owner = self._supervisor.ref(SESSION_KIND, report.session_id)
                await owner.tell(RecordHooks(records))
        kind = "tool_result" if point is HookPoint.TOOL_RESULT else "agent_output"
        stored = {**data["metadata"], "tags": data["tags"]}
        ref = await self._artifacts.store(report.session_id, kind, name, content, stored)
        collectors.collected += 1
        return ref


def _tool_artifact(report: ToolResult) -> tuple[HookPoint, str, bytes, dict[str, Any]]:
    body = {"tool": report.tool, "params": report.params}
    body |= {"error": report.error} if report.error is not None else {"result": report.result}
    metadata: dict[str, Any] = {
        "mime_type": "application/json",
        "description": f"result of tool {report.tool}",
        "tags": ["tool_result", report.tool] + (["error"] if report.error is not None else []),
        "source": {"collector": "tool_result", "tool": report.tool},
        "error": report.error is not None,
    }
    name = f"tool-{_safe(report.tool)}.json"
    return HookPoint.TOOL_RESULT, name, _json(body), metadata


def _agent_artifact(report: AgentOutput) -> tuple[HookPoint, str, bytes, dict[str, Any]]:
    text = isinstance(report.output, str)
    content = report.output.encode() if text else _json(report.output)
    metadata: dict[str, Any] = {
        "mime_type": "text/plain" if text else "application/json",
        "description": f"output of agent {report.agent}",
        "tags": ["agent_output", report.agent],
        "source": {"collector": "agent_output", "agent": report.agent},
        "model": report.model,
        "usage": dict(report.usage or {}),
    }
    name = f"agent-{_safe(report.agent)}.{'txt' if text else 'json'}"
    return HookPoint.AGENT_OUTPUT, name, content, metadata


def _safe(label: str) -> str:
    """A tool or agent name as part of an artifact name."""
    return _UNSAFE.sub("_", label).strip(".")[:200] or "unnamed"


def _json(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True).encode()
    except (TypeError, ValueError) as error:
        raise ValidationError(f"a report must be JSON-like: {error}") from None


class Collectors:
    """``rt.collectors``: hosts report what happened; reports become artifacts.

    ``config`` (a ``CollectionConfig``) may be replaced at any time; ``collected`` and
    ``skipped`` count reports since the runtime opened.
    """

    def __init__(
        self, supervisor: Supervisor, kv: KeyValueStore, config: CollectionConfig | None = None
    ) -> None:
        self._supervisor = supervisor
        self._kv = kv
        self.config = config or CollectionConfig()
        self.rng = random.Random()
        self.collected = 0
        self.skipped = 0

    async def tool_result(
        self,
        session_id: str,
        tool: str,
        params: Any = None,
        result: Any = None,
        *,
        error: str | None = None,
    ) -> ArtifactRef | None:
        """Report a tool call (its ``result``, or the ``error`` it failed with); the artifact
        collected, or ``None`` if the collection config skipped it."""
        session_id = self._active(session_id)
        tool = validate.text("a tool name", tool, validate.MAX_NAME_BYTES)
        if error is not None:
            error = validate.text("a tool error", error, validate.MAX_REASON_BYTES, nul_ok=True)
        return await self._send(ToolResult(session_id, tool, params, result, error))

    async def agent_output(
        self,
        session_id: str,
        agent: str,
        output: Any,
        *,
        model: str | None = None,
        usage: Mapping[str, Any] | None = None,
    ) -> ArtifactRef | None:
        """Report an agent's output (text, or any JSON-like value), the model that made it
        and its token usage; the artifact collected, or ``None`` if skipped."""
        session_id = self._active(session_id)
        agent = validate.text("an agent name", agent, validate.MAX_NAME_BYTES)
        if usage is not None:
            validate.json_like("usage", dict(usage))
        return await self._send(AgentOutput(session_id, agent, output, model, usage))

    async def _send(self, report: ToolResult | AgentOutput) -> ArtifactRef | None:
        ref: ArtifactRef | None = await self._supervisor.ref(HOOKS_KIND, HOOKS_ID).ask(report)
        return ref

    def _active(self, session_id: str) -> str:
        """Only active sessions collect."""
        session_id, sid = validate.session_id(session_id)
        loaded = load(self._kv, [sid])[0]
        if loaded is None:
            raise SessionNotFoundError(f"no session {session_id}")
        if loaded[0].status is not SessionStatus.ACTIVE:
            raise SessionNotActiveError(
                f"session {session_id} is {loaded[0].status.value}; only active sessions collect"
            )
        return session_id


def register_hook_kind(
    supervisor: Supervisor,
    artifacts: ArtifactManager,
    hooks: Hooks,
    collectors: Collectors,
    sessions: SessionManager,
    kv: KeyValueStore,
) -> Replays:
    """Register the shared hook actor's kind; the scheduled replays it runs."""
    supervisor.register(
        ActorSpec(
            kind=HOOKS_KIND,
            factory=lambda _: HookActor(artifacts, hooks, collectors, supervisor, sessions, kv),
            idle_timeout=None,
        )
    )
    return Replays(kv, supervisor, supervisor.ref(HOOKS_KIND, HOOKS_ID))
