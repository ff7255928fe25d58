"""satchel for asyncio hosts: ``async with satchel.aio.open_runtime() as rt: ...``."""

from ._aio import AioProxy as AioProxy
from ._aio import open_runtime as open_runtime
