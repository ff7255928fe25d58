"""The session domain: the session actor, the deadline actor, and the session manager.

The records users handle (``SessionInfo``, ``SessionConfig``...) are public in ``satchel``.
"""

from ._check import check_sessions as check_sessions
from ._deadlines import DeadlineBoard as DeadlineBoard
from ._deadlines import DeadlineSweeper as DeadlineSweeper
from ._kinds import session_kinds as session_kinds
from ._session import SessionActor as SessionActor
