"""A property-based fuzz of every endpoint in the OpenAPI document: any path parameters,
query, headers and body get an answer under 500, and every error has the error body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satchel import Runtime, open_runtime
from satchel._http import make_app

TOKEN = "fuzz-token-" + "x" * 20
MISSING = "00000000-0000-4000-8000-000000000000"
#: Bodies that took the server down once: deep nesting, huge integers, NaN.
NASTY = [b"[" * 100_000, b'{"name": ' + b"9" * 5000 + b"}", b'{"value": NaN}', b"\xff\xfe"]
#: Field names bodies are built from, beside those the document names.
FIELDS = ("name", "value", "fix", "at", "mode", "reason", "target", "permission", "every_s")


class Served:
    """An app on a runtime in a portal's event loop, and a client for it."""

    def __init__(self, portal: BlockingPortal, rt: Runtime, client: httpx.AsyncClient) -> None:
        self.portal = portal
        self.rt = rt
        self.client = client
        self.document: dict[str, Any] = self.call("GET", "/openapi.json").json()
        self.session = self.call("POST", "/sessions", content=b'{"name": "fuzzed"}').json()["id"]
        self.call("PUT", f"/sessions/{self.session}/artifacts/a.txt", content=b"hello")
        self.call("PUT", f"/sessions/{self.session}/state/k", content=b'{"value": 1}')

    def call(self, method: str, url: str, **options: Any) -> httpx.Response:
        """One request, made in the portal's loop."""
        answer: httpx.Response = self.portal.call(
            lambda: self.client.request(method, url, **options)
        )
        return answer


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """An app on an in-memory runtime, served in process on Trio."""
    with (
        start_blocking_portal("trio") as portal,
        portal.wrap_async_context_manager(open_runtime(store="memory")) as rt,
    ):
        transport = httpx.ASGITransport(app=make_app(rt, TOKEN))
        client = httpx.AsyncClient(
            transport=transport,
            base_url="http://satchel",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        with portal.wrap_async_context_manager(client):
            yield Served(portal, rt, client)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
texts = st.text(max_size=30) | st.sampled_from(["", "-1", "0", "1", "true", "9" * 5000, "%FF"])


def parameter(name: str, session: str) -> st.SearchStrategy[str]:
    """Values for a path parameter: real ones, missing ones, and any text."""
    known = {"session_id": [session, MISSING], "name": ["a.txt"], "key": ["k"], "kind": ["session"]}
    return st.sampled_from(known.get(name, [MISSING])) | texts.filter(lambda t: "/" not in t)


def body(operation: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """Bodies for an operation: objects of its fields (or others), any JSON, any bytes."""
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    names = sorted({*schema.get("properties", {}), *FIELDS})
    objects = st.dictionaries(st.sampled_from(names) | st.text(max_size=8), json_values, max_size=4)
    encoded = (objects | json_values).map(lambda v: json.dumps(v).encode())
    return encoded | st.binary(max_size=64) | st.sampled_from(NASTY)


@st.composite
def requests(draw: st.DrawFn, served: Served) -> tuple[str, str, dict[str, Any]]:
    """A request to some operation of the document."""
    paths = served.document["paths"]
    path = draw(st.sampled_from(sorted(paths)))
    method = draw(st.sampled_from(sorted(paths[path])))
    operation = paths[path][method]
    url, query = path, {}
    for param in operation.get("parameters", []):
        if param["in"] == "path":
            value = draw(parameter(param["name"], served.session))
            url = url.replace("{" + param["name"] + "}", quote(value, safe="%"))
        elif draw(st.booleans()):
            query[param["name"]] = draw(texts | st.integers(-(2**70), 2**70).map(str))
    headers: dict[str, str | bytes] = {}
    if draw(st.booleans()):
        headers["X-Satchel-Metadata"] = (
            draw(body(operation)).replace(b"\n", b" ").replace(b"\r", b" ")
        )
    if draw(st.booleans()):
        headers["X-Satchel-Session"] = draw(st.sampled_from([served.session, MISSING, "x"]))
    if draw(st.booleans()):
        headers["Range"] = draw(st.sampled_from(["bytes=0-1", "bytes=-1", "bytes=9-", "x"]))
    options = {"params": query, "headers": headers, "content": draw(body(operation))}
    return method.upper(), url, options


def test_no_request_is_a_500(served: Served) -> None:
    """No request made from the document gets a 5xx; every error has its kind and message."""

    @settings(
        max_examples=400,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests(served))
    def answer_is_typed(request: tuple[str, str, dict[str, Any]]) -> None:
        method, url, options = request
        answer = served.call(method, url, **options)
        assert answer.status_code < 500, (method, url, options, answer.text)
        if answer.status_code >= 400:
            error = answer.json()["error"]
            assert isinstance(error["kind"], str) and isinstance(error["message"], str)

    answer_is_typed()
