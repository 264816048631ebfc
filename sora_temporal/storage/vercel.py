"""Vercel Blob storage through the official ``vercel-blob`` SDK (async API).

The SDK does the HTTP; this module decides how to feed it (streamed from disk, multipart above a
threshold), how to configure it (explicit credentials, our own HTTP client) and how its errors map
to :class:`StorageError` so that Temporal, not the SDK, owns retries (the SDK never retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import anyio
import httpx2
from vercel import blob
from vercel.api import session as vercel_session
from vercel.errors import VercelError

from sora_temporal.storage.base import ProgressCallback, StorageError, StoredObject

Access = Literal["public", "private"]

DEFAULT_API_URL = "https://vercel.com/api/blob"
"""Where the SDK sends API calls unless ``VERCEL_BLOB_API_URL`` says otherwise."""

BLOB_HOST_SUFFIX = ".blob.vercel-storage.com"
"""Blob URLs are ``https://<store>.<public|private>.blob.vercel-storage.com/<pathname>``."""

MIN_PART_SIZE = 5 * 1024 * 1024
"""The service rejects smaller parts, except the last."""

MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_PARTS = 10_000
ONE_YEAR_SECONDS = 365 * 24 * 60 * 60
PROGRESS_KEEPALIVE_SECONDS = 10.0

_TOKEN = re.compile(r"^vercel_blob_rw_([A-Za-z0-9-]+)_(.+)$")
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

    Raises:
        StorageError: Non-retryable, when the token does not have that shape. The message never
            repeats the token.
    """
    match = _TOKEN.match(token.strip())
    if match is None or not match.group(2).strip("_"):
        raise StorageError(
            "BLOB_READ_WRITE_TOKEN is malformed: expected vercel_blob_rw_<storeId>_<secret>",
            retryable=False,
        )
    return match.group(1)


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (``localhost``, 127.0.0.0/8 or ``::1``)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LoopbackBlobTransport(httpx2.AsyncBaseTransport):
    """Sends requests for ``*.blob.vercel-storage.com`` to a local Blob emulator instead.

    The SDK only accepts canonical blob URLs, so the emulator hands those out; this transport
    rewrites their scheme, host and port to the emulator's while keeping the original ``Host``
    header, from which the emulator reads the store and access level. Every other request (API
    calls to the emulator itself) passes through unchanged.

    Args:
        emulator_url: Any URL on the emulator, e.g. the ``VERCEL_BLOB_API_URL`` pointing at it.
        inner: The transport that really sends; defaults to a plain HTTP/1.1 transport that
            ignores proxy environment variables (a proxy would not reach loopback anyway).
    """

    def __init__(self, emulator_url: str, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        target = httpx2.URL(emulator_url)
        self._scheme = target.scheme
        self._host = target.host
        self._port = target.port
        self._inner = inner or httpx2.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Rewrite blob-host requests to the emulator, then send."""
        if request.url.host.endswith(BLOB_HOST_SUFFIX):
            request.url = request.url.copy_with(scheme=self._scheme, host=self._host, port=self._port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self._inner.aclose()


@dataclass
class _RetryAfterSlot:
    seconds: float | None = None


# Set per operation. The SDK drops Retry-After on everything but 429, and its exceptions do not
# carry the response, so a response hook on our HTTP client writes it here. The slot is a mutable
# object because the SDK sends streamed uploads from a child task, which sees a copy of the context.
_retry_after: ContextVar[_RetryAfterSlot | None] = ContextVar("vercel_blob_retry_after", default=None)


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, math.ceil((when - datetime.now(UTC)).total_seconds()))


async def _note_retry_after(response: httpx2.Response) -> None:
    slot = _retry_after.get()
    if slot is not None and response.status_code >= 400:
        slot.seconds = _parse_retry_after(response.headers.get("retry-after", ""))


class _Progress:
    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self.sent = 0

    def advance(self, n: int) -> None:
        self.sent += n
        if self._callback is not None and n:
            self._callback(self.sent)

    @contextlib.asynccontextmanager
    async def keepalive(self, every: float) -> AsyncIterator[None]:
        """Repeat the last figure every ``every`` seconds while the body runs.

        Between the last byte and the answer the service may work for a while (joining the
        parts of a large multipart upload); heartbeats driven by the callback must not stop then.
        A callback failure surfaces when the body finishes.
        """
        callback = self._callback
        if callback is None:
            yield
            return

        async def tick() -> None:
            while True:
                await asyncio.sleep(every)
                callback(self.sent)

        task = asyncio.create_task(tick())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


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
        api_url: The Blob API base URL. Defaults to ``VERCEL_BLOB_API_URL`` or the real service.
            When it is a loopback URL (a local emulator), blob URLs are routed to it too.
        httpx_client_factory: Builds the ``httpx2.AsyncClient`` the SDK sends with (tests use it to
            inject transports). A response hook that records ``Retry-After`` is added to it.
        timeout: Seconds allowed for each connect/read/write step of a request.
        progress_keepalive: While a call waits for the service after sending, ``on_progress`` is
            repeated this often, so heartbeats continue (e.g. while a large multipart upload is
            being joined).

    Raises:
        StorageError: Non-retryable, when the token is missing or malformed.
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
        progress_keepalive: float = PROGRESS_KEEPALIVE_SECONDS,
    ) -> None:
        if not token or not token.strip():
            raise StorageError("BLOB_READ_WRITE_TOKEN is not set", retryable=False)
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
        self.api_url = (
            api_url
            or os.environ.get("VERCEL_BLOB_API_URL")
            or os.environ.get("NEXT_PUBLIC_VERCEL_BLOB_API_URL")
            or DEFAULT_API_URL
        ).rstrip("/")
        self._timeout = timeout
        self._progress_keepalive = progress_keepalive
        self._client_factory = httpx_client_factory or self._default_client
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"VercelBlobStorage(store_id={self.store_id!r}, access={self.access!r}, api_url={self.api_url!r})"
        )

    # --- SDK plumbing ---------------------------------------------------------------------------

    def _default_client(self) -> httpx2.AsyncClient:
        loopback = is_loopback_url(self.api_url)
        return httpx2.AsyncClient(
            timeout=httpx2.Timeout(self._timeout, connect=min(self._timeout, 30.0)),
            limits=httpx2.Limits(max_connections=16, max_keepalive_connections=4),
            transport=LoopbackBlobTransport(self.api_url) if loopback else None,
            # Proxy variables cannot apply to an emulator on loopback.
            trust_env=not loopback,
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
            StorageError: Retryable for rate limits (with the requested delay), 5xx responses and
                network failures; not retryable for a rejected token, a suspended or missing
                store, or a missing source file.
        """
        self._check_open()
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError as err:
            raise StorageError(f"cannot upload {path}: file not found", retryable=False) from err
        except OSError as err:
            raise StorageError(f"cannot upload {path}: {err}", retryable=False) from err
        progress = _Progress(on_progress)
        slot = _RetryAfterSlot()
        reset = _retry_after.set(slot)
        try:
            size = os.fstat(fd).st_size
            async with progress.keepalive(self._progress_keepalive), self.sdk_session():
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

    async def delete(self, pathname: str) -> None:
        """Delete ``pathname``; deleting a missing object succeeds.

        Raises:
            StorageError: Classified like :meth:`put_file`.
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
            raise StorageError("storage is closed", retryable=False)

    # --- errors ---------------------------------------------------------------------------------

    def _storage_error(self, err: BaseException, operation: str, retry_after: float | None) -> StorageError:
        error = _classify(err, retry_after)
        message = f"Vercel Blob {operation} failed: {error}"
        # Belt and braces: no code path puts the token in a message, but a server could echo it.
        scrubbed = message.replace(self._token, "<token>")
        return StorageError(scrubbed, retryable=error.retryable, retry_after=error.retry_after)


def _classify(err: BaseException, retry_after: float | None) -> StorageError:
    """Map an SDK (or transport) failure to a retryable or permanent ``StorageError``."""
    status = getattr(err, "status_code", None)
    if isinstance(err, blob.BlobServiceRateLimited):
        delay = retry_after if retry_after is not None else (err.retry_after or None)
        return StorageError(f"rate limited (HTTP {status})", retryable=True, retry_after=delay)
    if isinstance(err, blob.BlobServiceNotAvailable):
        return StorageError(f"service unavailable (HTTP {status})", retryable=True, retry_after=retry_after)
    if isinstance(err, blob.BlobCredentialsError):
        return StorageError(f"bad credentials: {_sdk_message(err)}", retryable=False)
    if isinstance(err, blob.BlobAccessError):
        return StorageError(
            f"access denied (HTTP {status}): the store rejected BLOB_READ_WRITE_TOKEN, or the token "
            "cannot reach this object",
            retryable=False,
        )
    if isinstance(err, blob.BlobStoreSuspendedError):
        return StorageError("the Blob store is suspended", retryable=False)
    if isinstance(err, blob.BlobStoreNotFoundError):
        return StorageError("the Blob store does not exist", retryable=False)
    if isinstance(err, blob.BlobNotFoundError):
        return StorageError("the blob does not exist", retryable=False)
    if isinstance(err, blob.BlobContentLengthError):
        return StorageError(f"the file changed while uploading: {_sdk_message(err)}", retryable=True)
    if isinstance(err, blob.BlobStreamError):
        # A malformed response is most likely a proxy or a truncated connection.
        return StorageError(f"malformed response: {_sdk_message(err)}", retryable=True)
    if isinstance(err, blob.BlobError):
        cause = err.__cause__
        if status is None and cause is not None:
            return StorageError(f"network error: {type(cause).__name__}: {cause}", retryable=True)
        if status is None or status >= 500 or status in (408, 429):
            return StorageError(
                f"{_sdk_message(err)} (HTTP {status})", retryable=True, retry_after=retry_after
            )
        return StorageError(f"{_sdk_message(err)} (HTTP {status})", retryable=False)
    if isinstance(err, (httpx2.HTTPError, anyio.BrokenResourceError)):
        return StorageError(f"network error: {type(err).__name__}: {err}", retryable=True)
    if isinstance(err, OSError):
        return StorageError(f"cannot read the file: {err}", retryable=False)
    return StorageError(f"rejected before sending: {type(err).__name__}: {err}", retryable=False)


def _sdk_message(err: BaseException) -> str:
    return str(err).removeprefix("Vercel Blob: ")
