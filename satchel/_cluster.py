"""A runtime as one node of a cluster: its placement of sessions, opened with the runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from satchel.actors.cluster import Node, SessionPlacement
from satchel.runtime._errors import InvalidArgumentError, ValidationError
from satchel.storage import is_networked
from satchel.storage._open_ports import split_table


@asynccontextmanager
async def open_placement(store: str, node: Node | None) -> AsyncIterator[SessionPlacement | None]:
    """The placement of ``node`` on the PostgreSQL store ``store`` (``None`` without a node:
    every session is served here); its leases are released on exit."""
    if node is None:
        yield None
        return
    if not isinstance(node, Node):
        raise InvalidArgumentError(f"node must be a satchel.Node, not {type(node).__name__}")
    if not is_networked(store):
        raise ValidationError("a cluster node (node=) runs on a postgresql:// store only")
    conninfo, table = split_table(store)
    placement = await SessionPlacement.open(conninfo, table, node)
    try:
        yield placement
    finally:
        with anyio.CancelScope(shield=True):
            await placement.aclose()
