"""The process settings, read from the environment once per process.

This is the one module that reads ``os.environ``: the worker, the starter and the ``api`` process
call :meth:`Settings.from_env` at start-up and hand values (never the environment) to the clients they
build. Workflow code never reads settings (it must be deterministic), and secrets never leave the
worker: they are not copied into workflow inputs, results, memos, search attributes or logs, and
the ``repr`` of these objects leaves them out.
"""

from __future__ import annotations

import base64
import binascii
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Literal

from sora_temporal.netguard import UrlPolicy, parse_host_list
from sora_temporal.pricing import PriceTable, usd_from_text
from sora_temporal.sora.client import DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_TIMEOUT_SECONDS
from sora_temporal.sora.models import AuthStyle
from sora_temporal.types import DEFAULT_DEADLINE_SECONDS, DEFAULT_POLL_INTERVAL_SECONDS
from sora_temporal.validation import InvalidVideoRequest, validate_salvage, validate_timing

DEFAULT_TASK_QUEUE = "sora-videos"
# The project checkout this module lives in (``<root>/sora_temporal/settings.py``).
CHECKOUT = Path(__file__).resolve().parent.parent
SIMULATOR_ENDPOINT_HINT = "http://127.0.0.1:8090/v1"
# OpenAI's own endpoint (https://api.openai.com/v1) stopped serving the Videos API on 2026-09-24, so
# there is no default: the worker refuses to start until one of these is chosen.
SUPPORTED_ENDPOINTS = (
    "Azure OpenAI: https://<resource>.openai.azure.com/openai/v1 (with OPENAI_AUTH_STYLE=api-key)",
    "a gateway speaking the Videos API (LiteLLM, Together AI, OpenRouter): its /v1 URL",
    f"the local simulator: `make up` (or `python -m simulator --port 8090`, then {SIMULATOR_ENDPOINT_HINT})",
)
DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024
DEFAULT_REFERENCE_IMAGE_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_REFERENCE_IMAGE_MAX_PIXELS = 40_000_000
# Room left for everything else on the disk: a download that would eat into it is refused.
DEFAULT_DOWNLOAD_MIN_FREE_BYTES = 256 * 1024 * 1024

BlobAccess = Literal["private", "public"]
LogFormat = Literal["text", "json"]


class StorageBackend(StrEnum):
    """Where finished videos are stored."""

    LOCAL = "local"
    VERCEL = "vercel"


@dataclass(frozen=True)
class SoraSettings:
    """How to reach the Videos API.

    Attributes:
        base_url: API root including the version (``OPENAI_BASE_URL``); ``None`` when unset, which
            the worker refuses (see :meth:`endpoint`).
        api_key: The key (``OPENAI_API_KEY``); never shown by ``repr``.
        auth_style: ``bearer`` or Azure's ``api-key`` header (``OPENAI_AUTH_STYLE``).
        timeout_seconds: Per-request HTTP timeout (``SORA_TIMEOUT_SECONDS``).
    """

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    auth_style: AuthStyle = AuthStyle.BEARER
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SoraSettings:
        """Read ``OPENAI_*`` and ``SORA_TIMEOUT_SECONDS``.

        Raises:
            ValueError: If a variable has a value that cannot be used; the message names it.
        """
        style_text = (env.get("OPENAI_AUTH_STYLE") or AuthStyle.BEARER.value).strip().lower()
        try:
            style = AuthStyle(style_text)
        except ValueError:
            choices = ", ".join(s.value for s in AuthStyle)
            raise ValueError(f"OPENAI_AUTH_STYLE must be one of {choices}, got {style_text!r}") from None
        timeout_text = (env.get("SORA_TIMEOUT_SECONDS") or "").strip()
        timeout = DEFAULT_TIMEOUT_SECONDS
        if timeout_text:
            try:
                timeout = float(timeout_text)
            except ValueError:
                raise ValueError(f"SORA_TIMEOUT_SECONDS must be a number, got {timeout_text!r}") from None
            if not timeout > 0:
                raise ValueError(f"SORA_TIMEOUT_SECONDS must be positive, got {timeout_text!r}")
        return cls(
            base_url=(env.get("OPENAI_BASE_URL") or "").strip() or None,
            api_key=(env.get("OPENAI_API_KEY") or "").strip() or None,
            auth_style=style,
            timeout_seconds=timeout,
        )

    def endpoint(self) -> str:
        """The configured API root.

        Raises:
            MissingEndpoint: ``OPENAI_BASE_URL`` is unset; the message lists the supported endpoints.
        """
        if self.base_url is None:
            raise MissingEndpoint()
        return self.base_url


class MissingEndpoint(ValueError):
    """``OPENAI_BASE_URL`` is unset, and OpenAI's own endpoint no longer serves the Videos API."""

    def __init__(self) -> None:
        choices = "\n".join(f"  - {choice}" for choice in SUPPORTED_ENDPOINTS)
        super().__init__(
            "OPENAI_BASE_URL is not set. OpenAI's own endpoint (https://api.openai.com/v1) stopped serving "
            f"the Videos API on 2026-09-24, so there is no default. Set it to one of:\n{choices}"
        )


def default_data_dir(env: Mapping[str, str]) -> Path:
    """Where local state lives unless a variable says otherwise (``SORA_DATA_DIR``).

    ``<checkout>/data`` when running from a project checkout, else ``$XDG_DATA_HOME/sora-temporal``
    (``~/.local/share/sora-temporal``); never relative to the current directory.
    """
    explicit = (env.get("SORA_DATA_DIR") or "").strip()
    if explicit:
        return Path(explicit).expanduser().absolute()
    if (CHECKOUT / "pyproject.toml").is_file():
        return CHECKOUT / "data"
    xdg = (env.get("XDG_DATA_HOME") or "").strip()
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "sora-temporal"


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of the SQLite file at ``path``."""
    return f"sqlite:///{path}"


@dataclass(frozen=True)
class StorageSettings:
    """Which storage backend to use and how.

    Attributes:
        backend: ``local`` or ``vercel`` (``STORAGE_BACKEND``; ``vercel`` by default when a Blob
            token is set).
        directory: Root of the ``local`` backend (``STORAGE_DIR``; ``<data dir>/storage``).
        public_base_url: For ``local``, serve URLs under this base (``STORAGE_PUBLIC_BASE_URL``).
        blob_token: Vercel Blob read-write token (``BLOB_READ_WRITE_TOKEN``); never shown by ``repr``.
        blob_access: ``private`` or ``public`` blobs (``BLOB_ACCESS``).
        blob_multipart_threshold: Larger files go up in parts (``BLOB_MULTIPART_THRESHOLD_BYTES``).
        blob_part_size: Multipart part size (``BLOB_PART_SIZE_BYTES``).
        blob_api_url: Blob API endpoint (``VERCEL_BLOB_API_URL``); Vercel's when ``None``.
    """

    backend: StorageBackend = StorageBackend.LOCAL
    directory: Path = field(default_factory=lambda: default_data_dir({}) / "storage")
    public_base_url: str | None = None
    blob_token: str | None = field(default=None, repr=False)
    blob_access: BlobAccess = "private"
    blob_multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD
    blob_part_size: int = DEFAULT_PART_SIZE
    blob_api_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], data_dir: Path | None = None) -> StorageSettings:
        """Read ``STORAGE_*``, ``BLOB_*`` and ``VERCEL_BLOB_API_URL``.

        ``STORAGE_DIR`` defaults to ``storage`` under ``data_dir`` (:func:`default_data_dir`).

        The ``BLOB_*`` options are checked only when the ``vercel`` backend is chosen.

        Raises:
            ValueError: If a variable has a value that cannot be used; the message names it.
        """
        token = (env.get("BLOB_READ_WRITE_TOKEN") or "").strip() or None
        backend_text = (env.get("STORAGE_BACKEND") or "").strip().lower() or ("vercel" if token else "local")
        try:
            backend = StorageBackend(backend_text)
        except ValueError:
            raise ValueError(f"STORAGE_BACKEND must be 'local' or 'vercel', got {backend_text!r}") from None
        local = cls(
            backend=backend,
            directory=Path(env.get("STORAGE_DIR") or (data_dir or default_data_dir(env)) / "storage"),
            public_base_url=env.get("STORAGE_PUBLIC_BASE_URL") or None,
            blob_token=token,
        )
        if backend is StorageBackend.LOCAL:
            return local
        access = (env.get("BLOB_ACCESS") or "private").strip().lower()
        if access not in ("private", "public"):
            raise ValueError(f"BLOB_ACCESS must be 'private' or 'public', got {access!r}")
        return cls(
            backend=backend,
            directory=local.directory,
            public_base_url=local.public_base_url,
            blob_token=token,
            blob_access="public" if access == "public" else "private",
            blob_multipart_threshold=_byte_count(
                env, "BLOB_MULTIPART_THRESHOLD_BYTES", DEFAULT_MULTIPART_THRESHOLD
            ),
            blob_part_size=_byte_count(env, "BLOB_PART_SIZE_BYTES", DEFAULT_PART_SIZE),
            blob_api_url=env.get("VERCEL_BLOB_API_URL") or None,
        )


DEFAULT_SALVAGE_WINDOW_SECONDS = 3600.0


@dataclass(frozen=True)
class SpendSettings:
    """What jobs cost, how much may be spent, and how long a timed-out job's video is waited for.

    Attributes:
        prices: USD per second by model and size (:mod:`sora_temporal.pricing`): OpenAI's Sora 2
            prices, overridden by ``PRICE_TABLE_FILE`` and then ``PRICE_TABLE_JSON``.
        budget_usd_per_day: Estimated spend allowed per UTC day over all jobs (``BUDGET_USD_PER_DAY``);
            ``None``: no limit.
        api_key_budget_usd_per_day: Estimated spend allowed per UTC day for the jobs of one API key
            (``API_KEY_BUDGET_USD_PER_DAY``), on top of the global budget; ``None``: no limit.
        salvage_window_seconds: After a job's deadline, while its Sora job may still run, watch it
            this long for a late video (``SALVAGE_WINDOW_SECONDS``; ``0`` turns the watch off). Put
            on each new job's input by the starter and the API.
        salvage_poll_seconds: Status checks during that watch are this far apart (``SALVAGE_POLL_SECONDS``).
    """

    prices: PriceTable = field(default_factory=PriceTable)
    budget_usd_per_day: Decimal | None = None
    api_key_budget_usd_per_day: Decimal | None = None
    salvage_window_seconds: float = DEFAULT_SALVAGE_WINDOW_SECONDS
    salvage_poll_seconds: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SpendSettings:
        """Read ``PRICE_TABLE_FILE``, ``PRICE_TABLE_JSON``, ``*BUDGET_USD_PER_DAY`` and ``SALVAGE_*``.

        Raises:
            ValueError: A file that cannot be read, a table or amount that cannot be used, or a
                salvage watch out of bounds; the message names the variable.
        """
        prices = PriceTable()
        table_file = (env.get("PRICE_TABLE_FILE") or "").strip()
        if table_file:
            try:
                text = Path(table_file).expanduser().read_text(encoding="utf-8")
            except OSError as err:
                raise ValueError(f"PRICE_TABLE_FILE {table_file!r} cannot be read: {err.strerror}") from err
            prices = prices.overridden(text, f"PRICE_TABLE_FILE {table_file}")
        table_json = (env.get("PRICE_TABLE_JSON") or "").strip()
        if table_json:
            prices = prices.overridden(table_json, "PRICE_TABLE_JSON")
        window = _float(env, "SALVAGE_WINDOW_SECONDS", DEFAULT_SALVAGE_WINDOW_SECONDS)
        poll = _float(env, "SALVAGE_POLL_SECONDS", 60.0)
        try:
            validate_salvage(window, poll)
        except InvalidVideoRequest as err:
            name = {"salvage_window": "SALVAGE_WINDOW_SECONDS", "salvage_poll": "SALVAGE_POLL_SECONDS"}
            raise ValueError(f"{name.get(err.param, err.param)}: {err.message}") from err
        return cls(
            prices=prices,
            budget_usd_per_day=_usd(env, "BUDGET_USD_PER_DAY"),
            api_key_budget_usd_per_day=_usd(env, "API_KEY_BUDGET_USD_PER_DAY"),
            salvage_window_seconds=window,
            salvage_poll_seconds=poll,
        )


def _usd(env: Mapping[str, str], name: str) -> Decimal | None:
    raw = (env.get(name) or "").strip()
    return usd_from_text(raw, name) if raw else None


DEFAULT_WEBHOOK_FALLBACK_POLL_SECONDS = 60.0
DEFAULT_ACTIVITY_THREADS = 8


@dataclass(frozen=True)
class WorkerTuning:
    """How much one worker process takes on at once; ``None`` keeps the Temporal SDK's default.

    Attributes:
        max_concurrent_activities: Activity tasks run at once (``WORKER_MAX_CONCURRENT_ACTIVITIES``).
        max_concurrent_local_activities: Local activities (the poll loop's status checks and saves)
            run at once (``WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES``).
        max_concurrent_workflow_tasks: Workflow tasks run at once
            (``WORKER_MAX_CONCURRENT_WORKFLOW_TASKS``).
        workflow_task_pollers: Concurrent long polls for workflow tasks (``WORKER_WORKFLOW_TASK_POLLERS``).
        activity_task_pollers: Concurrent long polls for activity tasks (``WORKER_ACTIVITY_TASK_POLLERS``).
        max_cached_workflows: Workflows kept in memory between their tasks, so a task does not replay
            the history first (``WORKER_MAX_CACHED_WORKFLOWS``; ``0`` turns the sticky cache off).
        sticky_queue_timeout_seconds: How long a task waits for the worker holding its workflow in
            cache before any worker may take it (``WORKER_STICKY_QUEUE_TIMEOUT_SECONDS``).
        activity_threads: Threads behind the synchronous activities: catalogue saves, file
            clean-up (``WORKER_ACTIVITY_THREADS``).
    """

    max_concurrent_activities: int | None = None
    max_concurrent_local_activities: int | None = None
    max_concurrent_workflow_tasks: int | None = None
    workflow_task_pollers: int | None = None
    activity_task_pollers: int | None = None
    max_cached_workflows: int = 1000
    sticky_queue_timeout_seconds: float = 10.0
    activity_threads: int = DEFAULT_ACTIVITY_THREADS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WorkerTuning:
        """Read the ``WORKER_*`` variables.

        Raises:
            ValueError: A value is not a positive whole number (or, for the cache, negative).
        """
        cache = _whole(env, "WORKER_MAX_CACHED_WORKFLOWS", 1000, minimum=0)
        sticky = _float(env, "WORKER_STICKY_QUEUE_TIMEOUT_SECONDS", 10.0)
        if not 0 < sticky <= 600:
            raise ValueError(f"WORKER_STICKY_QUEUE_TIMEOUT_SECONDS must be within (0, 600], got {sticky:g}")
        return cls(
            max_concurrent_activities=_optional_count(env, "WORKER_MAX_CONCURRENT_ACTIVITIES"),
            max_concurrent_local_activities=_optional_count(env, "WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES"),
            max_concurrent_workflow_tasks=_optional_count(env, "WORKER_MAX_CONCURRENT_WORKFLOW_TASKS"),
            workflow_task_pollers=_optional_count(env, "WORKER_WORKFLOW_TASK_POLLERS"),
            activity_task_pollers=_optional_count(env, "WORKER_ACTIVITY_TASK_POLLERS"),
            max_cached_workflows=cache,
            sticky_queue_timeout_seconds=sticky,
            activity_threads=_whole(env, "WORKER_ACTIVITY_THREADS", DEFAULT_ACTIVITY_THREADS),
        )


@dataclass(frozen=True)
class WebhookSettings:
    """The Videos API's webhooks, received by the ``api`` process (``POST /webhooks/openai``).

    Attributes:
        secret: The endpoint's ``whsec_…`` signing secret (``OPENAI_WEBHOOK_SECRET``); never shown
            by ``repr``, never put into a workflow. Set means: webhooks are configured.
        fallback_poll_seconds: With webhooks configured, status checks without an event are this far
            apart, so a dropped webhook still ends in a stored video (``WEBHOOK_FALLBACK_POLL_SECONDS``).
    """

    secret: str | None = field(default=None, repr=False)
    fallback_poll_seconds: float = DEFAULT_WEBHOOK_FALLBACK_POLL_SECONDS

    @property
    def fallback_seconds(self) -> float | None:
        """What a new job's ``webhook_fallback_seconds`` is: the fallback, or ``None`` without webhooks."""
        return self.fallback_poll_seconds if self.secret else None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookSettings:
        """Read ``OPENAI_WEBHOOK_SECRET`` and ``WEBHOOK_FALLBACK_POLL_SECONDS``.

        Raises:
            ValueError: The fallback is not a number of seconds from 1 to 3600.
        """
        fallback = _float(env, "WEBHOOK_FALLBACK_POLL_SECONDS", DEFAULT_WEBHOOK_FALLBACK_POLL_SECONDS)
        if not 1 <= fallback <= 3600:
            raise ValueError(
                f"WEBHOOK_FALLBACK_POLL_SECONDS must be from 1 to 3600 seconds, got {fallback:g}"
            )
        return cls(
            secret=(env.get("OPENAI_WEBHOOK_SECRET") or "").strip() or None, fallback_poll_seconds=fallback
        )


@dataclass(frozen=True)
class OutboundWebhookSettings:
    """Webhooks to the application when a job started through the API ends.

    The ``api`` process asks each job it starts to notify the application when these are set; the
    worker signs and delivers the event, so both read them (secrets stay in their environment,
    never in a workflow's input or history).

    Attributes:
        url: Where ``video.completed`` / ``video.failed`` events are POSTed (``OUTBOUND_WEBHOOK_URL``);
            ``None``: no webhooks. Never shown by ``repr`` (a URL may carry a token).
        secret: The Standard Webhooks ``whsec_<base64>`` secret that signs them
            (``OUTBOUND_WEBHOOK_SECRET``); never shown by ``repr``.
    """

    url: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        """Whether jobs started through the API notify the application."""
        return self.url is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OutboundWebhookSettings:
        """Read ``OUTBOUND_WEBHOOK_URL`` and ``OUTBOUND_WEBHOOK_SECRET``.

        Raises:
            ValueError: The URL is not http(s), or it is set without a usable secret (events are
                never sent unsigned).
        """
        url = (env.get("OUTBOUND_WEBHOOK_URL") or "").strip() or None
        secret = (env.get("OUTBOUND_WEBHOOK_SECRET") or "").strip() or None
        if url is None:
            return cls(secret=secret)
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError("OUTBOUND_WEBHOOK_URL must be an http:// or https:// URL")
        if secret is None:
            raise ValueError(
                "OUTBOUND_WEBHOOK_URL is set: OUTBOUND_WEBHOOK_SECRET must be set too (whsec_<base64>)"
            )
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            key = b""
        if len(key) < 16:
            raise ValueError("OUTBOUND_WEBHOOK_SECRET must be whsec_ followed by base64 of at least 16 bytes")
        return cls(url=url, secret=secret)


@dataclass(frozen=True)
class ApiSettings:
    """The ``api`` process (``python -m api``): who may call it, and the jobs it starts.

    Attributes:
        keys: Every accepted Bearer key: ``API_KEYS`` (comma-separated) and ``API_KEYS_FILE`` (one
            per line; blank lines and ``#`` comments skipped). Never shown by ``repr``, never stored
            (a job's owner is a hash of its key).
        public_base_url: Base of absolute links handed to clients, without a trailing slash
            (``PUBLIC_BASE_URL``); empty means "the address the request came in on".
        poll_interval_seconds: Status-check interval of the jobs the API starts
            (``API_POLL_INTERVAL_SECONDS``).
        deadline_seconds: Deadline of the jobs the API starts (``API_DEADLINE_SECONDS``).
    """

    keys: tuple[str, ...] = field(default=(), repr=False)
    public_base_url: str = ""
    poll_interval_seconds: float = DEFAULT_POLL_INTERVAL_SECONDS
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ApiSettings:
        """Read ``API_KEYS``, ``API_KEYS_FILE``, ``PUBLIC_BASE_URL`` and ``API_*_SECONDS``.

        Raises:
            ValueError: ``API_KEYS_FILE`` cannot be read, or a timing is not a number within the
                workflow's bounds; the message names the variable.
        """
        keys = _api_keys(env.get("API_KEYS") or "", ",")
        keys_file = (env.get("API_KEYS_FILE") or "").strip()
        if keys_file:
            try:
                keys += _api_keys(Path(keys_file).read_text(encoding="utf-8"), None)
            except OSError as err:
                raise ValueError(f"API_KEYS_FILE {keys_file!r} cannot be read: {err.strerror}") from err
        settings = cls(
            keys=tuple(dict.fromkeys(keys)),
            public_base_url=(env.get("PUBLIC_BASE_URL") or "").strip().rstrip("/"),
            poll_interval_seconds=_float(env, "API_POLL_INTERVAL_SECONDS", DEFAULT_POLL_INTERVAL_SECONDS),
            deadline_seconds=_float(env, "API_DEADLINE_SECONDS", DEFAULT_DEADLINE_SECONDS),
        )
        try:
            validate_timing(settings.poll_interval_seconds, settings.deadline_seconds)
        except InvalidVideoRequest as err:
            name = {"poll_interval": "API_POLL_INTERVAL_SECONDS", "deadline": "API_DEADLINE_SECONDS"}
            raise ValueError(f"{name.get(err.param, err.param)}: {err.message}") from err
        return settings


def _api_keys(text: str, separator: str | None) -> list[str]:
    parts = text.split(separator) if separator else text.splitlines()
    return [p.strip() for p in parts if p.strip() and not p.strip().startswith("#")]


@dataclass(frozen=True)
class Settings:
    """Process configuration; README.md lists every variable and its default.

    Attributes:
        temporal_address: Temporal frontend (``TEMPORAL_ADDRESS``).
        temporal_namespace: Namespace (``TEMPORAL_NAMESPACE``).
        task_queue: The shared task queue (``TEMPORAL_TASK_QUEUE``).
        temporal_ui_url: Base of the Web UI links the starter prints (``TEMPORAL_UI_URL``).
        data_dir: Where local state lives by default (``SORA_DATA_DIR``, see :func:`default_data_dir`).
        database_url: SQLAlchemy URL of the catalogue (``DATABASE_URL``; ``<data dir>/sora.db``).
        download_dir: Where downloads wait for upload (``DOWNLOAD_DIR``; ``<data dir>/downloads``).
        max_reference_image_bytes: Size limit for reference images (``REFERENCE_IMAGE_MAX_BYTES``).
        reference_image_timeout_seconds: Time limit for fetching a reference image URL
            (``REFERENCE_IMAGE_TIMEOUT_SECONDS``).
        reference_image_max_pixels: Pixel limit for reference images, checked before decoding
            (``REFERENCE_IMAGE_MAX_PIXELS``).
        allow_private_urls: Let reference-image URLs and download links use ``http`` and loopback
            or private addresses (``ALLOW_PRIVATE_URLS``); for local development only.
        download_url_allowed_hosts: When set, the only hosts a download link off the API's origin
            (and each of its redirects) may name (``DOWNLOAD_URL_ALLOWED_HOSTS``).
        download_max_bytes: The largest video download accepted (``DOWNLOAD_MAX_BYTES``).
        download_min_free_bytes: Free space a download must leave on the download directory's disk
            (``DOWNLOAD_MIN_FREE_BYTES``).
        log_level: The worker's log level (``LOG_LEVEL``).
        log_format: ``text`` or ``json``, one object per line (``LOG_FORMAT``).
        metrics_port: Serve Prometheus metrics on this port; ``0`` = off (``METRICS_PORT``).
        metrics_host: Address the metrics endpoint binds (``METRICS_HOST``).
        host_task_queue: This worker process's own queue, for the activities that need its files.
        sora: How to reach the Videos API.
        storage: Where finished videos go.
        worker: Worker process tuning (``WORKER_*``).
        webhooks: The Videos API's webhooks (``OPENAI_WEBHOOK_SECRET``, ``WEBHOOK_FALLBACK_POLL_SECONDS``).
        api: The ``api`` process: its keys, links and the timing of the jobs it starts (``API_*``).
        outbound: Webhooks to the application (``OUTBOUND_WEBHOOK_*``), sent by the worker.
        spend: Prices, daily budgets and the salvage watch (``PRICE_TABLE_*``, ``*BUDGET_USD_PER_DAY``,
            ``SALVAGE_*``).
    """

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    temporal_ui_url: str = "http://localhost:8233"
    data_dir: Path = field(default_factory=lambda: default_data_dir({}))
    database_url: str = field(default_factory=lambda: sqlite_url(default_data_dir({}) / "sora.db"))
    download_dir: Path = field(default_factory=lambda: default_data_dir({}) / "downloads")
    max_reference_image_bytes: int = DEFAULT_REFERENCE_IMAGE_MAX_BYTES
    reference_image_timeout_seconds: float = 20.0
    reference_image_max_pixels: int = DEFAULT_REFERENCE_IMAGE_MAX_PIXELS
    allow_private_urls: bool = False
    download_url_allowed_hosts: tuple[str, ...] = ()
    download_max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES
    download_min_free_bytes: int = DEFAULT_DOWNLOAD_MIN_FREE_BYTES
    log_level: str = "INFO"
    log_format: LogFormat = "text"
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    host_task_queue: str = ""
    sora: SoraSettings = field(default_factory=SoraSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    worker: WorkerTuning = field(default_factory=WorkerTuning)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    outbound: OutboundWebhookSettings = field(default_factory=OutboundWebhookSettings)
    spend: SpendSettings = field(default_factory=SpendSettings)

    @property
    def reference_url_policy(self) -> UrlPolicy:
        """What a reference-image URL (and its redirects) may point at."""
        return UrlPolicy(allow_private=self.allow_private_urls)

    @property
    def download_url_policy(self) -> UrlPolicy:
        """What a download link off the API's origin (and its redirects) may point at."""
        return UrlPolicy(allow_private=self.allow_private_urls, allowed_hosts=self.download_url_allowed_hosts)

    @property
    def embedded_database(self) -> bool:
        """Whether the catalogue is the default SQLite file in the data directory.

        The worker migrates that one itself; any other database is migrated with ``make migrate``.
        """
        return self.database_url == sqlite_url(self.data_dir / "sora.db")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings; the defaults keep local state in the data directory.

        Args:
            env: Variables to read; ``os.environ`` when ``None``.

        Raises:
            ValueError: If a variable has a value that cannot be used; the message names it.
        """
        env = os.environ if env is None else env
        task_queue = env.get("TEMPORAL_TASK_QUEUE") or DEFAULT_TASK_QUEUE
        data_dir = default_data_dir(env)
        database_url = (env.get("DATABASE_URL") or "").strip()
        log_format = (env.get("LOG_FORMAT") or "text").strip().lower()
        if log_format not in ("text", "json"):
            raise ValueError(f"LOG_FORMAT must be 'text' or 'json', got {log_format!r}")
        metrics_port = _int(env, "METRICS_PORT", 0)
        if not 0 <= metrics_port <= 65535:
            raise ValueError(f"METRICS_PORT must be a port number (0 = off), got {metrics_port}")
        return cls(
            temporal_address=env.get("TEMPORAL_ADDRESS") or "localhost:7233",
            temporal_namespace=env.get("TEMPORAL_NAMESPACE") or "default",
            task_queue=task_queue,
            temporal_ui_url=env.get("TEMPORAL_UI_URL") or "http://localhost:8233",
            data_dir=data_dir,
            database_url=database_url or sqlite_url(data_dir / "sora.db"),
            download_dir=Path(env.get("DOWNLOAD_DIR") or data_dir / "downloads"),
            max_reference_image_bytes=_int(
                env, "REFERENCE_IMAGE_MAX_BYTES", DEFAULT_REFERENCE_IMAGE_MAX_BYTES
            ),
            reference_image_timeout_seconds=_float(env, "REFERENCE_IMAGE_TIMEOUT_SECONDS", 20.0),
            reference_image_max_pixels=_positive(
                env, "REFERENCE_IMAGE_MAX_PIXELS", DEFAULT_REFERENCE_IMAGE_MAX_PIXELS
            ),
            allow_private_urls=_flag(env, "ALLOW_PRIVATE_URLS"),
            download_url_allowed_hosts=_hosts(env, "DOWNLOAD_URL_ALLOWED_HOSTS"),
            download_max_bytes=_positive(env, "DOWNLOAD_MAX_BYTES", DEFAULT_MAX_DOWNLOAD_BYTES),
            download_min_free_bytes=_byte_count(
                env, "DOWNLOAD_MIN_FREE_BYTES", DEFAULT_DOWNLOAD_MIN_FREE_BYTES
            ),
            log_level=env.get("LOG_LEVEL") or "INFO",
            log_format="json" if log_format == "json" else "text",
            metrics_port=metrics_port,
            metrics_host=(env.get("METRICS_HOST") or "").strip() or "127.0.0.1",
            # Unique per worker process: the files a download leaves on this host can only be
            # uploaded by this process, so upload is routed to this queue.
            host_task_queue=f"{task_queue}@{socket.gethostname()}-{uuid.uuid4().hex[:12]}",
            sora=SoraSettings.from_env(env),
            storage=StorageSettings.from_env(env, data_dir),
            worker=WorkerTuning.from_env(env),
            webhooks=WebhookSettings.from_env(env),
            api=ApiSettings.from_env(env),
            outbound=OutboundWebhookSettings.from_env(env),
            spend=SpendSettings.from_env(env),
        )


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return float(raw)
    except ValueError as err:
        raise ValueError(f"{name} must be a number, got {raw!r}") from err


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return int(_float(env, name, float(default)))


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def _hosts(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    try:
        return parse_host_list(env.get(name) or "")
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from err


def _optional_count(env: Mapping[str, str], name: str) -> int | None:
    if not (env.get(name) or "").strip():
        return None
    return _whole(env, name, 1)


def _whole(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _byte_count(env, name, default)
    if value == 0:
        raise ValueError(f"{name} must be positive")
    return value


def _byte_count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise ValueError(f"{name} must be a whole number of bytes, got {raw!r}") from err
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return value
