"""The session domain: the session actor, the deadline actor, and the session manager.

The records users handle (``SessionInfo``, ``SessionConfig``...) are public in ``satchel``.
"""

from ._check import check_sessions as check_sessions
from ._deadlines import DeadlineBoard as DeadlineBoard
from ._deadlines import DeadlineSweeper as DeadlineSweeper
from ._kinds import register_session_kinds as register_session_kinds
from ._session import SessionActor as SessionActor
