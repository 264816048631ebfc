"""Choose and configure the storage backend from environment variables.

=================================  ==========================================================
``STORAGE_BACKEND``                ``local`` or ``vercel``; default ``vercel`` when
                                   ``BLOB_READ_WRITE_TOKEN`` is set, else ``local``
``STORAGE_DIR``                    local backend root (default ``./data/storage``)
``STORAGE_PUBLIC_BASE_URL``        local backend: serve URLs from here instead of ``file://``
``BLOB_READ_WRITE_TOKEN``          Vercel Blob read-write token
``BLOB_ACCESS``                    ``private`` (default) or ``public``; must match the store
``BLOB_MULTIPART_THRESHOLD_BYTES``  multipart above this size (default 64 MiB)
``BLOB_PART_SIZE_BYTES``           multipart part size (default 8 MiB, at least 5 MiB)
``VERCEL_BLOB_API_URL``            Blob API base URL; a loopback URL means the local emulator
=================================  ==========================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sora_temporal.storage.base import Storage, StorageError
from sora_temporal.storage.local import LocalStorage
from sora_temporal.storage.vercel import DEFAULT_API_URL, VercelBlobStorage

DEFAULT_STORAGE_DIR = "./data/storage"
DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024


def _int(env: Mapping[str, str], name: str, default: int) -> int:
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


def storage_from_env(env: Mapping[str, str] | None = None) -> Storage:
    """Build the configured backend.

    Args:
        env: Variables to read; ``os.environ`` when ``None``.

    Returns:
        A :class:`LocalStorage` or :class:`VercelBlobStorage`.

    Raises:
        StorageError: ``vercel`` was chosen without a usable token (non-retryable).
        ValueError: A variable has an invalid value.
    """
    env = os.environ if env is None else env
    token = (env.get("BLOB_READ_WRITE_TOKEN") or "").strip()
    backend = (env.get("STORAGE_BACKEND") or "").strip().lower() or ("vercel" if token else "local")
    if backend == "local":
        return LocalStorage(
            Path(env.get("STORAGE_DIR") or DEFAULT_STORAGE_DIR),
            public_base_url=env.get("STORAGE_PUBLIC_BASE_URL") or None,
        )
    if backend == "vercel":
        if not token:
            raise StorageError("STORAGE_BACKEND=vercel needs BLOB_READ_WRITE_TOKEN", retryable=False)
        access = (env.get("BLOB_ACCESS") or "private").strip().lower()
        if access not in ("private", "public"):
            raise ValueError(f"BLOB_ACCESS must be 'private' or 'public', got {access!r}")
        return VercelBlobStorage(
            token,
            access="public" if access == "public" else "private",
            multipart_threshold=_int(env, "BLOB_MULTIPART_THRESHOLD_BYTES", DEFAULT_MULTIPART_THRESHOLD),
            part_size=_int(env, "BLOB_PART_SIZE_BYTES", DEFAULT_PART_SIZE),
            api_url=env.get("VERCEL_BLOB_API_URL") or DEFAULT_API_URL,
        )
    raise ValueError(f"STORAGE_BACKEND must be 'local' or 'vercel', got {backend!r}")
