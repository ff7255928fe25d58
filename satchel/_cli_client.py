"""How a CLI command reaches a runtime: every command speaks the HTTP API, either to the
``satchel serve`` that holds the data folder (found through its discovery file) or to the
same app run in this process on a runtime it opens itself. One code path, two transports."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx

from satchel._cli_errors import ApiError
from satchel._cli_transport import StreamingASGITransport
from satchel._http import make_app
from satchel._runtime import open_runtime
from satchel._serve import find_server
from satchel.runtime._errors import StoreLockedError
from satchel.storage import BlobLimits

Params = Mapping[str, str | int | float | bool | Iterable[str] | None]


class Client:
    """An HTTP client on the runtime, raising ``ApiError`` for error answers."""

    def __init__(self, http: httpx.AsyncClient, where: str) -> None:
        self.http = http
        #: ``server <url>`` or ``local <folder>``: where the commands went.
        self.where = where

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Params | None = None,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request; its JSON answer (``None`` for 204)."""
        answer = await self.http.request(
            method,
            path,
            json=json,
            params=_params(params),
            content=content,
            headers=headers,
        )
        raise_for(answer)
        if answer.status_code == 204 or not answer.content:
            return None
        if answer.headers.get("content-type", "").startswith("application/json"):
            return answer.json()
        return answer.content

    @asynccontextmanager
    async def stream(
        self, method: str, path: str, *, params: Params | None = None
    ) -> AsyncIterator[httpx.Response]:
        """A streamed answer (its status checked first)."""
        async with self.http.stream(method, path, params=_params(params)) as answer:
            if answer.status_code >= 400:
                await answer.aread()
                raise_for(answer)
            yield answer


def raise_for(answer: httpx.Response) -> None:
    """``ApiError`` for an error answer."""
    if answer.status_code < 400:
        return
    try:
        error = answer.json()["error"]
        kind, message = str(error["kind"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        kind, message = "HTTPError", answer.text or answer.reason_phrase
    raise ApiError(kind, message, answer.status_code)


def _params(params: Params | None) -> dict[str, Any] | None:
    if params is None:
        return None
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            out[key] = value
        else:
            out[key] = list(value)
    return out


@asynccontextmanager
async def connect(
    folder: Path | None,
    *,
    durability: str | None = None,
    limits: BlobLimits | None = None,
    store: str | None = None,
    objects: str | None = None,
) -> AsyncIterator[Client]:
    """A client on the server holding ``folder``, else on a runtime opened here (in memory
    for ``None``; on the networked ``store``, with ``objects``, when it is given)."""
    if store is not None:
        async with _local(None, durability, limits, store, objects) as client:
            yield client
        return
    if folder is not None:
        found = find_server(folder)
        if found is not None:
            _refuse_limits(limits)
            async with _remote(found.url, found.token, durability) as client:
                yield client
            return
    async with AsyncExitStack() as stack:
        try:
            client = await stack.enter_async_context(_local(folder, durability, limits))
        except StoreLockedError:
            # The server may have taken the folder after the first look.
            found = None if folder is None else find_server(folder)
            if found is None:
                raise
            _refuse_limits(limits)
            client = await stack.enter_async_context(_remote(found.url, found.token, durability))
        yield client


def _refuse_limits(limits: BlobLimits | None) -> None:
    """A server holds the folder: its own limits apply, not this command's."""
    if limits is not None:
        raise ApiError(
            "InvalidArgument",
            "satchel serve holds this folder and applies its own artifact size limit; "
            "restart it with --max-artifact-bytes N",
            422,
        )


@asynccontextmanager
async def _remote(url: str, token: str, durability: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = httpx.Timeout(None, connect=10.0)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout) as http:
        client = Client(http, f"server {url}")
        if durability is not None:
            served = (await client.call("GET", "/control/statistics"))["durability"]
            if served != durability:
                raise ApiError(
                    "InvalidArgument",
                    f"the server holding this folder runs in {served} durability, not "
                    f"{durability}; restart it with --durability {durability}",
                    422,
                )
        yield client


@asynccontextmanager
async def _local(
    folder: Path | None,
    durability: str | None,
    limits: BlobLimits | None,
    store: str | None = None,
    objects: str | None = None,
) -> AsyncIterator[Client]:
    options: dict[str, Any] = {} if durability is None else {"durability": durability}
    options["limits"] = limits
    if store is None:
        store = "memory" if folder is None else "rocksdb"
    async with open_runtime(folder, store=store, objects=objects, **options) as rt:
        token = secrets.token_urlsafe(16)
        headers = {"Authorization": f"Bearer {token}"}
        async with anyio.create_task_group() as tasks:
            transport = StreamingASGITransport(make_app(rt, token), tasks)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://satchel.local", headers=headers
            ) as http:
                yield Client(http, f"local {rt.path or 'memory'}")
            tasks.cancel_scope.cancel()  # an answer left unread ends with the command
