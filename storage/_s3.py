"""The object port on an S3 API server (AWS S3, SeaweedFS, MinIO, ...), through boto3.

Named by a URL: ``s3://bucket[/prefix]?endpoint=http://host:port&region=…``. Credentials come
from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a profile, …);
a server that checks none (SeaweedFS with no identities) gets placeholder ones. The bucket
is created if it is missing. Addressing is path-style, which every S3 server accepts.

boto3 is synchronous and thread-safe: each call runs in a worker thread. The hop costs about
0.1 ms here, against 4-20 ms for an S3 round trip (see ``perf/``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, final
from urllib.parse import parse_qs, urlsplit

import anyio

from satchel.runtime._errors import (
    InvalidArgumentError,
    ObjectNotFoundError,
    StoreClosedError,
    StoreUnavailableError,
    ValidationError,
)

T = TypeVar("T")

#: S3 error codes that mean "no such object".
_MISSING = {"NoSuchKey", "404", "NotFound"}


@final
class S3Location:
    """Where objects go: endpoint, bucket, key prefix, region."""

    __slots__ = ("bucket", "endpoint", "prefix", "region")

    def __init__(self, bucket: str, prefix: str, endpoint: str | None, region: str) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        self.region = region

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """The location an ``s3://bucket[/prefix]?endpoint=…&region=…`` URL names."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValidationError(
                f"an object store URL looks like s3://bucket?endpoint=…, not {url!r}"
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise ValidationError(f"unknown object store URL parameters: {sorted(unknown)}")
        prefix = parts.path.strip("/")
        return cls(
            parts.netloc,
            prefix + "/" if prefix else "",
            query.get("endpoint"),
            query.get("region", os.environ.get("AWS_REGION", "us-east-1")),
        )


def _error_code(error: BaseException) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code"))
    return None


@final
class S3Objects:
    """``ObjectStore`` on an S3 bucket (see the module docstring). Open with ``open``."""

    def __init__(self, client: Any, location: S3Location) -> None:
        self._client = client
        self._where = location
        self._closed = False

    @classmethod
    async def open(cls, url: str) -> S3Objects:
        """Connect to the bucket ``url`` names, creating it if it is missing."""
        location = S3Location.parse(url)

        def connect() -> Any:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session()
            credentials = {}
            if session.get_credentials() is None:  # a server that checks none
                credentials = {"aws_access_key_id": "satchel", "aws_secret_access_key": "satchel"}
            config = Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=32,
            )
            client = session.client(
                "s3",
                endpoint_url=location.endpoint,
                region_name=location.region,
                config=config,
                **credentials,
            )
            try:
                client.head_bucket(Bucket=location.bucket)
            except Exception as error:
                if _error_code(error) not in {"404", "NoSuchBucket", "NotFound"}:
                    raise
                client.create_bucket(Bucket=location.bucket)
            return client

        objects = cls(None, location)
        objects._client = await objects._run(connect)
        return objects

    async def _run(self, call: Callable[[], T]) -> T:
        if self._closed:
            raise StoreClosedError("the object store is closed")
        try:
            return await anyio.to_thread.run_sync(call)
        except AttributeError:
            if self._client is None:  # closed while the call waited for its thread
                raise StoreClosedError("the object store is closed") from None
            raise
        except ObjectNotFoundError:
            raise
        except Exception as error:
            raise self._translate(error) from error

    @staticmethod
    def _translate(error: Exception) -> Exception:
        import botocore.exceptions as bce

        if _error_code(error) in _MISSING:
            return ObjectNotFoundError("no such object")
        if isinstance(error, bce.ClientError):
            return StoreUnavailableError(f"the object store refused the call: {error}")
        if isinstance(error, bce.BotoCoreError):  # connection lost, timed out, cut short...
            return StoreUnavailableError(f"the object store did not answer: {error}")
        return error

    def _key(self, key: str) -> str:
        if type(key) is not str or not key:
            raise InvalidArgumentError(f"an object key must be a non-empty str, not {key!r}")
        return self._where.prefix + key

    async def put(self, key: str, data: bytes) -> None:
        name, body = self._key(key), bytes(data)
        await self._run(
            lambda: self._client.put_object(Bucket=self._where.bucket, Key=name, Body=body)
        )

    async def get(self, key: str) -> bytes:
        name = self._key(key)

        def get() -> bytes:
            answer = self._client.get_object(Bucket=self._where.bucket, Key=name)
            return answer["Body"].read()  # type: ignore[no-any-return]

        try:
            return await self._run(get)
        except ObjectNotFoundError:
            raise ObjectNotFoundError(f"no object {key!r}") from None

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise InvalidArgumentError("start and length must not be negative")
        if length == 0:
            await self.get_range(key, start, 1)  # still refuses a missing object
            return b""
        name = self._key(key)

        def get() -> bytes:
            try:
                answer = self._client.get_object(
                    Bucket=self._where.bucket, Key=name, Range=f"bytes={start}-{start + length - 1}"
                )
            except Exception as error:
                if _error_code(error) == "InvalidRange":  # start at or past the end
                    self._client.head_object(Bucket=self._where.bucket, Key=name)
                    return b""
                raise
            return answer["Body"].read()  # type: ignore[no-any-return]

        try:
            return await self._run(get)
        except ObjectNotFoundError:
            raise ObjectNotFoundError(f"no object {key!r}") from None

    async def delete(self, key: str) -> None:
        name = self._key(key)
        await self._run(lambda: self._client.delete_object(Bucket=self._where.bucket, Key=name))

    async def list(self, prefix: str = "") -> AsyncIterator[str]:
        full = self._where.prefix + prefix
        start_after = ""
        strip = len(self._where.prefix)
        while True:

            def page(after: str = start_after) -> dict[str, Any]:
                args = {"Bucket": self._where.bucket, "Prefix": full, "MaxKeys": 1000}
                if after:
                    args["StartAfter"] = after
                return self._client.list_objects_v2(**args)  # type: ignore[no-any-return]

            answer = await self._run(page)
            keys = [item["Key"] for item in answer.get("Contents", [])]
            for name in keys:
                yield name[strip:]
            if not keys or not answer.get("IsTruncated"):
                return
            start_after = keys[-1]

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            client, self._client = self._client, None
            if client is not None:
                await anyio.to_thread.run_sync(client.close)
