"""One settings object, read from the environment with the defaults README.md documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from sora_temporal.settings import Settings, StorageBackend
from sora_temporal.sora.models import AuthStyle

API_KEY = "sk-proj-secret-value"
BLOB_TOKEN = "vercel_blob_rw_StoreId123_blobsecret"


def test_an_empty_environment_runs_everything_locally_with_the_documented_defaults() -> None:
    settings = Settings.from_env({})

    assert (settings.temporal_address, settings.temporal_namespace, settings.task_queue) == (
        "localhost:7233",
        "default",
        "sora-videos",
    )
    assert settings.temporal_ui_url == "http://localhost:8233"
    assert settings.database_url == "sqlite:///data/sora.db"
    assert settings.download_dir == Path("data/downloads")
    assert (settings.max_reference_image_bytes, settings.reference_image_timeout_seconds) == (
        20 * 1024**2,
        20.0,
    )
    assert settings.log_level == "INFO"
    assert (settings.sora.base_url, settings.sora.api_key) == ("https://api.openai.com/v1", None)
    assert (settings.sora.auth_style, settings.sora.timeout_seconds) == (AuthStyle.BEARER, 30.0)
    assert (settings.storage.backend, settings.storage.directory) == (
        StorageBackend.LOCAL,
        Path("data/storage"),
    )


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "TEMPORAL_ADDRESS": "temporal:7233",
            "TEMPORAL_NAMESPACE": "videos",
            "TEMPORAL_TASK_QUEUE": "q",
            "TEMPORAL_UI_URL": "https://ui.example.test",
            "DATABASE_URL": "postgresql+psycopg://db/videos",
            "DOWNLOAD_DIR": "/tmp/dl",
            "REFERENCE_IMAGE_MAX_BYTES": "1000",
            "REFERENCE_IMAGE_TIMEOUT_SECONDS": "2.5",
            "LOG_LEVEL": "DEBUG",
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": "https://example.openai.azure.com/openai/v1",
            "OPENAI_AUTH_STYLE": "api-key",
            "SORA_TIMEOUT_SECONDS": "12.5",
            "BLOB_READ_WRITE_TOKEN": BLOB_TOKEN,
            "BLOB_ACCESS": "public",
            "BLOB_PART_SIZE_BYTES": str(6 * 1024**2),
        }
    )

    assert (settings.temporal_address, settings.temporal_namespace) == ("temporal:7233", "videos")
    assert settings.task_queue == "q" and settings.host_task_queue.startswith("q@")
    assert settings.temporal_ui_url == "https://ui.example.test"
    assert settings.database_url == "postgresql+psycopg://db/videos"
    assert settings.download_dir == Path("/tmp/dl")
    assert (settings.max_reference_image_bytes, settings.reference_image_timeout_seconds) == (1000, 2.5)
    assert settings.log_level == "DEBUG"
    assert settings.sora.api_key == API_KEY
    assert settings.sora.base_url == "https://example.openai.azure.com/openai/v1"
    assert (settings.sora.auth_style, settings.sora.timeout_seconds) == (AuthStyle.API_KEY, 12.5)
    assert settings.storage.backend is StorageBackend.VERCEL
    assert (settings.storage.blob_token, settings.storage.blob_access) == (BLOB_TOKEN, "public")
    assert settings.storage.blob_part_size == 6 * 1024**2


def test_every_worker_process_gets_its_own_host_task_queue() -> None:
    assert Settings.from_env({}).host_task_queue != Settings.from_env({}).host_task_queue


def test_secrets_never_show_in_the_repr() -> None:
    settings = Settings.from_env({"OPENAI_API_KEY": API_KEY, "BLOB_READ_WRITE_TOKEN": BLOB_TOKEN})

    assert API_KEY not in repr(settings)
    assert "blobsecret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OPENAI_AUTH_STYLE": "basic"}, "OPENAI_AUTH_STYLE"),
        ({"SORA_TIMEOUT_SECONDS": "soon"}, "SORA_TIMEOUT_SECONDS"),
        ({"SORA_TIMEOUT_SECONDS": "0"}, "SORA_TIMEOUT_SECONDS"),
        ({"REFERENCE_IMAGE_MAX_BYTES": "big"}, "REFERENCE_IMAGE_MAX_BYTES"),
        ({"STORAGE_BACKEND": "s3"}, "STORAGE_BACKEND"),
    ],
)
def test_unusable_values_are_refused_with_the_variable_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Settings.from_env(env)
