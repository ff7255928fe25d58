"""The OpenAPI document is typed and valid, and a client generated from it works: each
operation is a method named by its operationId, and every answer fits its schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from satchel import open_runtime
from satchel._http_routes import ENDPOINTS
from satchel._serve import ServerInfo, serve


class GeneratedClient:
    """A client made from an OpenAPI document: ``await client.<operationId>(**arguments)``
    fills the path and query parameters the document names from ``arguments``, sends
    ``body`` (JSON) or ``content`` (bytes), and checks the answer against its schema."""

    def __init__(self, http: httpx.AsyncClient, document: dict[str, Any]) -> None:
        self.http = http
        self.document = document
        self.operations = {
            operation["operationId"]: (method.upper(), path, operation)
            for path, methods in document["paths"].items()
            for method, operation in methods.items()
        }

    def __getattr__(self, operation_id: str) -> Any:
        method, path, operation = self.operations[operation_id]

        async def call(body: Any = None, content: bytes | None = None, **arguments: Any) -> Any:
            url, query = path, {}
            for parameter in operation["parameters"]:
                value = arguments.pop(parameter["name"], None)
                if parameter["in"] == "path":
                    url = url.replace("{" + parameter["name"] + "}", str(value))
                elif value is not None:
                    query[parameter["name"]] = value
            assert not arguments, f"{operation_id} takes no {sorted(arguments)}"
            answer = await self.http.request(method, url, params=query, json=body, content=content)
            return self.checked(operation, answer)

        return call

    def checked(self, operation: dict[str, Any], answer: httpx.Response) -> Any:
        """The answer's JSON, checked against the schema the document gives its status."""
        responses = operation["responses"]
        spec = responses.get(str(answer.status_code), responses["default"])
        assert answer.is_success, answer.text
        media = spec.get("content", {}).get("application/json")
        if media is None:
            return answer.content
        schema = {**media["schema"], "components": self.document["components"]}
        OAS31Validator(schema).validate(answer.json())
        return answer.json()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[GeneratedClient]:
    """A client generated from the served document."""
    async with open_runtime(tmp_path / "data") as rt, anyio.create_task_group() as tasks:
        info: ServerInfo = await tasks.start(serve, rt, "127.0.0.1", 0)
        headers = {"Authorization": f"Bearer {info.token}"}
        async with httpx.AsyncClient(base_url=info.url, headers=headers) as http:
            document = (await http.get("/openapi.json")).json()
            yield GeneratedClient(http, document)
        tasks.cancel_scope.cancel()


def test_the_document_is_valid_openapi() -> None:
    """The document validates as OpenAPI 3.1."""
    from satchel._http_openapi import openapi

    validate(openapi(ENDPOINTS))


def test_the_document_is_typed() -> None:
    """Bodies, answers and query parameters have types taken from the code."""
    from satchel._http_openapi import openapi

    document = openapi(ENDPOINTS)
    listing = document["paths"]["/sessions"]["get"]
    types = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert types["limit"] == {"type": "integer"} and types["descending"] == {"type": "boolean"}
    assert types["tags"] == {"type": "array", "items": {"type": "string"}}
    answer = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"type": "array", "items": {"$ref": "#/components/schemas/SessionInfo"}}
    info = document["components"]["schemas"]["SessionInfo"]["properties"]
    assert info["created_at"] == {"type": "string", "format": "date-time"}
    create = document["paths"]["/sessions"]["post"]["requestBody"]["content"]
    fields = create["application/json"]["schema"]["properties"]
    assert fields["name"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    check = document["paths"]["/control/check"]["post"]["requestBody"]["content"]
    assert check["application/json"]["schema"]["properties"] == {"fix": {"type": "boolean"}}
    assert document["paths"]["/health"]["get"]["security"] == []


async def test_a_generated_client_works(client: GeneratedClient) -> None:
    """Sessions, variables, artifacts, replay and control, called through the generated
    client by operationId; each answer fits the schema of its status."""
    sid = (await client.create_session(body={"name": "typed", "tags": ["t"]}))["id"]
    assert (await client.get_session(session_id=sid))["name"] == "typed"
    assert [s["id"] for s in await client.list_sessions(tags=["t"], limit=5)] == [sid]
    await client.put_variable(session_id=sid, key="k", body={"value": {"n": 1}})
    assert (await client.get_variable(session_id=sid, key="k"))["value"] == {"n": 1}
    assert (await client.get_variables(session_id=sid))["variables"] == {"k": {"n": 1}}
    ref = await client.put_artifact(session_id=sid, name="a.txt", content=b"hi", type="tool_result")
    assert ref["version"] == 1
    assert (await client.get_artifact_metadata(session_id=sid, name="a.txt"))["size"] == 2
    assert len(await client.list_versions(session_id=sid, name="a.txt")) == 1
    assert len(await client.list_artifacts(session_id=sid)) == 1
    assert len(await client.query_artifacts(body={"session_id": sid})) == 1
    assert await client.get_artifact(session_id=sid, name="a.txt") == b"hi"
    assert len(await client.get_timeline(session_id=sid, offset=0, limit=10)) >= 2
    await client.get_replay_metadata(session_id=sid)
    await client.replay_session(session_id=sid, body={"mode": "debug"})
    forked = (await client.fork_session(session_id=sid, body={"name": "fork"}))["id"]
    assert (await client.suspend_session(session_id=forked))["status"] == "suspended"
    await client.get_statistics()
    await client.list_actors(kind="session")
    await client.inspect_actor(kind="session", actor_id=sid)
    assert (await client.run_check(body={"fix": False}))["clean"] is True
    await client.run_gc()
    schedule = (await client.add_schedule(body={"session_id": sid, "every_s": 60}))["id"]
    assert len(await client.list_schedules(session_id=sid)) == 1
    assert isinstance(await client.schedule_results(schedule_id=schedule), list)
    assert (await client.health())["status"] == "ok"
    assert b"satchel_http_requests_total" in await client.metrics()
