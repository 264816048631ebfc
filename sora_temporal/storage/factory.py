"""Build the configured storage backend from :class:`~sora_temporal.settings.StorageSettings`."""

from __future__ import annotations

from sora_temporal.settings import StorageBackend, StorageSettings
from sora_temporal.storage.base import Storage, StorageError, StorageFailure
from sora_temporal.storage.local import LocalStorage
from sora_temporal.storage.vercel import HttpxClientFactory, VercelBlobStorage


def build_storage(
    settings: StorageSettings, *, http_client_factory: HttpxClientFactory | None = None
) -> Storage:
    """The backend ``settings`` choose.

    Args:
        settings: The storage part of the process settings.
        http_client_factory: For the Vercel backend, builds the HTTP client the SDK sends with
            (e.g. one routed to a local Blob emulator); the backend's own when ``None``.

    Returns:
        A :class:`LocalStorage` or :class:`VercelBlobStorage`.

    Raises:
        StorageError: ``vercel`` was chosen without a usable token (``NOT_CONFIGURED``).
        ValueError: A Vercel option is out of range.
    """
    if settings.backend is StorageBackend.LOCAL:
        return LocalStorage(settings.directory, public_base_url=settings.public_base_url)
    if not settings.blob_token:
        raise StorageError(
            "STORAGE_BACKEND=vercel needs BLOB_READ_WRITE_TOKEN", kind=StorageFailure.NOT_CONFIGURED
        )
    return VercelBlobStorage(
        settings.blob_token,
        access=settings.blob_access,
        multipart_threshold=settings.blob_multipart_threshold,
        part_size=settings.blob_part_size,
        api_url=settings.blob_api_url,
        httpx_client_factory=http_client_factory,
    )
