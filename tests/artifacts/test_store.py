"""The blob stores against real storage: the data dir and a real S3-compatible server (moto)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kraken.artifacts.store import BlobMissing, BlobStore, LocalStore, S3Store, TooLarge
from kraken.core.config import Settings


async def stream(data: bytes, chunk: int = 100_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), chunk):
        yield data[i : i + chunk]


async def read(store: BlobStore, sha: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([c async for c in store.get(sha, start, end)])


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalStore(tmp_path / "blobs")
    env = request.getfixturevalue("moto_s3")
    settings = Settings(
        artifacts_store="s3",
        s3_endpoint_url=env["KRAKEN_S3_ENDPOINT_URL"],
        s3_bucket=env["KRAKEN_S3_BUCKET"],
        s3_access_key="testing",
        s3_secret_key="testing",
        s3_prefix="p",
    )
    return S3Store(settings)


async def test_round_trip_ranges_dedupe_and_delete(store: BlobStore) -> None:
    data = os.urandom(20 << 20) + b"tail"  # several S3 parts, and not a multiple of any chunk size
    sha, size = await store.put(stream(data))
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert await store.exists(sha)
    assert await read(store, sha) == data
    assert await read(store, sha, 10, 19) == data[10:20]
    assert await read(store, sha, len(data) - 4) == b"tail"
    again = await store.put(stream(data, 3_000_000))  # same bytes: same blob
    assert again == (sha, size)
    await store.delete(sha)
    assert not await store.exists(sha)
    with pytest.raises(BlobMissing):
        await read(store, sha)


async def test_limit_keeps_nothing(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(3000)
    with pytest.raises(TooLarge, match="limit of 2000 bytes"):
        await store.put(stream(data, 1000), max_size=2000)
    assert not await store.exists(hashlib.sha256(data).hexdigest())
    if isinstance(store, LocalStore):
        assert list((store.root / "tmp").iterdir()) == []
    empty = await store.put(stream(b""))
    assert empty == (hashlib.sha256(b"").hexdigest(), 0) and await read(store, empty[0]) == b""
