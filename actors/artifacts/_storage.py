"""The storage actor: hashes, compresses, deduplicates and writes blob content for sessions.

Sessions send it content (whole, or a stream piece by piece) and get back a staged blob; the
session then commits its records and the blob reference in one batch. Uploads from many
sessions interleave piece by piece, so one slow stream does not hold up the others.
"""

from __future__ import annotations

import itertools
from typing import Any, final

import anyio
import attrs

from satchel.runtime import Actor
from satchel.runtime._errors import ValidationError
from satchel.storage import BlobStore, BlobWriter, StagedBlob

STORAGE_KIND = "storage"
STORAGE_ID = "blobs"


@attrs.frozen
class StageBytes:
    """Hash and stage whole content."""

    content: bytes


@attrs.frozen
class OpenUpload:
    """Start a streamed upload; answers its number."""


@attrs.frozen
class AppendUpload:
    """Add one piece to an upload."""

    upload: int
    piece: bytes


@attrs.frozen
class FinishUpload:
    """End an upload; answers its staged blob."""

    upload: int


@attrs.frozen
class AbortUpload:
    """Drop an upload and what it wrote."""

    upload: int


@attrs.frozen
class DiscardStaged:
    """Drop a staged blob that will not be committed."""

    staged: StagedBlob


@final
class StorageActor(Actor[Any]):
    """The one storage actor of a runtime; ``factory`` of the ``storage`` kind."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs
        self._uploads: dict[int, BlobWriter] = {}
        self._numbers = itertools.count(1)

    async def on_stop(self) -> None:
        """Uploads cannot outlive the actor: drop what they wrote."""
        for writer in self._uploads.values():
            await writer.abort()
        self._uploads.clear()

    async def receive(self, message: Any) -> Any:
        """Stage content, or drive one upload."""
        if isinstance(message, StageBytes):
            return await self._blobs.put(message.content)
        if isinstance(message, OpenUpload):
            number = next(self._numbers)
            self._uploads[number] = self._blobs.writer()
            return number
        if isinstance(message, AppendUpload):
            writer = self._writer(message.upload)
            try:
                await writer.add(message.piece)
            except BaseException:
                # Over the size limit, or a bad piece: the upload cannot go on.
                del self._uploads[message.upload]
                with anyio.CancelScope(shield=True):  # its chunks go, even when cancelled
                    await writer.abort()
                raise
            return None
        if isinstance(message, FinishUpload):
            writer = self._writer(message.upload)
            del self._uploads[message.upload]
            return await writer.finish()
        if isinstance(message, AbortUpload):
            if message.upload in self._uploads:
                await self._uploads.pop(message.upload).abort()
            return None
        if isinstance(message, DiscardStaged):
            await self._blobs.discard(message.staged)
            return None
        raise TypeError(f"the storage actor takes no {type(message).__name__}")

    def _writer(self, number: int) -> BlobWriter:
        writer = self._uploads.get(number)
        if writer is None:
            raise ValidationError(f"no upload {number} is open")
        return writer
