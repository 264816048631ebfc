"""The process settings, read from the environment once per process.

This is the one module that reads ``os.environ``: the worker and the starter call
:meth:`Settings.from_env` at start-up and hand values (never the environment) to the clients they
build. Workflow code never reads settings (it must be deterministic), and secrets never leave the
worker: they are not copied into workflow inputs, results, memos, search attributes or logs, and
the ``repr`` of these objects leaves them out.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

from sora_temporal.sora.client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT_SECONDS
from sora_temporal.sora.models import AuthStyle

DEFAULT_DATABASE_URL = "sqlite:///data/sora.db"
DEFAULT_TASK_QUEUE = "sora-videos"
DEFAULT_STORAGE_DIR = "./data/storage"
DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024
DEFAULT_REFERENCE_IMAGE_MAX_BYTES = 20 * 1024 * 1024

BlobAccess = Literal["private", "public"]


class StorageBackend(StrEnum):
    """Where finished videos are stored."""

    LOCAL = "local"
    VERCEL = "vercel"


@dataclass(frozen=True)
class SoraSettings:
    """How to reach the Videos API.

    Attributes:
        base_url: API root including the version (``OPENAI_BASE_URL``).
        api_key: The key (``OPENAI_API_KEY``); never shown by ``repr``.
        auth_style: ``bearer`` or Azure's ``api-key`` header (``OPENAI_AUTH_STYLE``).
        timeout_seconds: Per-request HTTP timeout (``SORA_TIMEOUT_SECONDS``).
    """

    base_url: str = DEFAULT_BASE_URL
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
            base_url=(env.get("OPENAI_BASE_URL") or "").strip() or DEFAULT_BASE_URL,
            api_key=(env.get("OPENAI_API_KEY") or "").strip() or None,
            auth_style=style,
            timeout_seconds=timeout,
        )


@dataclass(frozen=True)
class StorageSettings:
    """Which storage backend to use and how.

    Attributes:
        backend: ``local`` or ``vercel`` (``STORAGE_BACKEND``; ``vercel`` by default when a Blob
            token is set).
        directory: Root of the ``local`` backend (``STORAGE_DIR``).
        public_base_url: For ``local``, serve URLs under this base (``STORAGE_PUBLIC_BASE_URL``).
        blob_token: Vercel Blob read-write token (``BLOB_READ_WRITE_TOKEN``); never shown by ``repr``.
        blob_access: ``private`` or ``public`` blobs (``BLOB_ACCESS``).
        blob_multipart_threshold: Larger files go up in parts (``BLOB_MULTIPART_THRESHOLD_BYTES``).
        blob_part_size: Multipart part size (``BLOB_PART_SIZE_BYTES``).
        blob_api_url: Blob API endpoint (``VERCEL_BLOB_API_URL``); Vercel's when ``None``.
    """

    backend: StorageBackend = StorageBackend.LOCAL
    directory: Path = Path(DEFAULT_STORAGE_DIR)
    public_base_url: str | None = None
    blob_token: str | None = field(default=None, repr=False)
    blob_access: BlobAccess = "private"
    blob_multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD
    blob_part_size: int = DEFAULT_PART_SIZE
    blob_api_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StorageSettings:
        """Read ``STORAGE_*``, ``BLOB_*`` and ``VERCEL_BLOB_API_URL``.

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
            directory=Path(env.get("STORAGE_DIR") or DEFAULT_STORAGE_DIR),
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


@dataclass(frozen=True)
class Settings:
    """Process configuration; README.md lists every variable and its default.

    Attributes:
        temporal_address: Temporal frontend (``TEMPORAL_ADDRESS``).
        temporal_namespace: Namespace (``TEMPORAL_NAMESPACE``).
        task_queue: The shared task queue (``TEMPORAL_TASK_QUEUE``).
        temporal_ui_url: Base of the Web UI links the starter prints (``TEMPORAL_UI_URL``).
        database_url: SQLAlchemy URL of the catalogue (``DATABASE_URL``).
        download_dir: Where downloads wait for upload (``DOWNLOAD_DIR``).
        max_reference_image_bytes: Size limit for reference images (``REFERENCE_IMAGE_MAX_BYTES``).
        reference_image_timeout_seconds: Time limit for fetching a reference image URL
            (``REFERENCE_IMAGE_TIMEOUT_SECONDS``).
        log_level: The worker's log level (``LOG_LEVEL``).
        host_task_queue: This worker process's own queue, for the activities that need its files.
        sora: How to reach the Videos API.
        storage: Where finished videos go.
    """

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = DEFAULT_TASK_QUEUE
    temporal_ui_url: str = "http://localhost:8233"
    database_url: str = DEFAULT_DATABASE_URL
    download_dir: Path = Path("data/downloads")
    max_reference_image_bytes: int = DEFAULT_REFERENCE_IMAGE_MAX_BYTES
    reference_image_timeout_seconds: float = 20.0
    log_level: str = "INFO"
    host_task_queue: str = ""
    sora: SoraSettings = field(default_factory=SoraSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings, with defaults that run everything locally with no keys.

        Args:
            env: Variables to read; ``os.environ`` when ``None``.

        Raises:
            ValueError: If a variable has a value that cannot be used; the message names it.
        """
        env = os.environ if env is None else env
        task_queue = env.get("TEMPORAL_TASK_QUEUE") or DEFAULT_TASK_QUEUE
        return cls(
            temporal_address=env.get("TEMPORAL_ADDRESS") or "localhost:7233",
            temporal_namespace=env.get("TEMPORAL_NAMESPACE") or "default",
            task_queue=task_queue,
            temporal_ui_url=env.get("TEMPORAL_UI_URL") or "http://localhost:8233",
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            download_dir=Path(env.get("DOWNLOAD_DIR") or "data/downloads"),
            max_reference_image_bytes=_int(
                env, "REFERENCE_IMAGE_MAX_BYTES", DEFAULT_REFERENCE_IMAGE_MAX_BYTES
            ),
            reference_image_timeout_seconds=_float(env, "REFERENCE_IMAGE_TIMEOUT_SECONDS", 20.0),
            log_level=env.get("LOG_LEVEL") or "INFO",
            # Unique per worker process: the files a download leaves on this host can only be
            # uploaded by this process, so upload is routed to this queue.
            host_task_queue=f"{task_queue}@{socket.gethostname()}-{uuid.uuid4().hex[:12]}",
            sora=SoraSettings.from_env(env),
            storage=StorageSettings.from_env(env),
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
