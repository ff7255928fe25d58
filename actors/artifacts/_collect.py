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
import time
from collections.abc import Mapping
from typing import Any, final

import attrs
import blake3

from satchel.runtime import Actor, ActorSpec, Supervisor
from satchel.runtime._errors import (
    InvalidArgumentError,
    SessionNotActiveError,
    SessionNotFoundError,
    ValidationError,
)
from satchel.storage import RecordStore

from .. import _validate as validate
from .._model import SessionStatus
from ..hooks._hooks import HookPoint, Hooks
from ..hooks._schedules import MIN_EVERY_S, REPLAYS_ID, REPLAYS_KIND, ReplayActor, Replays
from ..sessions._manager import SessionManager
from ..sessions._session_records import SessionRecords
from ._artifact_manager import ArtifactManager
from ._artifact_model import ArtifactRef

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
class Report:
    """A reported tool result or agent output, already turned into artifact content and
    metadata (checked in the reporter's task, so a bad report never reaches the actor)."""

    session_id: str
    point: HookPoint
    name: str
    content: bytes
    metadata: dict[str, Any]
    failed: bool = False


@final
class HookActor(Actor[Any]):
    """The shared hook actor: turns reports into artifacts, one at a time."""

    def __init__(
        self,
        artifacts: ArtifactManager,
        hooks: Hooks,
        collectors: Collectors,
        supervisor: Supervisor,
    ) -> None:
        self._supervisor = supervisor
        self._artifacts = artifacts
        self._hooks = hooks
        self._collectors = collectors

    async def receive(self, message: Any) -> Any:
        """Collect one report: the artifact stored, or ``None`` if the config skipped it."""
        if isinstance(message, Report):
            return await self._collect(message)
        raise TypeError(f"the hook actor takes no {type(message).__name__}")

    async def _collect(self, report: Report) -> ArtifactRef | None:
        collectors = self._collectors
        config = collectors.config
        if (
            (report.failed and not config.collect_errors)
            or not config.min_size <= len(report.content) <= config.max_size
            or collectors.rng.random() >= config.sampling_rate
        ):
            collectors.skipped += 1
            return None
        metadata = dict(report.metadata)
        tags = list(dict.fromkeys([*config.auto_tags, *metadata.pop("tags")]))
        data: dict[str, Any] = {
            "name": report.name,
            "size": len(report.content),
            "tags": tags,
            "metadata": metadata,
        }
        point = report.point
        records: list[dict[str, Any]] = []
        if self._hooks.has(point):
            data, records = await self._hooks.run(point, report.session_id, data)
            if not isinstance(data["metadata"], dict) or not isinstance(data["tags"], list):
                raise ValidationError("a hook left the metadata not a map or the tags not a list")
        kind = "tool_result" if point is HookPoint.TOOL_RESULT else "agent_output"
        stored = {**data["metadata"], "tags": data["tags"]}
        started = time.perf_counter()
        ref = await self._artifacts.store(
            report.session_id,
            report.name,
            report.content,
            type=kind,
            metadata=stored,
            hook_records=records,
        )
        collectors.collected += 1
        if self._hooks.observes(point):
            took = round((time.perf_counter() - started) * 1e6)
            done = {**data, "id": ref.id, "version": ref.version, "duration_us": took}
            await self._hooks.notify(point, report.session_id, done)
        return ref


def tool_report(session_id: str, tool: str, params: Any, result: Any, error: str | None) -> Report:
    """A tool call as an artifact: its JSON, named for the tool."""
    body = {"tool": tool, "params": params}
    body |= {"error": error} if error is not None else {"result": result}
    metadata: dict[str, Any] = {
        "mime_type": "application/json",
        "description": f"result of tool {tool}",
        "tags": ["tool_result", *_tag(tool)] + (["error"] if error is not None else []),
        "source": {"collector": "tool_result", "tool": tool},
        "error": error is not None,
    }
    name = f"tool-{_safe(tool)}.json"
    return Report(session_id, HookPoint.TOOL_RESULT, name, _json(body), metadata, error is not None)


def agent_report(
    session_id: str, agent: str, output: Any, model: str | None, usage: Mapping[str, Any] | None
) -> Report:
    """An agent's output as an artifact: text as it is, anything else as JSON."""
    text = isinstance(output, str)
    if text:
        try:
            content = output.encode()
        except UnicodeEncodeError:
            raise ValidationError("an agent output must be valid Unicode text") from None
    else:
        content = _json(output)
    metadata: dict[str, Any] = {
        "mime_type": "text/plain" if text else "application/json",
        "description": f"output of agent {agent}",
        "tags": ["agent_output", *_tag(agent)],
        "source": {"collector": "agent_output", "agent": agent},
        "model": model,
        "usage": dict(usage or {}),
    }
    name = f"agent-{_safe(agent)}.{'txt' if text else 'json'}"
    return Report(session_id, HookPoint.AGENT_OUTPUT, name, content, metadata)


def _tag(label: str) -> list[str]:
    """The tool or agent name as a tag, if it can be one (the name is in the metadata anyway)."""
    return [label] if 0 < len(label.encode()) <= validate.MAX_TAG_BYTES else []


def _safe(label: str) -> str:
    """A tool or agent name as part of an artifact name; names that had to change get a
    short hash of the original, so two names never share an artifact by accident."""
    safe = _UNSAFE.sub("_", label).strip(".")[:120] or "unnamed"
    if safe != label:
        safe += "-" + blake3.blake3(label.encode()).hexdigest(length=4)
    return safe


def _json(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False).encode()
    except (TypeError, ValueError, UnicodeEncodeError) as error:
        raise ValidationError(f"a report must be JSON-like: {error}") from None


class Collectors:
    """``rt.collectors``: hosts report what happened; reports become artifacts.

    ``config`` (a ``CollectionConfig``) may be replaced at any time; ``collected`` and
    ``skipped`` count reports since the runtime opened.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        records: RecordStore,
        config: CollectionConfig | None = None,
    ) -> None:
        self._supervisor = supervisor
        self._sessions = SessionRecords(records)
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
        session_id = await self._active(session_id)
        tool = validate.text("a tool name", tool, validate.MAX_NAME_BYTES)
        if error is not None:
            error = validate.text("a tool error", error, validate.MAX_REASON_BYTES, nul_ok=True)
        return await self._send(tool_report(session_id, tool, params, result, error))

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
        session_id = await self._active(session_id)
        agent = validate.text("an agent name", agent, validate.MAX_NAME_BYTES)
        if usage is not None:
            validate.json_like("usage", dict(usage))
        if model is not None:
            model = validate.text("a model name", model, validate.MAX_NAME_BYTES)
        return await self._send(agent_report(session_id, agent, output, model, usage))

    async def _send(self, report: Report) -> ArtifactRef | None:
        ref: ArtifactRef | None = await self._supervisor.ref(HOOKS_KIND, HOOKS_ID).ask(report)
        return ref

    async def _active(self, session_id: str) -> str:
        """Only active sessions collect."""
        session_id, sid = validate.session_id(session_id)
        loaded = (await self._sessions.load([sid]))[0]
        if loaded is None:
            raise SessionNotFoundError(f"Session not found: {session_id}")
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
    records: RecordStore,
    min_every_s: float = MIN_EVERY_S,
) -> Replays:
    """Register the shared hook actor's kind and the scheduled replays' one; the scheduled
    replays' front (repeating no faster than every ``min_every_s`` seconds)."""
    supervisor.register(
        ActorSpec(
            kind=HOOKS_KIND,
            factory=lambda _: HookActor(artifacts, hooks, collectors, supervisor),
            idle_timeout=None,
        )
    )
    supervisor.register(
        ActorSpec(
            kind=REPLAYS_KIND,
            factory=lambda _: ReplayActor(sessions, records),
            idle_timeout=None,
        )
    )
    return Replays(records, supervisor, supervisor.ref(REPLAYS_KIND, REPLAYS_ID), min_every_s)
