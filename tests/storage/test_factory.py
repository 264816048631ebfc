"""``storage_from_env`` picks and configures the backend from environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from sora_temporal.storage.base import StorageError
from sora_temporal.storage.factory import storage_from_env
from sora_temporal.storage.local import LocalStorage
from sora_temporal.storage.vercel import DEFAULT_API_URL, VercelBlobStorage

TOKEN = "vercel_blob_rw_StoreId123_s3cr3t"


def test_without_a_token_the_default_is_local_storage_under_data_storage() -> None:
    storage = storage_from_env({})

    assert isinstance(storage, LocalStorage)
    assert storage.root == Path("./data/storage").absolute()


def test_with_a_token_the_default_is_vercel_blob_private() -> None:
    storage = storage_from_env({"BLOB_READ_WRITE_TOKEN": TOKEN})

    assert isinstance(storage, VercelBlobStorage)
    assert (storage.access, storage.store_id, storage.api_url) == ("private", "StoreId123", DEFAULT_API_URL)


def test_storage_backend_local_wins_over_a_token(tmp_path: Path) -> None:
    storage = storage_from_env(
        {"STORAGE_BACKEND": "local", "BLOB_READ_WRITE_TOKEN": TOKEN, "STORAGE_DIR": str(tmp_path)}
    )

    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path


def test_vercel_options_come_from_the_environment() -> None:
    storage = storage_from_env(
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
        storage_from_env({"STORAGE_BACKEND": "vercel"})

    assert caught.value.retryable is False


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
        storage_from_env(env)
