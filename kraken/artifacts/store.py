"""Where artifact and cache bytes live: content-addressed blobs (named by their sha256).

- ``LocalStore`` (the default): ``<data_dir>/artifacts/blobs/ab/cd/<sha256>``;
- ``S3Store``: an S3-compatible bucket (``KRAKEN_ARTIFACTS_STORE=s3`` and the ``KRAKEN_S3_*`` settings).

Bytes are streamed both ways in chunks; nothing holds a whole file in memory.  An upload goes
to a temporary name while it is hashed and counted, then is renamed to its hash.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kraken.core.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # bytes per read or write
S3_PART = 8 << 20  # multipart upload part size (S3's minimum is 5 MiB)


class TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than the limit of {limit} bytes")
        self.limit = limit


class BlobMissing(Exception):
    pass


class BlobStore(abc.ABC):
    @abc.abstractmethod
    async def put(self, chunks: AsyncIterator[bytes], max_size: int | None = None) -> tuple[str, int]:
        """Store the stream; return (sha256, size).  ``TooLarge`` (nothing kept) past ``max_size``."""

    @abc.abstractmethod
    def get(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The blob's bytes from ``start`` to ``end`` (inclusive; None: to the end)."""

    @abc.abstractmethod
    async def exists(self, sha256: str) -> bool: ...

    @abc.abstractmethod
    async def delete(self, sha256: str) -> None: ...

    async def close(self) -> None:
        return None


async def _rechunk(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """Regroup a stream of small chunks into chunks of about ``size`` bytes (fewer thread hops)."""
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        if len(buf) >= size:
            yield bytes(buf)
            buf.clear()
    if buf:
        yield bytes(buf)


class LocalStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        (root / "blobs").mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256[:2] / sha256[2:4] / sha256

    async def put(self, chunks: AsyncIterator[bytes], max_size: int | None = None) -> tuple[str, int]:
        tmp = self.root / "tmp" / uuid.uuid4().hex
        digest = hashlib.sha256()
        size = 0
        fh = await asyncio.to_thread(tmp.open, "wb")
        try:
            async for chunk in _rechunk(chunks, CHUNK):
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise TooLarge(max_size)
                await asyncio.to_thread(_write_hash, fh, digest, chunk)
            await asyncio.to_thread(fh.close)
            sha = digest.hexdigest()
            final = self.path(sha)
            await asyncio.to_thread(_publish, tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):  # closing flushes: on a full volume that fails too
                fh.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return sha, size

    async def get(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        try:
            fh = await asyncio.to_thread(self.path(sha256).open, "rb")
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        try:
            await asyncio.to_thread(fh.seek, start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                chunk = await asyncio.to_thread(fh.read, CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    break
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            fh.close()

    async def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    async def delete(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.path(sha256).unlink)


def _write_hash(fh: Any, digest: Any, chunk: bytes) -> None:
    digest.update(chunk)
    fh.write(chunk)


def _publish(tmp: Path, final: Path) -> None:
    if final.exists():  # the same bytes are stored already
        tmp.unlink()
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)


class S3Store(BlobStore):
    """An S3-compatible bucket (AWS, MinIO, Ceph, moto...); boto3 calls run in threads."""

    def __init__(self, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix.strip("/") + "/" if settings.s3_prefix.strip("/") else ""
        self.client: S3Client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key,
            aws_secret_access_key=settings.s3_secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
        )
        self._bucket_checked = False

    def key(self, sha256: str) -> str:
        return f"{self.prefix}blobs/{sha256[:2]}/{sha256}"

    async def _ensure_bucket(self) -> None:
        if self._bucket_checked:
            return
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)
        except ClientError:
            with contextlib.suppress(ClientError):  # made meanwhile by another process
                await asyncio.to_thread(self.client.create_bucket, Bucket=self.bucket)
        self._bucket_checked = True

    async def put(self, chunks: AsyncIterator[bytes], max_size: int | None = None) -> tuple[str, int]:
        await self._ensure_bucket()
        tmp_key = f"{self.prefix}tmp/{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for part in _rechunk(chunks, S3_PART):
                size += len(part)
                if max_size is not None and size > max_size:
                    raise TooLarge(max_size)
                digest.update(part)
                if upload_id is None:
                    created = await asyncio.to_thread(
                        self.client.create_multipart_upload, Bucket=self.bucket, Key=tmp_key
                    )
                    upload_id = created["UploadId"]
                n = len(parts) + 1
                done = await asyncio.to_thread(
                    self.client.upload_part,
                    Bucket=self.bucket,
                    Key=tmp_key,
                    UploadId=upload_id,
                    PartNumber=n,
                    Body=part,
                )
                parts.append({"PartNumber": n, "ETag": done["ETag"]})
            if upload_id is None:  # empty
                await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=tmp_key, Body=b"")
            else:
                await asyncio.to_thread(
                    self.client.complete_multipart_upload,
                    Bucket=self.bucket,
                    Key=tmp_key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                )
                upload_id = None
            sha = digest.hexdigest()
            if not await self.exists(sha):
                await asyncio.to_thread(
                    self.client.copy, {"Bucket": self.bucket, "Key": tmp_key}, self.bucket, self.key(sha)
                )
            await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=tmp_key)
            return sha, size
        except BaseException:
            if upload_id is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(
                        self.client.abort_multipart_upload, Bucket=self.bucket, Key=tmp_key, UploadId=upload_id
                    )
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=tmp_key)
            raise

    async def get(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        from botocore.exceptions import ClientError

        extra: dict[str, Any] = {}
        if start or end is not None:  # no Range for the whole (an empty object has no byte 0)
            extra["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            obj = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=self.key(sha256), **extra)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise BlobMissing(sha256) from None
            raise
        body = obj["Body"]
        try:
            while True:
                chunk = await asyncio.to_thread(body.read, CHUNK)
                if not chunk:
                    break
                yield chunk
        finally:
            body.close()

    async def exists(self, sha256: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=self.key(sha256))
        except ClientError:
            return False
        return True

    async def delete(self, sha256: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self.key(sha256))


_stores: dict[tuple[Any, ...], BlobStore] = {}


def blob_store(settings: Settings) -> BlobStore:
    """The process's store for these settings."""
    if settings.artifacts_store == "s3":
        ident: tuple[Any, ...] = ("s3", settings.s3_endpoint_url, settings.s3_bucket, settings.s3_prefix)
    elif settings.artifacts_store == "local":
        ident = ("local", str(settings.effective_artifacts_dir.resolve()))
    else:
        raise ValueError(f"unknown artifacts store {settings.artifacts_store!r} (use 'local' or 's3')")
    store = _stores.get(ident)
    if store is None:
        store = S3Store(settings) if ident[0] == "s3" else LocalStore(settings.effective_artifacts_dir.resolve())
        _stores[ident] = store
    return store
