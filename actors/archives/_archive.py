"""Session archives: one session, whole, as a self-contained tar stream, and back.

``export_session`` writes a session's record, variables, journal, artifact versions and each
distinct content once, with a manifest of BLAKE3 hashes; ``import_session`` verifies such an
archive and stores the session so that it reads back bit for bit the same. The format is
described in ``_archive_format``, the guarantees of each side in its own module.
"""

from ._archive_format import ArchiveReport as ArchiveReport
from ._archive_read import import_session as import_session
from ._archive_write import export_session as export_session
