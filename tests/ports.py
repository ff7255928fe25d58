"""Record and object stores of every backend, for the port contract suites.

PostgreSQL and S3 come from servers named by ``SATCHEL_TEST_POSTGRES`` (a ``postgresql://``
URL) and ``SATCHEL_TEST_S3`` (an ``s3://bucket?endpoint=…`` URL); ``.ci/servers start``
starts both on loopback and prints these. Without them, those backends are skipped, unless
``SATCHEL_TEST_SERVERS=required`` (``.ci/run`` sets it), which fails instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from satchel.storage import (
    GroupCommit,
    LocalObjects,
    LocalRecords,
    MemoryStore,
    ObjectStore,
    PostgresLeases,
    PostgresRecords,
    PostgresReminders,
    RecordStore,
    RocksStore,
    S3Objects,
    SplitRecords,
)

RECORD_BACKENDS = ["memory", "rocksdb", "rocksdb-machine", "postgresql", "split", "postgresql+s3"]
#: What ``SplitRecords`` makes an object in the tests: every blob-space value of 16 bytes on.
SPLIT_LARGE = 16
OBJECT_BACKENDS = ["memory", "rocksdb", "rocksdb-files", "s3"]


def server_url(variable: str) -> str:
    """The URL of a test server, skipping (or failing, when servers are required) without."""
    url = os.environ.get(variable)
    if url:
        return url
    message = f"{variable} is not set (start the servers with `.ci/servers start`)"
    if os.environ.get("SATCHEL_TEST_SERVERS") == "required":
        pytest.fail(message)
    pytest.skip(message)


@asynccontextmanager
async def open_records(backend: str, folder: Path) -> AsyncIterator[RecordStore]:
    """A fresh, empty record store of ``backend``."""
    if backend == "postgresql":
        url = server_url("SATCHEL_TEST_POSTGRES")
        records = await PostgresRecords.open(url, table=f"t_{uuid.uuid4().hex[:16]}")
        try:
            yield records
        finally:
            await records.drop()
            await records.aclose()
        return
    if backend == "split":
        kv = MemoryStore()
        objects = LocalObjects(MemoryStore())
        yield SplitRecords(LocalRecords(kv), objects, namespace="test", large=SPLIT_LARGE)
        return
    if backend == "postgresql+s3":
        async with open_records("postgresql", folder) as rows, open_objects("s3", folder) as big:
            yield await SplitRecords.open(rows, big, large=SPLIT_LARGE)
        return
    kv = MemoryStore() if backend == "memory" else RocksStore(folder / "db")
    group = GroupCommit(kv) if backend == "rocksdb-machine" else None
    local = LocalRecords(kv, group)
    try:
        yield local
    finally:
        await local.aclose()


@asynccontextmanager
async def open_objects(backend: str, folder: Path) -> AsyncIterator[ObjectStore]:
    """A fresh, empty object store of ``backend``."""
    if backend == "s3":
        base = server_url("SATCHEL_TEST_S3")
        bucket, _, query = base.partition("?")
        objects: ObjectStore = await S3Objects.open(
            f"{bucket.rstrip('/')}/{uuid.uuid4().hex}?{query}"
        )
        try:
            yield objects
        finally:
            async for key in objects.list():
                await objects.delete(key)
            await objects.aclose()
        return
    if backend == "memory":
        kv: MemoryStore | RocksStore = MemoryStore()
    else:
        every_value_a_file = 1 if backend == "rocksdb-files" else 64 * 1024
        kv = RocksStore(folder / "db", file_values_from=every_value_a_file)
    try:
        yield LocalObjects(kv)
    finally:
        kv.close()


def networked_place() -> tuple[str, str, str]:
    """A PostgreSQL store URL naming a table of its own, an S3 URL naming a bucket folder of
    its own, and the table (to ``drop_table`` afterwards)."""
    postgres = server_url("SATCHEL_TEST_POSTGRES")
    bucket, _, query = server_url("SATCHEL_TEST_S3").partition("?")
    table = f"t_{uuid.uuid4().hex[:16]}"
    store = f"{postgres}{'&' if '?' in postgres else '?'}satchel_table={table}"
    return store, f"{bucket}/{table}?{query}", table


async def drop_table(table: str) -> None:
    """Drop a table ``networked_place`` named (with its commit function, and the node and
    lease tables of a cluster on it)."""
    url = server_url("SATCHEL_TEST_POSTGRES")
    records = await PostgresRecords.open(url, table=table)
    leases = await PostgresLeases.open(url, table=table)
    await leases.drop()
    await leases.aclose()
    reminders = await PostgresReminders.open(url, table=table, node="drop", mark_s=1)
    await reminders.drop()
    await reminders.aclose()
    await records.drop()
    await records.aclose()
