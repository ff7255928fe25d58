"""What the SatchelSession tests share."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from satchel import Runtime


def slowed(
    rt: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    seconds: float = 0.05,
    method: str = "append_events",
) -> list[Any]:
    """Make every ``rt.sessions.<method>`` wait ``seconds`` on the loop first (a caller
    cancelled meanwhile is cancelled mid-call, wherever the runtime would yield); the tasks
    that ran them, in order."""
    real = getattr(rt.sessions, method)
    tasks: list[Any] = []

    async def slow(*args: Any, **kwargs: Any) -> Any:
        tasks.append(asyncio.current_task())
        await asyncio.sleep(seconds)
        return await real(*args, **kwargs)

    monkeypatch.setattr(rt.sessions, method, slow)
    return tasks
