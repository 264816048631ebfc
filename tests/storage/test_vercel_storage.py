"""``VercelBlobStorage`` driving the real ``vercel-blob`` SDK against the Blob emulator."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from vercel import blob

from simulator.blob.testing import RunningBlobEmulator
from sora_temporal.errors import is_retryable
from sora_temporal.storage.base import StorageError
from sora_temporal.storage.vercel import VercelBlobStorage

RandomFile = Callable[[str, int], tuple[Path, str]]
Fetch = Callable[..., Awaitable[Any]]
MiB = 1024 * 1024


def _objects_at(emulator: RunningBlobEmulator, pathname: str) -> list[Any]:
    return [o for o in emulator.objects() if o.pathname == pathname]


async def test_small_file_reads_back_identical_with_its_content_type(
    storage: VercelBlobStorage, random_file: RandomFile, fetch: Fetch
) -> None:
    path, digest = random_file("thumb.webp", 12_345)

    stored = await storage.put_file(path, "videos/wf-small/thumb.webp", "image/webp")

    fetched = await fetch(stored.url)
    assert (fetched.status, fetched.sha256, fetched.content_type) == (200, digest, "image/webp")
    assert stored.byte_size == 12_345
    assert stored.content_type == "image/webp"
    assert stored.pathname == "videos/wf-small/thumb.webp"


async def test_empty_file_is_stored_as_an_empty_object(
    storage: VercelBlobStorage, random_file: RandomFile, fetch: Fetch
) -> None:
    path, digest = random_file("empty.jpg", 0)

    stored = await storage.put_file(path, "videos/wf-empty/empty.jpg", "image/jpeg")

    fetched = await fetch(stored.url)
    assert (fetched.status, fetched.size, fetched.sha256, stored.byte_size) == (200, 0, digest, 0)


async def test_streamed_file_below_the_threshold_reads_back_identical(
    storage: VercelBlobStorage, random_file: RandomFile, fetch: Fetch
) -> None:
    path, digest = random_file("sprites.jpg", 9 * MiB + 3)

    stored = await storage.put_file(path, "videos/wf-stream/sprites.jpg", "image/jpeg")

    fetched = await fetch(stored.url)
    assert (fetched.sha256, fetched.size, fetched.content_type) == (digest, 9 * MiB + 3, "image/jpeg")


async def test_file_above_the_threshold_goes_up_in_parts_and_reads_back_identical(
    emulator: RunningBlobEmulator, random_file: RandomFile, fetch: Fetch
) -> None:
    size = 100 * MiB + 54_321  # an uneven size, so the last part is short
    path, digest = random_file("big.mp4", size)
    storage = VercelBlobStorage(emulator.token, api_url=emulator.api_url, part_size=8 * MiB)
    seen: list[int] = []

    stored = await storage.put_file(path, "videos/wf-big/big.mp4", "video/mp4", on_progress=seen.append)

    fetched = await fetch(stored.url)
    assert (fetched.sha256, fetched.size, fetched.content_type) == (digest, size, "video/mp4")
    assert seen[-1] == size
    assert [u for u in emulator.uploads() if u["pathname"] == "videos/wf-big/big.mp4"] == []


async def test_parts_are_at_least_five_mib_except_the_last(
    emulator: RunningBlobEmulator, random_file: RandomFile
) -> None:
    # The emulator refuses to complete an upload whose non-final parts are under 5 MiB, as the
    # service does; a threshold below one part still gives valid parts.
    path, digest = random_file("mid.mp4", 11 * MiB)
    storage = VercelBlobStorage(emulator.token, api_url=emulator.api_url, multipart_threshold=MiB)

    await storage.put_file(path, "videos/wf-parts/mid.mp4", "video/mp4")

    [stored] = _objects_at(emulator, "videos/wf-parts/mid.mp4")
    assert stored.sha256 == digest


async def test_a_custom_http_client_factory_is_used_and_still_sees_retry_after(
    emulator: RunningBlobEmulator, random_file: RandomFile
) -> None:
    made: list[object] = []

    def factory() -> httpx2.AsyncClient:
        client = emulator.httpx_client_factory()()
        made.append(client)
        return client

    storage = VercelBlobStorage(emulator.token, api_url=emulator.api_url, httpx_client_factory=factory)
    path, _ = random_file("v.mp4", 1000)
    emulator.fail_next(503, count=1, retry_after=4)

    with pytest.raises(StorageError) as caught:
        await storage.put_file(path, "videos/wf-factory/v.mp4", "video/mp4")

    assert len(made) == 1
    assert caught.value.retry_after == 4


async def test_download_url_serves_the_file_as_an_attachment(
    storage: VercelBlobStorage, random_file: RandomFile, fetch: Fetch
) -> None:
    path, digest = random_file("v.mp4", 1000)

    stored = await storage.put_file(path, "videos/wf-dl/v.mp4", "video/mp4")

    fetched = await fetch(stored.download_url)
    assert fetched.sha256 == digest
    assert fetched.content_disposition == 'attachment; filename="v.mp4"'


async def test_private_object_reads_back_through_the_sdk_with_the_store_token(
    storage: VercelBlobStorage, reader: VercelBlobStorage, random_file: RandomFile
) -> None:
    path, _ = random_file("v.mp4", 70_000)
    stored = await storage.put_file(path, "videos/wf-sdk/v.mp4", "video/mp4")

    async with reader.sdk_session():
        result = await blob.get_blob(stored.url, access="private")

    assert result.body == path.read_bytes()
    assert result.metadata.content_type == "video/mp4"
    assert result.metadata.size == 70_000


async def test_private_object_is_not_served_without_the_token(
    storage: VercelBlobStorage, random_file: RandomFile, fetch: Fetch
) -> None:
    path, _ = random_file("v.mp4", 100)
    stored = await storage.put_file(path, "videos/wf-private/v.mp4", "video/mp4")

    fetched = await fetch(stored.url, token=None)

    assert fetched.status == 403


async def test_public_store_urls_are_served_without_a_token(
    emulator: RunningBlobEmulator, random_file: RandomFile, fetch: Fetch
) -> None:
    path, digest = random_file("v.mp4", 100)
    storage = VercelBlobStorage(emulator.token, api_url=emulator.api_url, access="public")

    stored = await storage.put_file(path, "videos/wf-public/v.mp4", "video/mp4")

    assert ".public.blob.vercel-storage.com/" in stored.url
    fetched = await fetch(stored.url, token=None)
    assert (fetched.status, fetched.sha256) == (200, digest)


async def test_uploading_the_same_pathname_again_leaves_one_object_with_the_new_bytes(
    emulator: RunningBlobEmulator, storage: VercelBlobStorage, random_file: RandomFile
) -> None:
    first, _ = random_file("first.mp4", 1000)
    second, second_digest = random_file("second.mp4", 2000)

    a = await storage.put_file(first, "videos/wf-over/v.mp4", "video/mp4")
    b = await storage.put_file(second, "videos/wf-over/v.mp4", "video/mp4")

    assert a.url == b.url
    [stored] = _objects_at(emulator, "videos/wf-over/v.mp4")
    assert (stored.size, stored.sha256) == (2000, second_digest)


async def test_multipart_upload_of_an_existing_pathname_replaces_it(
    emulator: RunningBlobEmulator, random_file: RandomFile
) -> None:
    storage = VercelBlobStorage(emulator.token, api_url=emulator.api_url, multipart_threshold=MiB)
    first, _ = random_file("first.mp4", 6 * MiB)
    second, second_digest = random_file("second.mp4", 7 * MiB)

    await storage.put_file(first, "videos/wf-mpover/v.mp4", "video/mp4")
    await storage.put_file(second, "videos/wf-mpover/v.mp4", "video/mp4")

    [stored] = _objects_at(emulator, "videos/wf-mpover/v.mp4")
    assert stored.sha256 == second_digest


async def test_delete_removes_the_object_and_tolerates_a_missing_one(
    emulator: RunningBlobEmulator, storage: VercelBlobStorage, random_file: RandomFile
) -> None:
    path, _ = random_file("v.mp4", 10)
    await storage.put_file(path, "videos/wf-del/v.mp4", "video/mp4")

    await storage.delete("videos/wf-del/v.mp4")
    await storage.delete("videos/wf-del/v.mp4")

    assert _objects_at(emulator, "videos/wf-del/v.mp4") == []


async def test_wrong_token_is_a_non_retryable_error_that_does_not_leak_the_token(
    emulator: RunningBlobEmulator, random_file: RandomFile
) -> None:
    wrong = f"vercel_blob_rw_{emulator.store_id}_NotTheSecret123"
    storage = VercelBlobStorage(wrong, api_url=emulator.api_url)
    path, _ = random_file("v.mp4", 1000)

    with pytest.raises(StorageError) as caught:
        await storage.put_file(path, "videos/wf-token/v.mp4", "video/mp4")

    assert is_retryable(caught.value) is False
    assert "access denied" in str(caught.value)
    assert "NotTheSecret123" not in str(caught.value)
    assert _objects_at(emulator, "videos/wf-token/v.mp4") == []


def test_missing_token_is_refused_up_front() -> None:
    with pytest.raises(StorageError) as caught:
        VercelBlobStorage("")

    assert is_retryable(caught.value) is False


def test_malformed_token_is_refused_without_echoing_it() -> None:
    with pytest.raises(StorageError) as caught:
        VercelBlobStorage("sk-secret-value")

    assert is_retryable(caught.value) is False
    assert "sk-secret-value" not in str(caught.value)


async def test_service_unavailable_burst_is_retryable_with_the_requested_delay(
    emulator: RunningBlobEmulator, storage: VercelBlobStorage, random_file: RandomFile
) -> None:
    path, _ = random_file("v.mp4", 1000)
    emulator.fail_next(503, count=3, retry_after=7)

    with pytest.raises(StorageError) as caught:
        await storage.put_file(path, "videos/wf-503/v.mp4", "video/mp4")

    assert is_retryable(caught.value) is True
    assert caught.value.retry_after == 7


async def test_service_unavailable_without_retry_after_is_retryable_with_no_delay(
    emulator: RunningBlobEmulator, storage: VercelBlobStorage, random_file: RandomFile
) -> None:
    path, _ = random_file("v.mp4", 1000)
    emulator.fail_next(503, count=1)

    with pytest.raises(StorageError) as caught:
        await storage.put_file(path, "videos/wf-503b/v.mp4", "video/mp4")

    assert (is_retryable(caught.value), caught.value.retry_after) == (True, None)


async def test_retrying_after_the_burst_stores_exactly_one_object(
    emulator: RunningBlobEmulator, storage: VercelBlobStorage, random_file: RandomFile
) -> None:
    path, digest = random_file("v.mp4", 1000)
    emulator.fail_next(503, count=2)

    for _ in range(2):
        with pytest.raises(StorageError):
            await storage.put_file(path, "videos/wf-retry/v.mp4", "video/mp4")
    await storage.put_file(path, "videos/wf-retry/v.mp4", "video/mp4")

    [stored] = _objects_at(emulator, "videos/wf-retry/v.mp4")
    assert stored.sha256 == digest


async def test_a_failed_part_fails_the_upload_retryably_and_publishes_nothing(
    emulator: RunningBlobEmulator, random_file: RandomFile
) -> None:
    storage = VercelBlobStorage(emulator.token, api_url=emulator.api_url, multipart_threshold=MiB)
    path, _ = random_file("v.mp4", 12 * MiB)
    armed = False

    def fail_a_part_once_streaming_starts(sent: int) -> None:
        # By the first progress report the create call is done, so the fault lands on a part.
        nonlocal armed
        if not armed:
            armed = True
            emulator.fail_next(500, count=1)

    with pytest.raises(StorageError) as caught:
        await storage.put_file(
            path, "videos/wf-part/v.mp4", "video/mp4", on_progress=fail_a_part_once_streaming_starts
        )

    assert is_retryable(caught.value) is True
    assert _objects_at(emulator, "videos/wf-part/v.mp4") == []


async def test_rate_limiting_is_retryable_with_the_retry_after_seconds(
    emulator: RunningBlobEmulator, storage: VercelBlobStorage, random_file: RandomFile
) -> None:
    path, _ = random_file("v.mp4", 1000)
    emulator.fail_next(429, count=1, retry_after=12)

    with pytest.raises(StorageError) as caught:
        await storage.put_file(path, "videos/wf-429/v.mp4", "video/mp4")

    assert (is_retryable(caught.value), caught.value.retry_after) == (True, 12)


async def test_suspended_store_is_not_retryable(
    emulator: RunningBlobEmulator, storage: VercelBlobStorage, random_file: RandomFile
) -> None:
    path, _ = random_file("v.mp4", 1000)
    emulator.suspend()

    with pytest.raises(StorageError) as caught:
        await storage.put_file(path, "videos/wf-suspended/v.mp4", "video/mp4")

    assert is_retryable(caught.value) is False
    assert "suspended" in str(caught.value)


async def test_unreachable_service_is_retryable(tmp_path: Path, random_file: RandomFile) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "vercel_blob_rw_AbCdEf123_secret"
    storage = VercelBlobStorage(token, api_url=f"http://127.0.0.1:{port}/api/blob", timeout=5)
    path, _ = random_file("v.mp4", 1000)

    with pytest.raises(StorageError) as caught:
        await storage.put_file(path, "videos/wf-down/v.mp4", "video/mp4")

    assert is_retryable(caught.value) is True
    assert "network error" in str(caught.value)


async def test_a_missing_source_file_is_not_retryable(tmp_path: Path, storage: VercelBlobStorage) -> None:
    with pytest.raises(StorageError) as caught:
        await storage.put_file(tmp_path / "gone.mp4", "videos/wf-gone/v.mp4", "video/mp4")

    assert is_retryable(caught.value) is False


async def test_oidc_variables_in_the_environment_do_not_redirect_uploads(
    emulator: RunningBlobEmulator,
    storage: VercelBlobStorage,
    random_file: RandomFile,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The SDK's default credentials prefer OIDC over the token when both of these are set.
    monkeypatch.setenv("VERCEL_OIDC_TOKEN", "header.payload.signature")
    monkeypatch.setenv("BLOB_STORE_ID", "store_SomeOtherStore")
    path, digest = random_file("v.mp4", 1000)

    await storage.put_file(path, "videos/wf-oidc/v.mp4", "video/mp4")

    [stored] = _objects_at(emulator, "videos/wf-oidc/v.mp4")
    assert stored.sha256 == digest
