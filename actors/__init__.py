"""The session domain: the session actor, the deadline actor, and the session manager.

The records users handle (``SessionInfo``, ``SessionConfig``...) are public in ``satchel``.
"""

from ._check import check_sessions as check_sessions
from ._kinds import register_session_kinds as register_session_kinds
from .archives._archive import ArchiveReport as ArchiveReport
from .archives._archive import export_session as export_session
from .archives._archive import import_session as import_session
from .sessions._deadlines import DeadlineBoard as DeadlineBoard
from .sessions._deadlines import DeadlineSweeper as DeadlineSweeper
from .sessions._session import SessionActor as SessionActor
