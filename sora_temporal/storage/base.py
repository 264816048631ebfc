"""The storage interface every backend implements."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

ProgressCallback = Callable[[int], None]
"""Called with the number of bytes sent so far; activities heartbeat from it."""


class StorageError(Exception):
    """A storage failure.

    Attributes:
        retryable: Whether trying again later can help (rate limits, 5xx, network).
        retry_after: Seconds the store asked us to wait, when it said.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class StoredObject:
    """A stored copy: ``url`` is its canonical address, ``download_url`` forces a download."""

    pathname: str
    url: str
    download_url: str
    byte_size: int
    content_type: str


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


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_segment(value: str) -> str:
    """Make one pathname segment: no slashes, no dot-dot, nothing outside a conservative alphabet."""
    cleaned = _UNSAFE.sub("-", value).strip(".-")
    return cleaned[:128] or "unnamed"


def object_pathname(prefix: str, workflow_id: str, filename: str) -> str:
    """Deterministic pathname for one of a workflow's files, e.g. ``videos/<workflow>/<video>.mp4``.

    Every segment is sanitised, so a hostile workflow id or video id cannot escape ``prefix``.
    """
    parts = [safe_segment(p) for p in prefix.split("/") if p.strip()]
    return "/".join([*parts, safe_segment(workflow_id), safe_segment(filename)])
