"""``build_storage`` picks and configures the backend the settings (from the environment) choose."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest

from simulator.blob.testing import RunningBlobEmulator
from sora_temporal.errors import is_retryable
from sora_temporal.settings import StorageSettings
from sora_temporal.storage.base import Storage, StorageError
from sora_temporal.storage.factory import build_storage
from sora_temporal.storage.local import LocalStorage
from sora_temporal.storage.vercel import DEFAULT_API_URL, VercelBlobStorage

TOKEN = "vercel_blob_rw_StoreId123_s3cr3t"


def _storage(env: dict[str, str]) -> Storage:
    return build_storage(StorageSettings.from_env(env))


def test_without_a_token_the_default_is_local_storage_under_data_storage() -> None:
    storage = _storage({})

    assert isinstance(storage, LocalStorage)
    assert storage.root == Path("./data/storage").absolute()


def test_with_a_token_the_default_is_vercel_blob_private() -> None:
    storage = _storage({"BLOB_READ_WRITE_TOKEN": TOKEN})

    assert isinstance(storage, VercelBlobStorage)
    assert (storage.access, storage.store_id, storage.api_url) == ("private", "StoreId123", DEFAULT_API_URL)


def test_storage_backend_local_wins_over_a_token(tmp_path: Path) -> None:
    storage = _storage(
        {"STORAGE_BACKEND": "local", "BLOB_READ_WRITE_TOKEN": TOKEN, "STORAGE_DIR": str(tmp_path)}
    )

    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path


def test_vercel_options_come_from_the_environment() -> None:
    storage = _storage(
        {
            "STORAGE_BACKEND": "vercel",
            "BLOB_READ_WRITE_TOKEN": TOKEN,
            "BLOB_ACCESS": "public",
            "BLOB_MULTIPART_THRESHOLD_BYTES": "1048576",
            "VERCEL_BLOB_API_URL": "http://127.0.0.1:9/api/blob",
        }
    )

    assert isinstance(storage, VercelBlobStorage)
    assert (storage.access, storage.multipart_threshold) == ("public", 1048576)
    assert storage.api_url == "http://127.0.0.1:9/api/blob"


def test_vercel_without_a_token_is_a_non_retryable_storage_error() -> None:
    with pytest.raises(StorageError) as caught:
        _storage({"STORAGE_BACKEND": "vercel"})

    assert is_retryable(caught.value) is False


@pytest.mark.parametrize(
    "env",
    [
        {"STORAGE_BACKEND": "s3"},
        {"BLOB_READ_WRITE_TOKEN": TOKEN, "BLOB_ACCESS": "secret"},
        {"BLOB_READ_WRITE_TOKEN": TOKEN, "BLOB_MULTIPART_THRESHOLD_BYTES": "lots"},
    ],
)
def test_invalid_values_are_rejected_with_the_variable_named(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"STORAGE_BACKEND|BLOB_ACCESS|BLOB_MULTIPART_THRESHOLD_BYTES"):
        _storage(env)


def test_the_blob_token_never_shows_in_the_settings_repr() -> None:
    settings = StorageSettings.from_env({"BLOB_READ_WRITE_TOKEN": TOKEN})

    assert "s3cr3t" not in repr(settings)


async def test_the_configured_api_url_and_http_client_factory_are_used(
    emulator: RunningBlobEmulator, random_file: Callable[[str, int], tuple[Path, str]]
) -> None:
    made: list[object] = []
    factory = emulator.httpx_client_factory()

    def counting_factory() -> httpx2.AsyncClient:
        made.append(client := factory())
        return client

    settings = StorageSettings.from_env(emulator.env())
    storage = build_storage(settings, http_client_factory=counting_factory)
    path, digest = random_file("v.mp4", 10)

    stored = await storage.put_file(path, "videos/wf-env/v.mp4", "video/mp4")

    assert isinstance(storage, VercelBlobStorage) and storage.api_url == emulator.api_url
    assert stored.url.startswith(f"https://{emulator.store_id.lower()}.private.blob.vercel-storage.com/")
    assert [o.sha256 for o in emulator.objects() if o.pathname == "videos/wf-env/v.mp4"] == [digest]
    assert len(made) == 1
