"""Placement: where an actor may be active, when several runtimes share one store.

On one node every actor is placed locally and no placement is set. In a cluster, a placement
claims an actor for this node before the supervisor activates it (for a session: a lease in
the shared database), and refuses, by raising, when another node holds it; it hears when the
actor has stopped here, so the claim can be let go.
"""

from __future__ import annotations

from typing import Protocol


class Placement(Protocol):
    """What the supervisor asks of a placement (see the module docstring)."""

    def places(self, kind: str) -> bool:
        """Whether actors of ``kind`` are claimed (others are always local)."""
        ...

    def holds(self, kind: str, actor_id: str) -> bool:
        """Whether this node holds the claim on the actor now."""
        ...

    async def claim(self, kind: str, actor_id: str) -> None:
        """Claim the actor for this node, or raise why not (another node holds it)."""
        ...

    def vacated(self, kind: str, actor_id: str) -> None:
        """The actor stopped here (passivated, failed or shut down): let go of its claim."""
        ...

    async def settled(self, kind: str, actor_id: str) -> None:
        """Return once the claim of a vacated actor is let go (another node may take it)."""
        ...
