"""satchel: a runtime for long-running agent sessions and the artifacts they produce."""

from ._errors import ActorCrashedError as ActorCrashedError
from ._errors import ActorFailedError as ActorFailedError
from ._errors import ActorNotFoundError as ActorNotFoundError
from ._errors import BlobNotFoundError as BlobNotFoundError
from ._errors import IntegrityError as IntegrityError
from ._errors import InvalidArgumentError as InvalidArgumentError
from ._errors import MailboxFullError as MailboxFullError
from ._errors import RecordVersionError as RecordVersionError
from ._errors import RuntimeClosedError as RuntimeClosedError
from ._errors import SatchelError as SatchelError
from ._errors import StoreClosedError as StoreClosedError
from ._errors import StoreLockedError as StoreLockedError
from ._errors import ValidationError as ValidationError
from ._runtime import Runtime as Runtime
from ._runtime import RuntimeStatistics as RuntimeStatistics
from ._runtime import open_runtime as open_runtime
from ._version import __version__ as __version__
