"""The storage interface every backend implements."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

ProgressCallback = Callable[[int], None]
"""Called with the number of bytes sent so far; activities heartbeat from it."""


class StorageFailure(StrEnum):
    """What went wrong in a storage call; :mod:`sora_temporal.errors` decides what to do about it."""

    RATE_LIMITED = "rate_limited"
    """The store asked us to slow down."""
    UNAVAILABLE = "unavailable"
    """The store failed or is overloaded (5xx, 408)."""
    NETWORK = "network"
    """No complete answer arrived."""
    MALFORMED_RESPONSE = "malformed_response"
    """The answer could not be understood (a proxy, a truncated connection)."""
    SOURCE_CHANGED = "source_changed"
    """The file changed size while it was being uploaded."""
    DISK = "disk"
    """The local disk failed while storing."""
    NOT_CONFIGURED = "not_configured"
    """The backend is missing its configuration (e.g. no or a malformed token)."""
    BAD_CREDENTIALS = "bad_credentials"
    """The credentials could not be used."""
    ACCESS_DENIED = "access_denied"
    """The store rejected the credentials for this object."""
    STORE_SUSPENDED = "store_suspended"
    STORE_MISSING = "store_missing"
    OBJECT_MISSING = "object_missing"
    SOURCE_UNREADABLE = "source_unreadable"
    """The file to store is missing or cannot be read."""
    REJECTED = "rejected"
    """The request itself was refused (an unsafe pathname, a 4xx answer, an argument check)."""
    CLOSED = "closed"
    """The storage was already closed."""


class StorageError(Exception):
    """A storage failure, described by facts only.

    Attributes:
        kind: What went wrong.
        retry_after: Seconds the store asked us to wait, when it said.
    """

    def __init__(self, message: str, *, kind: StorageFailure, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


@dataclass(frozen=True)
class StoredObject:
    """A stored copy: ``url`` is its canonical address, ``download_url`` forces a download."""

    pathname: str
    url: str
    download_url: str
    byte_size: int
    content_type: str


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about an object it holds (for serving it back)."""

    pathname: str
    size: int
    content_type: str | None


class Storage(Protocol):
    """Puts finished files somewhere durable. Implementations must overwrite an existing pathname
    (so a retried upload replaces rather than duplicates) and never leave a partial object."""

    name: str

    async def put_file(
        self,
        path: Path,
        pathname: str,
        content_type: str,
        *,
        on_progress: ProgressCallback | None = None,
    ) -> StoredObject: ...

    async def delete(self, pathname: str) -> None: ...

    async def aclose(self) -> None: ...

    # --- reading back (the ``api`` process serves stored videos) ----------------------------------

    def pathname_of(self, url: str) -> str | None:
        """The pathname of an object this store returned ``url`` for; ``None`` if the URL is not its."""
        ...

    async def stat(self, pathname: str) -> ObjectInfo:
        """Size and type of an object; ``StorageError`` with ``OBJECT_MISSING`` when there is none."""
        ...

    def open_range(self, pathname: str, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Stream bytes ``[start, end)`` of an object, in chunks of at most 1 MiB."""
        ...


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_segment(value: str) -> str:
    """Make one pathname segment: no slashes, no dot-dot, nothing outside a conservative alphabet."""
    cleaned = _UNSAFE.sub("-", value).strip(".-")
    return cleaned[:128] or "unnamed"


# Lower case only: on a case-insensitive disk (a bind mount on macOS) ``A`` and ``a`` are one name.
_READABLE = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
_HASH_CHARS = 16
_READABLE_PART = 100


def unique_name(value: str) -> str:
    """One pathname segment for ``value`` that no other value maps to.

    A value that is already a plain name (lower-case letters, digits, ``.``, ``_`` and ``-``,
    starting with a letter or digit, at most 128 characters) is used as it is, so ordinary ids stay
    readable. Any other value becomes its :func:`safe_segment` form (at most 100 characters), ``~``
    and 16 hex digits of its SHA-256: ``a/b``, ``a?b`` and ``a b`` get different names, and so do
    long ids that share a prefix. ``~`` never occurs in a plain name, so the two kinds cannot meet.
    """
    if _READABLE.fullmatch(value):
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    return f"{safe_segment(value)[:_READABLE_PART]}~{digest}"


def object_pathname(prefix: str, workflow_id: str, name: str, extension: str = "") -> str:
    """Deterministic pathname for one of a workflow's files, e.g. ``videos/<workflow>/<video>.mp4``.

    The workflow id and the name become :func:`unique_name` segments, so a hostile id cannot escape
    ``prefix`` and two different ids never share a pathname.

    Args:
        prefix: Fixed leading folders (``videos``); sanitised.
        workflow_id: The workflow the file belongs to.
        name: The file's name without its extension (the video id).
        extension: Appended after a dot when given (``mp4``, ``thumbnail.webp``); a fixed,
            plain suffix chosen by the caller.
    """
    parts = [safe_segment(p) for p in prefix.split("/") if p.strip()]
    filename = unique_name(name) + (f".{safe_segment(extension)}" if extension else "")
    return "/".join([*parts, unique_name(workflow_id), filename])
