"""Google ADK's session and artifact services on satchel (install ``satchel[adk]``).

``SatchelSessionService`` is a ``BaseSessionService`` and ``SatchelArtifactService`` a
``BaseArtifactService``: pass them to an ADK ``Runner`` in place of ADK's own. Each is built
from an open runtime (``SatchelSessionService(rt)``) or on its own from a data folder
(``async with SatchelSessionService.from_path(path) as service:``). See docs/adk.md.
"""

from ._adk_artifacts import SatchelArtifactService as SatchelArtifactService
from ._adk_sessions import STALE_SESSION_MESSAGE as STALE_SESSION_MESSAGE
from ._adk_sessions import SatchelSessionService as SatchelSessionService

__all__ = ["STALE_SESSION_MESSAGE", "SatchelArtifactService", "SatchelSessionService"]
