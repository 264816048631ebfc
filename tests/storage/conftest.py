"""Fixtures for the storage tests: a Blob emulator subprocess, random files, and read-back helpers."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from simulator.blob.testing import RunningBlobEmulator, start_blob_emulator
from sora_temporal.storage.vercel import VercelBlobStorage

# Any of these in the developer's shell would change which store or endpoint the SDK uses.
_AMBIENT_VARIABLES = (
    "VERCEL_OIDC_TOKEN",
    "VERCEL_OIDC_TOKEN_FILE",
    "BLOB_STORE_ID",
    "BLOB_READ_WRITE_TOKEN",
    "VERCEL_BLOB_READ_WRITE_TOKEN",
    "VERCEL_BLOB_API_URL",
    "NEXT_PUBLIC_VERCEL_BLOB_API_URL",
    "STORAGE_BACKEND",
    "STORAGE_DIR",
    "BLOB_ACCESS",
    "BLOB_MULTIPART_THRESHOLD_BYTES",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _AMBIENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def _module_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBlobEmulator]:
    with start_blob_emulator(tmp_path_factory.mktemp("blob-emulator")) as emulator:
        yield emulator


@pytest.fixture
def emulator(_module_emulator: RunningBlobEmulator) -> Iterator[RunningBlobEmulator]:
    """The module's emulator, with faults and suspension reset after each test."""
    yield _module_emulator
    _module_emulator.clear_faults()
    _module_emulator.resume()


@pytest.fixture
def storage(emulator: RunningBlobEmulator) -> VercelBlobStorage:
    """``VercelBlobStorage`` on the emulator's private store, as the worker would build it."""
    return VercelBlobStorage(emulator.token, api_url=emulator.api_url)


@pytest.fixture
def reader(emulator: RunningBlobEmulator) -> VercelBlobStorage:
    """The same store for a client that reads objects back through their blob URLs.

    Blob URLs name ``*.blob.vercel-storage.com``; the emulator's HTTP client routes them to it.
    """
    return VercelBlobStorage(
        emulator.token, api_url=emulator.api_url, httpx_client_factory=emulator.httpx_client_factory()
    )


@pytest.fixture
def random_file(tmp_path: Path) -> Callable[[str, int], tuple[Path, str]]:
    """Write ``size`` random bytes to ``tmp_path/name`` in 1 MiB chunks; returns the path and sha256."""

    def write(name: str, size: int) -> tuple[Path, str]:
        path = tmp_path / name
        digest = hashlib.sha256()
        with open(path, "wb") as sink:
            remaining = size
            while remaining:
                chunk = os.urandom(min(remaining, 1024 * 1024))
                digest.update(chunk)
                sink.write(chunk)
                remaining -= len(chunk)
        return path, digest.hexdigest()

    return write


@dataclass(frozen=True)
class Fetched:
    """What a GET of a blob URL returned."""

    status: int
    sha256: str
    size: int
    content_type: str | None
    content_disposition: str | None


@pytest.fixture
def fetch(emulator: RunningBlobEmulator) -> Callable[..., Awaitable[Fetched]]:
    """GET a blob URL through the emulator, streaming and hashing the body."""

    async def get(url: str, *, token: str | None = emulator.token) -> Fetched:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        digest = hashlib.sha256()
        size = 0
        async with (
            emulator.httpx_client_factory()() as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            async for chunk in response.aiter_bytes():
                digest.update(chunk)
                size += len(chunk)
        return Fetched(
            status=response.status_code,
            sha256=digest.hexdigest(),
            size=size,
            content_type=response.headers.get("content-type"),
            content_disposition=response.headers.get("content-disposition"),
        )

    return get
