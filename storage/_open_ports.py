"""Networked stores named by URL: ``postgresql://…`` records, ``s3://…`` objects.

``open_networked(store, objects)`` gives the ``RecordStore`` a runtime runs on: PostgreSQL
alone (every blob chunk inline in its table), or PostgreSQL with large blob chunks as objects
in an S3 bucket (``SplitRecords``). Besides libpq's own parameters, a PostgreSQL URL may
carry ``satchel_table`` (the table's name, ``satchel_records`` by default), which is taken
out before the URL reaches the driver.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from satchel.runtime._errors import ValidationError

from ._ports import RecordStore
from ._postgres import PostgresRecords
from ._s3 import S3Objects
from ._split import FORMAT_KEY, SplitRecords

_TABLE = "satchel_table"


def is_networked(store: str) -> bool:
    """Whether ``store`` names a networked record store (a ``postgresql://`` URL)."""
    return store.startswith(("postgresql://", "postgres://"))


def split_table(url: str) -> tuple[str, str]:
    """``url`` without its ``satchel_table`` parameter, and the table it names."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    tables = [value for key, value in query if key == _TABLE]
    rest = [(key, value) for key, value in query if key != _TABLE]
    return urlunsplit(parts._replace(query=urlencode(rest))), (tables or ["satchel_records"])[-1]


async def open_networked(store: str, objects: str | None = None) -> RecordStore:
    """The record store ``store`` names (``postgresql://…``), with blob values of 64 KiB and
    more in the object store ``objects`` names (``s3://bucket?endpoint=…``) when given."""
    if not is_networked(store):
        raise ValidationError(f"a networked store is a postgresql:// URL, not {store!r}")
    if objects is not None and not objects.startswith("s3://"):
        raise ValidationError(f"an object store is an s3:// URL, not {objects!r}")
    conninfo, table = split_table(store)
    records = await PostgresRecords.open(conninfo, table=table)
    try:
        if objects is None:
            if await records.get(FORMAT_KEY) is not None:
                raise ValidationError(
                    "this store keeps its large blob values in an object store: give its "
                    "s3:// URL too"
                )
            return records
        bucket = await S3Objects.open(objects)
        try:
            return await SplitRecords.open(records, bucket)
        except BaseException:
            await bucket.aclose()
            raise
    except BaseException:
        await records.aclose()
        raise
