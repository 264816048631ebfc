"""What the emulator answers with: blob URLs, the JSON shapes of put/list/head, and object headers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from simulator.blob.store import BlobRecord

BLOB_HOST_SUFFIX = ".blob.vercel-storage.com"
"""Blob URLs are ``https://<storeid>.<public|private>.blob.vercel-storage.com/<pathname>``."""

DEFAULT_CACHE_MAX_AGE = 30 * 24 * 60 * 60


def blob_url(store_id: str, record: BlobRecord) -> str:
    """The canonical blob URL of ``record`` in the store ``store_id``."""
    host = f"{store_id.lower()}.{record.access}{BLOB_HOST_SUFFIX}"
    return f"https://{host}/{quote(record.pathname, safe='/')}"


def put_json(store_id: str, record: BlobRecord) -> dict[str, Any]:
    """The answer to an upload, a copy or a completed multipart upload."""
    url = blob_url(store_id, record)
    return {
        "url": url,
        "downloadUrl": f"{url}?download=1",
        "pathname": record.pathname,
        "contentType": record.content_type,
        "contentDisposition": disposition(record.pathname, attachment=False),
        "etag": record.etag,
    }


def list_json(store_id: str, record: BlobRecord) -> dict[str, Any]:
    """One entry of a listing."""
    url = blob_url(store_id, record)
    return {
        "url": url,
        "downloadUrl": f"{url}?download=1",
        "pathname": record.pathname,
        "size": record.size,
        "uploadedAt": iso(record.uploaded_at),
        "etag": record.etag,
    }


def head_json(store_id: str, record: BlobRecord) -> dict[str, Any]:
    """The metadata of one object."""
    return {
        **list_json(store_id, record),
        "contentType": record.content_type,
        "contentDisposition": disposition(record.pathname, attachment=False),
        "cacheControl": record.cache_control,
    }


def iso(timestamp: float) -> str:
    """``2026-01-02T03:04:05.678Z``, as the service writes times."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def disposition(pathname: str, *, attachment: bool) -> str:
    """``Content-Disposition`` for ``pathname``: inline, or an attachment (``?download=1``)."""
    return f'{"attachment" if attachment else "inline"}; filename="{_filename(pathname)}"'


def cache_control(access: str, max_age: int | None) -> str:
    """``Cache-Control`` stored with an object (``max_age`` ``None``: the service's default)."""
    seconds = DEFAULT_CACHE_MAX_AGE if max_age is None else max_age
    return f"{'public' if access == 'public' else 'private'}, max-age={seconds}"


def _filename(pathname: str) -> str:
    name = pathname.rsplit("/", 1)[-1]
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)


__all__ = [
    "BLOB_HOST_SUFFIX",
    "blob_url",
    "cache_control",
    "disposition",
    "head_json",
    "iso",
    "list_json",
    "put_json",
]
