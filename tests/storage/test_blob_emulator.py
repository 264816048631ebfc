"""The Blob emulator speaks the protocol of the real service, as seen through the official SDK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest
from vercel import blob

from simulator.blob.testing import RunningBlobEmulator, start_blob_emulator
from sora_temporal.storage.vercel import VercelBlobStorage

MiB = 1024 * 1024
RandomFile = Callable[[str, int], tuple[Path, str]]


async def _api(emulator: RunningBlobEmulator, method: str, path: str, **kwargs: object) -> httpx2.Response:
    async with httpx2.AsyncClient(trust_env=False, timeout=30) as client:
        return await client.request(method, f"{emulator.api_url}{path}", **kwargs)  # type: ignore[arg-type]


async def test_api_call_without_a_token_is_forbidden_in_the_service_error_shape(
    emulator: RunningBlobEmulator,
) -> None:
    response = await _api(emulator, "GET", "", headers={"x-api-version": "12"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_sdk_maps_a_wrong_token_to_its_access_error(emulator: RunningBlobEmulator) -> None:
    storage = VercelBlobStorage(f"vercel_blob_rw_{emulator.store_id}_wrong", api_url=emulator.api_url)

    async with storage.sdk_session():
        with pytest.raises(blob.BlobAccessError):
            await blob.head_blob("anything.txt")


async def test_sdk_maps_a_suspended_store_to_its_suspended_error(
    emulator: RunningBlobEmulator, storage: VercelBlobStorage
) -> None:
    emulator.suspend()

    async with storage.sdk_session():
        with pytest.raises(blob.BlobStoreSuspendedError):
            await blob.put_blob("s.txt", b"x", access="private")


async def test_sdk_reads_retry_after_from_a_rate_limited_answer(
    emulator: RunningBlobEmulator, storage: VercelBlobStorage
) -> None:
    emulator.fail_next(429, count=1, retry_after=3)

    async with storage.sdk_session():
        with pytest.raises(blob.BlobServiceRateLimited) as caught:
            await blob.put_blob("r.txt", b"x", access="private")

    assert caught.value.retry_after == 3


async def test_put_without_allow_overwrite_refuses_an_existing_pathname(storage: VercelBlobStorage) -> None:
    async with storage.sdk_session():
        await blob.put_blob("dup/once.txt", b"first", access="private")
        with pytest.raises(blob.BlobError) as caught:
            await blob.put_blob("dup/once.txt", b"second", access="private")

    assert caught.value.status_code == 400
    assert "already exists" in str(caught.value)


async def test_random_suffix_keeps_directory_and_extension(storage: VercelBlobStorage) -> None:
    async with storage.sdk_session():
        result = await blob.put_blob("suffix/name.txt", b"x", access="private", add_random_suffix=True)

    assert result.pathname.startswith("suffix/name-")
    assert result.pathname.endswith(".txt")
    assert result.pathname != "suffix/name.txt"


async def test_head_reports_size_type_and_cache_control(storage: VercelBlobStorage) -> None:
    async with storage.sdk_session():
        put = await blob.put_blob(
            "head/a.json", b"{}", access="private", content_type="application/json", cache_control_max_age=60
        )
        head = await blob.head_blob(put.url)

    assert (head.size, head.content_type, head.pathname) == (2, "application/json", "head/a.json")
    assert head.cache_control == "private, max-age=60"
    assert head.etag == put.etag


async def test_head_of_a_missing_blob_is_not_found(storage: VercelBlobStorage) -> None:
    async with storage.sdk_session():
        with pytest.raises(blob.BlobNotFoundError):
            await blob.head_blob("head/missing.bin")


async def test_listing_follows_cursors_and_folds_directories(storage: VercelBlobStorage) -> None:
    async with storage.sdk_session():
        for name in ("list/a.txt", "list/b.txt", "list/c.txt", "list/sub/d.txt", "list/sub/e.txt"):
            await blob.put_blob(name, b"x", access="private")
        flat = [item.pathname async for item in blob.query_blobs(prefix="list/", page_size=2)]
        folded = [item async for item in blob.query_blob_entries(prefix="list/", page_size=2)]

    assert flat == ["list/a.txt", "list/b.txt", "list/c.txt", "list/sub/d.txt", "list/sub/e.txt"]
    names = sorted(e.prefix if isinstance(e, blob.BlobPrefix) else e.pathname for e in folded)
    assert names == ["list/a.txt", "list/b.txt", "list/c.txt", "list/sub/"]


async def test_copy_makes_an_independent_object(reader: VercelBlobStorage) -> None:
    async with reader.sdk_session():
        source = await blob.put_blob("copy/src.txt", b"payload", access="private")
        copied = await blob.copy_blob(source.url, "copy/dst.txt", access="private", content_type="text/plain")
        await blob.delete_blob(source.url)
        body = (await blob.get_blob(copied.url, access="private")).body

    assert body == b"payload"


async def test_completing_with_a_small_non_final_part_is_refused(emulator: RunningBlobEmulator) -> None:
    # The SDK refuses this before sending, so speak the protocol directly.
    headers = {
        "authorization": f"Bearer {emulator.token}",
        "x-api-version": "12",
        "x-vercel-blob-access": "private",
    }
    params = {"pathname": "mpu/small.bin"}
    created = (
        await _api(emulator, "POST", "/mpu", params=params, headers={**headers, "x-mpu-action": "create"})
    ).json()
    part_headers = {**headers, "x-mpu-key": created["key"], "x-mpu-upload-id": created["uploadId"]}
    parts = []
    for number in (1, 2):
        uploaded = await _api(
            emulator,
            "POST",
            "/mpu",
            params=params,
            headers={**part_headers, "x-mpu-action": "upload", "x-mpu-part-number": str(number)},
            content=b"tiny",
        )
        parts.append({"partNumber": number, "etag": uploaded.json()["etag"]})

    completed = await _api(
        emulator,
        "POST",
        "/mpu",
        params=params,
        headers={**part_headers, "x-mpu-action": "complete"},
        json=parts,
    )

    assert completed.status_code == 400
    assert "5 MiB" in completed.json()["error"]["message"]


async def test_abandoned_multipart_uploads_are_swept_after_their_ttl(tmp_path: Path) -> None:
    # A TTL well above the time a loaded machine takes to start the upload and send one 5 MiB part.
    with start_blob_emulator(
        tmp_path / "blob", extra_args=["--mpu-ttl", "3", "--sweep-interval", "0.2"]
    ) as emulator:
        storage = VercelBlobStorage(emulator.token, api_url=emulator.api_url)
        async with storage.sdk_session():
            with pytest.raises(RuntimeError):
                async with blob.multipart_upload_blob("mpu/abandoned.bin", access="private") as upload:
                    await upload.upload_part(b"x" * (5 * MiB))
                    raise RuntimeError("worker died")
        assert [u["pathname"] for u in emulator.uploads()] == ["mpu/abandoned.bin"]

        deadline = time.monotonic() + 20
        while emulator.uploads() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

        assert emulator.uploads() == []
        assert list((tmp_path / "blob" / "mpu").iterdir()) == []


async def test_objects_survive_an_emulator_restart(tmp_path: Path, random_file: RandomFile) -> None:
    path, digest = random_file("v.mp4", 2 * MiB)
    with start_blob_emulator(tmp_path / "blob") as first:
        token = first.token
        storage = VercelBlobStorage(token, api_url=first.api_url)
        stored = await storage.put_file(path, "keep/v.mp4", "video/mp4")

    with start_blob_emulator(tmp_path / "blob", token=token) as second:
        reader = VercelBlobStorage(
            token, api_url=second.api_url, httpx_client_factory=second.httpx_client_factory()
        )
        async with reader.sdk_session():
            body = (await blob.get_blob(stored.url, access="private")).body
        listed = [(o.pathname, o.sha256) for o in second.objects()]

    assert listed == [("keep/v.mp4", digest)]
    assert body == path.read_bytes()


async def test_faults_do_not_affect_blob_url_downloads(
    emulator: RunningBlobEmulator, reader: VercelBlobStorage
) -> None:
    async with reader.sdk_session():
        put = await blob.put_blob("faults/f.txt", b"still here", access="private")
        emulator.fail_next(503, count=None)
        body = (await blob.get_blob(put.url, access="private")).body

    assert body == b"still here"
