"""What operators watch a server with: /health, /metrics, the access log and the log level."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from satchel import ValidationError, open_runtime
from satchel._serve import ServerInfo, serve

from .test_http import kind


@asynccontextmanager
async def serving(tmp_path: Path, **options: Any) -> AsyncIterator[tuple[str, str]]:
    """A server with ``options``; its url and token."""
    async with open_runtime(tmp_path / "data") as rt, anyio.create_task_group() as tasks:
        info: ServerInfo = await tasks.start(partial(serve, **options), rt, "127.0.0.1", 0)
        yield info.url, info.token
        tasks.cancel_scope.cancel()


async def test_health_needs_no_token(tmp_path: Path) -> None:
    """GET /health answers without a token; everything else still needs it."""
    async with serving(tmp_path) as (url, _), httpx.AsyncClient(base_url=url) as anonymous:
        answer = await anonymous.get("/health")
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
        assert kind(await anonymous.get("/sessions")) == (401, "Unauthorized")
        assert kind(await anonymous.get("/metrics")) == (401, "Unauthorized")


async def test_metrics_count_requests_in_prometheus_text(tmp_path: Path) -> None:
    """/metrics (with the token) counts requests by method, route template and status, and
    gives the runtime's counters, in Prometheus' text format."""
    async with serving(tmp_path) as (url, token):
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers) as client:
            sid = (await client.post("/sessions", json={})).json()["id"]
            await client.get(f"/sessions/{sid}")
            await client.get(f"/sessions/{sid}")
            await client.get("/no/such/route")
            answer = await client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = answer.text.splitlines()
    assert 'satchel_http_requests_total{method="POST",route="/sessions",status="201"} 1' in lines
    assert (
        'satchel_http_requests_total{method="GET",route="/sessions/{session_id}",status="200"} 2'
        in lines
    )
    assert 'satchel_http_requests_total{method="GET",route="unmatched",status="404"} 1' in lines
    assert "# TYPE satchel_live_actors gauge" in lines
    assert any(line.startswith("satchel_supervisor_messages_handled ") for line in lines)
    for line in lines:  # every sample is a name, optional labels, and a number
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


async def test_metrics_can_be_open(tmp_path: Path) -> None:
    """With metrics_open, /metrics needs no token (and the rest still does)."""
    async with (
        serving(tmp_path, metrics_open=True) as (url, _),
        httpx.AsyncClient(base_url=url) as anonymous,
    ):
        assert (await anonymous.get("/metrics")).status_code == 200
        assert kind(await anonymous.get("/sessions")) == (401, "Unauthorized")


async def test_each_request_is_in_the_access_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each request is one line in satchel.http.access: method, path, status, bytes sent."""
    caplog.set_level(logging.INFO, "satchel.http.access")
    async with serving(tmp_path, log_level=None) as (url, _), httpx.AsyncClient() as client:
        await client.get(f"{url}/sessions?limit=1")
        await client.get(f"{url}/health")
    lines = [r.getMessage() for r in caplog.records if r.name == "satchel.http.access"]
    assert len(lines) == 2
    assert '"GET /sessions?limit=1" 401 ' in lines[0]
    assert '"GET /health" 200 15 ' in lines[1]


async def test_the_log_level_sends_satchels_logs_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """At info the access log reaches stderr; at warning it does not; both end with serve."""
    for level, shown in (("info", True), ("warning", False)):
        async with serving(tmp_path, log_level=level) as (url, _), httpx.AsyncClient() as client:
            await client.get(f"{url}/health")
        assert ('"GET /health" 200' in capsys.readouterr().err) is shown, level
    assert not logging.getLogger("satchel").handlers


async def test_a_bad_log_level_is_refused(tmp_path: Path) -> None:
    """A log level other than debug, info, warning or error is a ValidationError."""
    async with open_runtime(store="memory") as rt:
        with pytest.raises(ValidationError, match="log_level"):
            await serve(rt, "127.0.0.1", 0, log_level="loud")
