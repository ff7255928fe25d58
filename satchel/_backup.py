"""``restore_backup``: a backup made by ``Runtime.backup`` copied into a new data folder and
checked before it takes the folder's name."""

from __future__ import annotations

import os
import shutil

import anyio.to_thread

from satchel.actors._control import CheckResult
from satchel.runtime._errors import IntegrityError
from satchel.storage import copy_backup, finish_restore

from ._runtime import open_runtime


async def restore_backup(
    backup: str | os.PathLike[str], target: str | os.PathLike[str]
) -> CheckResult:
    """Copy the backup folder ``backup`` to the new (or empty) data folder ``target``, open
    it and check blobs and sessions; ``IntegrityError`` (and no folder) if they do not check
    clean. The backup itself is left as it was."""
    partial = await anyio.to_thread.run_sync(copy_backup, backup, target)
    try:
        async with open_runtime(partial) as rt:
            report = await rt.check()
        if not report.clean:
            raise IntegrityError(f"the backup does not check clean: {report}")
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(shutil.rmtree, partial, True)
        raise
    try:
        await anyio.to_thread.run_sync(finish_restore, partial, target)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(shutil.rmtree, partial, True)
        raise
    return report
