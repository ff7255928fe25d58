"""The runtime-wide ``State`` of host Lua scripts: JSON-like values by key, shared by every
host script of a data folder, one write batch per change."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel

from satchel.runtime._errors import ValidationError
from satchel.storage import Batch, RecordStore
from satchel.storage._keys import HOST_STATE

from .. import _validate as validate
from ._session_layout import decode_value, encode_value

#: The largest value one key may hold (encoded).
MAX_VALUE_BYTES = 1 << 20


class HostState:
    """``State.get/set/delete/list`` of host scripts."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def get(self, key: str) -> Any:
        """The value of ``key``, or ``None``."""
        raw = await self._records.get(HOST_STATE + validate.state_key(key))
        await anyio.lowlevel.checkpoint()
        return None if raw is None else decode_value(raw)

    async def set(self, key: str, value: Any) -> None:
        """Keep ``value`` under ``key``."""
        name = validate.state_key(key)
        validate.json_like(f"state {key!r}", value)
        encoded = validate.encoded(f"state {key!r}", encode_value, value)
        if len(encoded) > MAX_VALUE_BYTES:
            raise ValidationError(
                f"state {key!r} encodes to {len(encoded)} bytes; the limit is {MAX_VALUE_BYTES}"
            )
        batch = Batch()
        batch.put(HOST_STATE + name, encoded)
        await self._records.write(batch)
        await anyio.lowlevel.checkpoint()

    async def delete(self, key: str) -> None:
        """Forget ``key`` (nothing happens if it is not there)."""
        batch = Batch()
        batch.delete(HOST_STATE + validate.state_key(key))
        await self._records.write(batch)
        await anyio.lowlevel.checkpoint()

    async def keys(self) -> list[str]:
        """Every key, in byte order."""
        found = [
            key[len(HOST_STATE) :].decode()
            for key, _ in await self._records.scan(HOST_STATE, HOST_STATE + b"\xff")
        ]
        await anyio.lowlevel.checkpoint()
        return found
