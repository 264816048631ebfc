"""Reading stored objects back, on both backends: what ``/content`` streams and ``DELETE`` removes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.blob.testing import RunningBlobEmulator, start_blob_emulator
from sora_temporal.storage.base import Storage, StorageError, StorageFailure
from sora_temporal.storage.local import LocalStorage
from sora_temporal.storage.vercel import VercelBlobStorage

SIZE = 3 * 1024 * 1024 + 12345  # several of each backend's chunks, and a ragged end


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBlobEmulator]:
    with start_blob_emulator(tmp_path_factory.mktemp("blob")) as running:
        yield running


@pytest.fixture(params=["local", "vercel-private", "vercel-public"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "store")
    emulator: RunningBlobEmulator = request.getfixturevalue("emulator")
    access = "public" if request.param.endswith("public") else "private"
    return VercelBlobStorage(
        emulator.token,
        access=access,
        api_url=emulator.api_url,
        httpx_client_factory=emulator.httpx_client_factory(),
    )


@pytest.fixture
def payload(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(SIZE)
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    return path, data


async def _read(storage: Storage, pathname: str, start: int, end: int) -> bytes:
    return b"".join([chunk async for chunk in storage.open_range(pathname, start, end)])


async def test_a_stored_object_reads_back_whole_and_in_ranges(
    storage: Storage, payload: tuple[Path, bytes]
) -> None:
    path, data = payload
    stored = await storage.put_file(path, "videos/wf-1/video_1.mp4", "video/mp4")

    pathname = storage.pathname_of(stored.url)
    assert pathname == "videos/wf-1/video_1.mp4"
    assert (await storage.stat(pathname)).size == SIZE
    assert await _read(storage, pathname, 0, SIZE) == data
    assert await _read(storage, pathname, 1_048_570, 2_100_000) == data[1_048_570:2_100_000]
    assert await _read(storage, pathname, SIZE - 1, SIZE) == data[-1:]


async def test_a_missing_object_is_object_missing(storage: Storage) -> None:
    with pytest.raises(StorageError) as missing:
        await storage.stat("videos/nothing/here.mp4")

    assert missing.value.kind is StorageFailure.OBJECT_MISSING


async def test_a_deleted_object_is_gone(storage: Storage, payload: tuple[Path, bytes]) -> None:
    path, _ = payload
    stored = await storage.put_file(path, "videos/wf-2/video_2.mp4", "video/mp4")
    pathname = storage.pathname_of(stored.url)
    assert pathname is not None

    await storage.delete(pathname)

    with pytest.raises(StorageError) as missing:
        await storage.stat(pathname)
    assert missing.value.kind is StorageFailure.OBJECT_MISSING


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/videos/a.mp4",
        "file:///etc/passwd",
        "https://otherstore.private.blob.vercel-storage.com/videos/a.mp4",
        "http://127.0.0.1:1/videos/a.mp4",
    ],
)
def test_a_url_that_is_not_the_stores_has_no_pathname(storage: Storage, url: str) -> None:
    assert storage.pathname_of(url) is None


async def test_local_paths_outside_the_root_are_refused(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")

    with pytest.raises(StorageError) as refused:
        await storage.stat("../outside.mp4")

    assert refused.value.kind is StorageFailure.REJECTED
