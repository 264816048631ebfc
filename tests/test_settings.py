"""One settings object, read from the environment with the defaults README.md documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from sora_temporal.settings import CHECKOUT, MissingEndpoint, Settings, StorageBackend
from sora_temporal.sora.models import AuthStyle

API_KEY = "sk-proj-secret-value"
BLOB_TOKEN = "vercel_blob_rw_StoreId123_blobsecret"
OUTBOUND_SECRET = "whsec_b3V0Ym91bmQtc2lnbmluZy1zZWNyZXQ="


def test_an_empty_environment_runs_everything_locally_with_the_documented_defaults() -> None:
    settings = Settings.from_env({})

    assert (settings.temporal_address, settings.temporal_namespace, settings.task_queue) == (
        "localhost:7233",
        "default",
        "sora-videos",
    )
    assert settings.temporal_ui_url == "http://localhost:8233"
    assert settings.data_dir == CHECKOUT / "data"
    assert settings.database_url == f"sqlite:///{CHECKOUT / 'data' / 'sora.db'}"
    assert settings.embedded_database
    assert settings.download_dir == CHECKOUT / "data" / "downloads"
    assert (settings.max_reference_image_bytes, settings.reference_image_timeout_seconds) == (
        20 * 1024**2,
        20.0,
    )
    assert (settings.log_level, settings.log_format) == ("INFO", "text")
    assert (settings.metrics_port, settings.metrics_host) == (0, "127.0.0.1")
    assert (settings.sora.base_url, settings.sora.api_key) == (None, None)
    assert (settings.sora.auth_style, settings.sora.timeout_seconds) == (AuthStyle.BEARER, 30.0)
    assert (settings.storage.backend, settings.storage.directory) == (
        StorageBackend.LOCAL,
        CHECKOUT / "data" / "storage",
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
            "LOG_FORMAT": "json",
            "METRICS_PORT": "9464",
            "METRICS_HOST": "0.0.0.0",
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
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")
    assert (settings.metrics_port, settings.metrics_host) == (9464, "0.0.0.0")
    assert not settings.embedded_database
    assert settings.sora.api_key == API_KEY
    assert settings.sora.base_url == "https://example.openai.azure.com/openai/v1"
    assert (settings.sora.auth_style, settings.sora.timeout_seconds) == (AuthStyle.API_KEY, 12.5)
    assert settings.storage.backend is StorageBackend.VERCEL
    assert (settings.storage.blob_token, settings.storage.blob_access) == (BLOB_TOKEN, "public")
    assert settings.storage.blob_part_size == 6 * 1024**2


def test_every_worker_process_gets_its_own_host_task_queue() -> None:
    assert Settings.from_env({}).host_task_queue != Settings.from_env({}).host_task_queue


def test_secrets_never_show_in_the_repr() -> None:
    settings = Settings.from_env(
        {
            "OPENAI_API_KEY": API_KEY,
            "BLOB_READ_WRITE_TOKEN": BLOB_TOKEN,
            "API_KEYS": "sk-client-one,sk-client-two",
            "OUTBOUND_WEBHOOK_URL": "https://app.example/hooks",
            "OUTBOUND_WEBHOOK_SECRET": OUTBOUND_SECRET,
        }
    )

    assert API_KEY not in repr(settings)
    assert "blobsecret" not in repr(settings)
    assert "sk-client" not in repr(settings) and "whsec_" not in repr(settings)


def test_the_api_process_reads_its_variables_through_the_same_object() -> None:
    default = Settings.from_env({}).api
    settings = Settings.from_env(
        {
            "API_KEYS": "sk-a,sk-b",
            "PUBLIC_BASE_URL": "https://videos.example/",
            "API_POLL_INTERVAL_SECONDS": "2",
            "API_DEADLINE_SECONDS": "600",
        }
    ).api

    assert (default.keys, default.public_base_url) == ((), "")
    assert (default.poll_interval_seconds, default.deadline_seconds) == (5.0, 300.0)
    assert settings.keys == ("sk-a", "sk-b")
    assert settings.public_base_url == "https://videos.example"
    assert (settings.poll_interval_seconds, settings.deadline_seconds) == (2.0, 600.0)


def test_webhooks_to_the_application_are_off_unless_a_url_is_set() -> None:
    assert not Settings.from_env({}).outbound.enabled


def test_webhooks_to_the_application_take_a_url_and_its_signing_secret() -> None:
    outbound = Settings.from_env(
        {
            "OUTBOUND_WEBHOOK_URL": " https://app.example/hooks?token=t ",
            "OUTBOUND_WEBHOOK_SECRET": OUTBOUND_SECRET,
        }
    ).outbound

    assert outbound.enabled
    assert (outbound.url, outbound.secret) == ("https://app.example/hooks?token=t", OUTBOUND_SECRET)
    assert "token=t" not in repr(outbound) and OUTBOUND_SECRET not in repr(outbound)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"OUTBOUND_WEBHOOK_URL": "https://app.example/hooks"}, "OUTBOUND_WEBHOOK_SECRET must be set"),
        (
            {"OUTBOUND_WEBHOOK_URL": "https://app.example/hooks", "OUTBOUND_WEBHOOK_SECRET": "whsec_!!"},
            "base64",
        ),
        (
            {
                "OUTBOUND_WEBHOOK_URL": "https://app.example/hooks",
                "OUTBOUND_WEBHOOK_SECRET": "whsec_c2hvcnQ=",
            },
            "at least 16 bytes",
        ),
        (
            {"OUTBOUND_WEBHOOK_URL": "ftp://app.example/hooks", "OUTBOUND_WEBHOOK_SECRET": OUTBOUND_SECRET},
            "http",
        ),
    ],
)
def test_webhooks_to_the_application_are_never_sent_unsigned_or_elsewhere(
    env: dict[str, str], says: str
) -> None:
    with pytest.raises(ValueError, match="OUTBOUND_WEBHOOK") as err:
        Settings.from_env(env)

    assert says in str(err.value)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OPENAI_AUTH_STYLE": "basic"}, "OPENAI_AUTH_STYLE"),
        ({"SORA_TIMEOUT_SECONDS": "soon"}, "SORA_TIMEOUT_SECONDS"),
        ({"SORA_TIMEOUT_SECONDS": "0"}, "SORA_TIMEOUT_SECONDS"),
        ({"REFERENCE_IMAGE_MAX_BYTES": "big"}, "REFERENCE_IMAGE_MAX_BYTES"),
        ({"STORAGE_BACKEND": "s3"}, "STORAGE_BACKEND"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"METRICS_PORT": "70000"}, "METRICS_PORT"),
        ({"METRICS_PORT": "soon"}, "METRICS_PORT"),
    ],
)
def test_unusable_values_are_refused_with_the_variable_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Settings.from_env(env)


def test_the_data_directory_anchors_every_local_default(tmp_path: Path) -> None:
    settings = Settings.from_env({"SORA_DATA_DIR": str(tmp_path / "state")})

    assert settings.data_dir == tmp_path / "state"
    assert settings.database_url == f"sqlite:///{tmp_path / 'state' / 'sora.db'}"
    assert settings.embedded_database
    assert settings.download_dir == tmp_path / "state" / "downloads"
    assert settings.storage.directory == tmp_path / "state" / "storage"
    assert not (tmp_path / "state").exists()  # reading settings creates nothing


def test_a_relative_data_directory_is_made_absolute_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    settings = Settings.from_env({"SORA_DATA_DIR": "state"})

    assert settings.data_dir == tmp_path / "state"


def test_the_defaults_do_not_depend_on_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = Settings.from_env({})
    monkeypatch.chdir(tmp_path)

    elsewhere = Settings.from_env({})

    assert (elsewhere.database_url, elsewhere.download_dir, elsewhere.storage.directory) == (
        here.database_url,
        here.download_dir,
        here.storage.directory,
    )


def test_there_is_no_default_videos_endpoint_and_the_refusal_lists_the_supported_ones() -> None:
    sora = Settings.from_env({"OPENAI_API_KEY": API_KEY}).sora

    with pytest.raises(MissingEndpoint) as refused:
        sora.endpoint()

    message = str(refused.value)
    assert "OPENAI_BASE_URL" in message and "2026-09-24" in message
    assert "https://<resource>.openai.azure.com/openai/v1" in message
    assert "LiteLLM" in message and "simulator" in message
    assert API_KEY not in message


def test_worker_tuning_keeps_the_sdk_defaults_unless_set() -> None:
    default = Settings.from_env({}).worker

    tuned = Settings.from_env(
        {
            "WORKER_MAX_CONCURRENT_ACTIVITIES": "200",
            "WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES": "300",
            "WORKER_MAX_CONCURRENT_WORKFLOW_TASKS": "50",
            "WORKER_WORKFLOW_TASK_POLLERS": "8",
            "WORKER_ACTIVITY_TASK_POLLERS": "4",
            "WORKER_MAX_CACHED_WORKFLOWS": "0",
            "WORKER_STICKY_QUEUE_TIMEOUT_SECONDS": "3",
            "WORKER_ACTIVITY_THREADS": "16",
        }
    ).worker

    assert (
        default.max_concurrent_activities,
        default.workflow_task_pollers,
        default.max_cached_workflows,
    ) == (
        None,
        None,
        1000,
    )
    assert (default.sticky_queue_timeout_seconds, default.activity_threads) == (10.0, 8)
    assert (tuned.max_concurrent_activities, tuned.max_concurrent_local_activities) == (200, 300)
    assert (
        tuned.max_concurrent_workflow_tasks,
        tuned.workflow_task_pollers,
        tuned.activity_task_pollers,
    ) == (
        50,
        8,
        4,
    )
    assert (tuned.max_cached_workflows, tuned.sticky_queue_timeout_seconds, tuned.activity_threads) == (
        0,
        3.0,
        16,
    )


@pytest.mark.parametrize(
    "env",
    [
        {"WORKER_WORKFLOW_TASK_POLLERS": "0"},
        {"WORKER_ACTIVITY_THREADS": "many"},
        {"WORKER_STICKY_QUEUE_TIMEOUT_SECONDS": "0"},
        {"WEBHOOK_FALLBACK_POLL_SECONDS": "0.5"},
    ],
)
def test_unusable_tuning_is_refused_with_the_variable_named(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=next(iter(env))):
        Settings.from_env(env)


def test_webhooks_are_configured_by_their_secret_which_no_repr_shows() -> None:
    secret = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LXZhbHVl"

    without = Settings.from_env({"WEBHOOK_FALLBACK_POLL_SECONDS": "45"})
    with_secret = Settings.from_env({"OPENAI_WEBHOOK_SECRET": secret})

    assert without.webhooks.fallback_seconds is None  # no webhooks: jobs poll at their interval
    assert with_secret.webhooks.fallback_seconds == 60.0
    assert secret not in repr(with_secret) and secret not in str(with_secret)
