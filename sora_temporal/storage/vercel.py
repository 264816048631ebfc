"""Vercel Blob storage through the official ``vercel-blob`` SDK (async API).

The SDK does the HTTP; this module decides how to feed it (streamed from disk, multipart above a
threshold), how to configure it (explicit credentials, our own HTTP client) and what its errors
mean, as a :class:`StorageError` of some :class:`StorageFailure` kind. Whether and when to try again
is decided in :mod:`sora_temporal.errors`; Temporal, not the SDK, owns retries (the SDK never
retries). Progress goes to the caller's callback only; nothing here touches activity APIs.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

import anyio
import httpx2
from vercel import blob
from vercel.api import session as vercel_session
from vercel.errors import VercelError

from sora_temporal.retry_after import parse_retry_after
from sora_temporal.storage.base import (
    ObjectInfo,
    ProgressCallback,
    StorageError,
    StorageFailure,
    StoredObject,
)

Access = Literal["public", "private"]

DEFAULT_API_URL = "https://vercel.com/api/blob"
"""Where the SDK sends API calls unless told otherwise (``VERCEL_BLOB_API_URL``)."""

MIN_PART_SIZE = 5 * 1024 * 1024
"""The service rejects smaller parts, except the last."""

MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_PARTS = 10_000
ONE_YEAR_SECONDS = 365 * 24 * 60 * 60

_TOKEN_PREFIX = "vercel_blob_rw_"
_STORE_ID = re.compile(r"[A-Za-z0-9-]+")
# One disk read feeds many of the SDK's 64 KiB chunks; this bounds what an upload holds in memory.
_READ_AHEAD = 1024 * 1024

HttpxClientFactory = Callable[[], httpx2.AsyncClient]

# What an SDK call can raise besides cancellation. ValueError/TypeError are its argument checks
# (e.g. a pathname with ``..``); a retry cannot fix those.
_SDK_FAILURES = (
    VercelError,
    blob.BlobError,
    httpx2.HTTPError,
    OSError,
    anyio.BrokenResourceError,
    ValueError,
    TypeError,
)


def store_id_from_token(token: str) -> str:
    """The store id embedded in a ``vercel_blob_rw_<storeId>_<secret>`` read-write token.

    The rule is the SDK's (``vercel.blob``'s ``store_from_read_write_token``), applied to the
    stripped token: the store id runs to the first ``_`` after the prefix and is letters, digits
    and ``-``; the secret is the rest and is not blank. The Blob emulator follows the same rule.

    Raises:
        StorageError: ``NOT_CONFIGURED``, when the token does not have that shape. The message
            never repeats the token.
    """
    token = token.strip()
    store_id, separator, secret = token.removeprefix(_TOKEN_PREFIX).partition("_")
    store_id = store_id.strip()
    if (
        not token.startswith(_TOKEN_PREFIX)
        or not separator
        or not _STORE_ID.fullmatch(store_id)
        or not secret.strip().strip("_")
    ):
        raise StorageError(
            "BLOB_READ_WRITE_TOKEN is malformed: expected vercel_blob_rw_<storeId>_<secret>",
            kind=StorageFailure.NOT_CONFIGURED,
        )
    return store_id


@dataclass
class _RetryAfterSlot:
    seconds: float | None = None


# Set per operation. The SDK drops Retry-After on everything but 429, and its exceptions do not
# carry the response, so a response hook on our HTTP client writes it here. The slot is a mutable
# object because the SDK sends streamed uploads from a child task, which sees a copy of the context.
_retry_after: ContextVar[_RetryAfterSlot | None] = ContextVar("vercel_blob_retry_after", default=None)


async def _note_retry_after(response: httpx2.Response) -> None:
    slot = _retry_after.get()
    if slot is not None and response.status_code >= 400:
        slot.seconds = parse_retry_after(response.headers)


class _Progress:
    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self.sent = 0

    def advance(self, n: int) -> None:
        self.sent += n
        if self._callback is not None and n:
            self._callback(self.sent)


class _FileRangeReader:
    """An async byte reader over ``length`` bytes of an open file, starting at ``offset``.

    Reads ahead up to 1 MiB at a time in a worker thread and hands the SDK whatever it asks for
    from that buffer, so memory stays flat whatever the file size. Bytes count as sent when the
    SDK takes them: it writes them to the socket before asking for more.
    """

    def __init__(self, fd: int, offset: int, length: int, progress: _Progress) -> None:
        self._fd = fd
        self._position = offset
        self._unread = length
        self._progress = progress
        self._buffer = memoryview(b"")

    async def read(self, size: int = -1, /) -> bytes:
        if not self._buffer:
            if self._unread <= 0:
                return b""
            block = await anyio.to_thread.run_sync(
                os.pread, self._fd, min(_READ_AHEAD, self._unread), self._position
            )
            if not block:
                # The file shrank under us; the SDK turns the short body into a length error.
                return b""
            self._position += len(block)
            self._unread -= len(block)
            self._buffer = memoryview(block)
        take = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        chunk = bytes(self._buffer[:take])
        self._buffer = self._buffer[take:]
        self._progress.advance(len(chunk))
        return chunk


class VercelBlobStorage:
    """Stores objects in a Vercel Blob store.

    Every upload uses a fixed pathname with ``allow_overwrite`` and no random suffix, so a retried
    upload replaces the earlier object instead of adding another. Files are streamed from disk;
    above ``multipart_threshold`` they go up in ``part_size`` parts, one at a time.

    Credentials are passed to the SDK explicitly, so ``VERCEL_OIDC_TOKEN``/``BLOB_STORE_ID`` in the
    environment cannot silently switch the store being written to.

    Args:
        token: A read-write token, ``vercel_blob_rw_<storeId>_<secret>`` (``BLOB_READ_WRITE_TOKEN``).
        access: ``"private"`` or ``"public"``; must match how the store was created.
        multipart_threshold: Files larger than this many bytes use a multipart upload.
        part_size: Bytes per multipart part, at least 5 MiB. Raised automatically when a file would
            otherwise need more than 10,000 parts.
        cache_control_max_age: Seconds browsers and the CDN may cache an object; ``None`` keeps
            the service default.
        api_url: The Blob API base URL; the real service's when ``None``.
        httpx_client_factory: Builds the ``httpx2.AsyncClient`` the SDK sends with (whoever starts a
            local emulator passes one that routes blob URLs to it). A response hook that records
            ``Retry-After`` is added to it.
        timeout: Seconds allowed for each connect/read/write step of a request.

    Raises:
        StorageError: ``NOT_CONFIGURED``, when the token is missing or malformed.
        ValueError: An option is out of range.
    """

    name = "vercel"

    def __init__(
        self,
        token: str,
        *,
        access: Access = "private",
        multipart_threshold: int = 64 * 1024 * 1024,
        part_size: int = 8 * 1024 * 1024,
        cache_control_max_age: int | None = ONE_YEAR_SECONDS,
        api_url: str | None = None,
        httpx_client_factory: HttpxClientFactory | None = None,
        timeout: float = 300.0,
    ) -> None:
        if not token or not token.strip():
            raise StorageError("BLOB_READ_WRITE_TOKEN is not set", kind=StorageFailure.NOT_CONFIGURED)
        if access not in ("public", "private"):
            raise ValueError(f"access must be 'public' or 'private', got {access!r}")
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between 5 MiB and 5 GiB, got {part_size}")
        if multipart_threshold < 0:
            raise ValueError(f"multipart_threshold must not be negative, got {multipart_threshold}")
        if cache_control_max_age is not None and cache_control_max_age < 0:
            raise ValueError(f"cache_control_max_age must not be negative, got {cache_control_max_age}")
        self._token = token.strip()
        self.store_id = store_id_from_token(self._token)
        self.access: Access = access
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.cache_control_max_age = cache_control_max_age
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self._timeout = timeout
        self._client_factory = httpx_client_factory or self._default_client
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"VercelBlobStorage(store_id={self.store_id!r}, access={self.access!r}, api_url={self.api_url!r})"
        )

    # --- SDK plumbing ---------------------------------------------------------------------------

    def _default_client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            timeout=httpx2.Timeout(self._timeout, connect=min(self._timeout, 30.0)),
            limits=httpx2.Limits(max_connections=16, max_keepalive_connections=4),
        )

    def _client(self) -> httpx2.AsyncClient:
        client = self._client_factory()
        hooks = client.event_hooks
        client.event_hooks = {
            "request": list(hooks.get("request", [])),
            "response": [*hooks.get("response", []), _note_retry_after],
        }
        return client

    async def _credentials(self) -> blob.BlobCredentials:
        return blob.BlobCredentials(self._token, self.store_id, blob.CredentialKind.READ_WRITE)

    def sdk_session(self) -> AbstractAsyncContextManager[object]:
        """A ``vercel.api.session`` configured like this storage (API URL, token, HTTP client).

        Inside it, any ``vercel.blob`` call (``head_blob``, ``stream_blob``, ...) talks to the same
        store the same way, e.g. to read an object back through its URL.
        """
        options = blob.BlobServiceOptions(base_url=self.api_url, credentials_factory=self._credentials)
        return vercel_session(service_options=[options], httpx_client_factory=self._client)

    # --- Storage protocol -----------------------------------------------------------------------

    async def put_file(
        self,
        path: Path,
        pathname: str,
        content_type: str,
        *,
        on_progress: ProgressCallback | None = None,
    ) -> StoredObject:
        """Upload ``path`` to ``pathname``, replacing any object already there.

        Args:
            path: The file to upload; it is streamed, never read whole into memory.
            pathname: The object's pathname in the store, e.g. ``videos/<workflow>/<video>.mp4``.
            content_type: Stored with the object and served back, e.g. ``video/mp4``.
            on_progress: Called with the bytes handed to the network so far.

        Returns:
            The object's URL and download URL (the latter makes browsers save the file).

        Raises:
            StorageError: Of the kind that says what went wrong: a rate limit (with the delay the
                store asked for), a failing store, the network, a rejected token, a suspended or
                missing store, a missing source file, ...
        """
        self._check_open()
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError as err:
            raise StorageError(
                f"cannot upload {path}: file not found", kind=StorageFailure.SOURCE_UNREADABLE
            ) from err
        except OSError as err:
            raise StorageError(f"cannot upload {path}: {err}", kind=StorageFailure.SOURCE_UNREADABLE) from err
        progress = _Progress(on_progress)
        slot = _RetryAfterSlot()
        reset = _retry_after.set(slot)
        try:
            size = os.fstat(fd).st_size
            async with self.sdk_session():
                if size > self.multipart_threshold:
                    result = await self._put_multipart(fd, size, pathname, content_type, progress)
                else:
                    result = await blob.put_blob(
                        pathname,
                        _FileRangeReader(fd, 0, size, progress),
                        access=self.access,
                        content_length=size,
                        content_type=content_type,
                        add_random_suffix=False,
                        allow_overwrite=True,
                        cache_control_max_age=self.cache_control_max_age,
                    )
        except _SDK_FAILURES as err:
            raise self._storage_error(err, f"upload {pathname!r}", slot.seconds) from None
        finally:
            _retry_after.reset(reset)
            os.close(fd)
        return StoredObject(
            pathname=result.pathname,
            url=result.url,
            download_url=result.download_url,
            byte_size=size,
            content_type=result.content_type,
        )

    async def _put_multipart(
        self, fd: int, size: int, pathname: str, content_type: str, progress: _Progress
    ) -> blob.PutResult:
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        upload = blob.multipart_upload_blob(
            pathname,
            access=self.access,
            content_type=content_type,
            add_random_suffix=False,
            allow_overwrite=True,
            cache_control_max_age=self.cache_control_max_age,
        )
        async with upload:
            for offset in range(0, size, part_size):
                length = min(part_size, size - offset)
                await upload.upload_part(
                    _FileRangeReader(fd, offset, length, progress), content_length=length
                )
        return upload.result

    def pathname_of(self, url: str) -> str | None:
        """The pathname in a blob URL of this store (``https://<store>.<access>.blob.vercel-storage.com/<pathname>``)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or not host.startswith(self.store_id.lower() + "."):
            return None
        if not host.endswith(".blob.vercel-storage.com"):
            return None
        return unquote(parts.path.lstrip("/")) or None

    async def stat(self, pathname: str) -> ObjectInfo:
        """Size and content type, from the SDK's ``head_blob``.

        Raises:
            StorageError: ``OBJECT_MISSING`` for no such blob; otherwise described like :meth:`put_file`'s.
        """
        self._check_open()
        try:
            async with self.sdk_session():
                head = await blob.head_blob(pathname)
        except _SDK_FAILURES as err:
            raise self._storage_error(err, f"head {pathname!r}", None) from None
        return ObjectInfo(pathname=pathname, size=head.size, content_type=head.content_type)

    async def open_range(self, pathname: str, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Stream bytes ``[start, end)`` through the SDK's ``stream_blob`` (with the token).

        The SDK sends no ``Range`` header, so the bytes before ``start`` are read and dropped, and the
        download stops once ``end`` is reached.

        Raises:
            StorageError: ``OBJECT_MISSING`` for no such blob; otherwise described like :meth:`put_file`'s.
        """
        self._check_open()
        position = 0
        try:
            async with self.sdk_session(), blob.stream_blob(pathname, access=self.access) as download:
                async for chunk in download:
                    if position >= end:
                        break
                    skip = max(0, start - position)
                    keep = chunk[skip : max(skip, end - position)]
                    position += len(chunk)
                    if keep:
                        yield bytes(keep)
        except _SDK_FAILURES as err:
            raise self._storage_error(err, f"read {pathname!r}", None) from None

    async def delete(self, pathname: str) -> None:
        """Delete ``pathname``; deleting a missing object succeeds.

        Raises:
            StorageError: Described like :meth:`put_file`'s failures.
        """
        self._check_open()
        slot = _RetryAfterSlot()
        reset = _retry_after.set(slot)
        try:
            async with self.sdk_session():
                await blob.delete_blob(pathname)
        except _SDK_FAILURES as err:
            raise self._storage_error(err, f"delete {pathname!r}", slot.seconds) from None
        finally:
            _retry_after.reset(reset)

    async def aclose(self) -> None:
        """Refuse further calls; each call's SDK session already closed its HTTP client."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("storage is closed", kind=StorageFailure.CLOSED)

    # --- errors ---------------------------------------------------------------------------------

    def _storage_error(self, err: BaseException, operation: str, retry_after: float | None) -> StorageError:
        kind, what, delay = _describe(err, retry_after)
        message = f"Vercel Blob {operation} failed: {what}"
        # Belt and braces: no code path puts the token in a message, but a server could echo it.
        scrubbed = message.replace(self._token, "<token>")
        return StorageError(scrubbed, kind=kind, retry_after=delay)


def _describe(err: BaseException, retry_after: float | None) -> tuple[StorageFailure, str, float | None]:
    """What an SDK (or transport) failure means: its kind, a message and the delay the store asked for."""
    status = getattr(err, "status_code", None)
    if isinstance(err, blob.BlobServiceRateLimited):
        delay = retry_after if retry_after is not None else (err.retry_after or None)
        return StorageFailure.RATE_LIMITED, f"rate limited (HTTP {status})", delay
    if isinstance(err, blob.BlobServiceNotAvailable):
        return StorageFailure.UNAVAILABLE, f"service unavailable (HTTP {status})", retry_after
    if isinstance(err, blob.BlobCredentialsError):
        return StorageFailure.BAD_CREDENTIALS, f"bad credentials: {_sdk_message(err)}", None
    if isinstance(err, blob.BlobAccessError):
        return (
            StorageFailure.ACCESS_DENIED,
            f"access denied (HTTP {status}): the store rejected BLOB_READ_WRITE_TOKEN, or the token "
            "cannot reach this object",
            None,
        )
    if isinstance(err, blob.BlobStoreSuspendedError):
        return StorageFailure.STORE_SUSPENDED, "the Blob store is suspended", None
    if isinstance(err, blob.BlobStoreNotFoundError):
        return StorageFailure.STORE_MISSING, "the Blob store does not exist", None
    if isinstance(err, blob.BlobNotFoundError):
        return StorageFailure.OBJECT_MISSING, "the blob does not exist", None
    if isinstance(err, blob.BlobContentLengthError):
        return StorageFailure.SOURCE_CHANGED, f"the file changed while uploading: {_sdk_message(err)}", None
    if isinstance(err, blob.BlobStreamError):
        # A malformed response is most likely a proxy or a truncated connection.
        return StorageFailure.MALFORMED_RESPONSE, f"malformed response: {_sdk_message(err)}", None
    if isinstance(err, blob.BlobError):
        cause = err.__cause__
        if status is None and cause is not None:
            return StorageFailure.NETWORK, f"network error: {type(cause).__name__}: {cause}", None
        what = f"{_sdk_message(err)} (HTTP {status})"
        if status == 429:
            return StorageFailure.RATE_LIMITED, what, retry_after
        if status is None or status >= 500 or status == 408:
            return StorageFailure.UNAVAILABLE, what, retry_after
        return StorageFailure.REJECTED, what, None
    if isinstance(err, (httpx2.HTTPError, anyio.BrokenResourceError)):
        return StorageFailure.NETWORK, f"network error: {type(err).__name__}: {err}", None
    if isinstance(err, OSError):
        return StorageFailure.SOURCE_UNREADABLE, f"cannot read the file: {err}", None
    return StorageFailure.REJECTED, f"rejected before sending: {type(err).__name__}: {err}", None


def _sdk_message(err: BaseException) -> str:
    return str(err).removeprefix("Vercel Blob: ")
