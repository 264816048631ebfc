"""A small async client for the OpenAI Videos (Sora) protocol.

It never retries by itself: Temporal owns retries, and a silent retry of ``POST /videos`` could
create (and bill) a second job. Every failure leaves as a :class:`~sora_temporal.sora.errors.SoraError`
that carries what is known (status, error code, ``Retry-After``, whether the call may have had its
effect); :mod:`sora_temporal.errors` decides from that whether and when to try again.

The API key is sent only to the origin of ``base_url``: a gateway's download link on another host,
and any redirect away from the API's origin, get no credentials.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx

from sora_temporal.sora.errors import classify
from sora_temporal.sora.models import (
    REFERENCE_CONTENT_TYPES,
    AuthStyle,
    ContentStream,
    ReferenceImage,
    Retrieved,
    Video,
    VideoPage,
    parse_page,
    parse_video,
)
from sora_temporal.validation import InvalidVideoRequest, validate_request

if TYPE_CHECKING:
    from sora_temporal.settings import SoraSettings

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT_SECONDS = 30.0
CONTENT_VARIANTS = ("video", "thumbnail", "spritesheet")
LIST_ORDERS = ("asc", "desc")
# An error body is quoted, not stored: a CDN's HTML error page need not be read to the end.
MAX_ERROR_BODY_BYTES = 64 * 1024
_AUTH_HEADERS = ("authorization", "api-key")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_T = TypeVar("_T")
_IMAGE_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/webp": (b"RIFF",),
}


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host.lower(), url.port or _DEFAULT_PORTS.get(url.scheme)


class SoraClient:
    """Async client for ``/videos``; use it as an async context manager or call :meth:`aclose`.

    Args:
        base_url: API root including the version, e.g. ``https://api.openai.com/v1`` or an Azure
            ``https://<resource>.openai.azure.com/openai/v1``.
        api_key: The key, or ``None`` for an endpoint that needs none.
        auth_style: ``Authorization: Bearer`` (default) or Azure's ``api-key`` header.
        timeout: Per-request timeout in seconds, or a detailed ``httpx.Timeout``.
        transport: A custom transport (tests); by default one with connection retries off.
        user_agent: ``User-Agent`` header value.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        auth_style: AuthStyle = AuthStyle.BEARER,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = "sora-temporal/0.1",
    ) -> None:
        self._base_url = httpx.URL(base_url.rstrip("/") + "/")
        if self._base_url.scheme not in _DEFAULT_PORTS or not self._base_url.host:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        self._base_origin = _origin(self._base_url)
        self._api_key = api_key or None
        self._auth_style = AuthStyle(auth_style)
        self._http = httpx.AsyncClient(
            # Retries belong to Temporal. httpx's default transport makes no connection retries
            # either (retries=0), so a failed connect is reported at once as "never sent"; it is
            # left to httpx to build so that proxy settings from the environment still apply.
            transport=transport,
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": user_agent},
            # Checked on every request, redirects included: httpx strips ``Authorization`` on a
            # cross-origin redirect but would forward Azure's ``api-key``.
            event_hooks={"request": [self._strip_foreign_credentials]},
        )

    @classmethod
    def from_settings(cls, settings: SoraSettings) -> SoraClient:
        """A client for the endpoint, key and timeout in ``settings``."""
        return cls(
            base_url=settings.base_url,
            api_key=settings.api_key,
            auth_style=settings.auth_style,
            timeout=settings.timeout_seconds,
        )

    @property
    def base_url(self) -> str:
        """The API root, ending in ``/``."""
        return str(self._base_url)

    @property
    def auth_style(self) -> AuthStyle:
        """How the API key is sent."""
        return self._auth_style

    # --- lifecycle ----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> SoraClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- operations ---------------------------------------------------------------------------

    async def create(
        self,
        *,
        prompt: str,
        model: str,
        size: str,
        seconds: int,
        reference: ReferenceImage | None = None,
        idempotency_key: str | None = None,
    ) -> Video:
        """``POST /videos``: start a job.

        The request is validated first (strictly for Sora models, loosely for others) so that an
        invalid one costs nothing and never reaches the server.

        Args:
            prompt: Text prompt.
            model: Model name.
            size: ``WIDTHxHEIGHT``.
            seconds: Duration; sent as a string as the protocol requires.
            reference: Optional starting image, already fitted to ``size``.
            idempotency_key: Sent as ``Idempotency-Key``; honoured by some gateways, ignored by OpenAI.

        Returns:
            The new job.

        Raises:
            SoraError: :class:`SoraInvalidRequest` for a request refused locally or by the server;
                check ``may_have_created`` on any other failure before trying again.
        """
        operation = "create video"
        try:
            validate_request(prompt, model, size, seconds)
            if reference is not None:
                _check_reference(reference)
        except InvalidVideoRequest as err:
            raise classify(operation, err) from err
        fields = [("prompt", prompt), ("model", model), ("size", size), ("seconds", str(seconds))]
        body, content_type = _multipart(fields, reference)
        headers = {"Content-Type": content_type}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        response = await self._request(operation, "POST", "videos", content=body, headers=headers)
        return self._parse(operation, response, parse_video)

    async def retrieve(self, video_id: str) -> Retrieved:
        """``GET /videos/{id}``: the job's status, and how long the server wants us to wait.

        Raises:
            SoraError: :class:`SoraNotFound` for an unknown (or deleted) id.
        """
        operation = f"retrieve video {video_id}"
        response = await self._request(operation, "GET", _video_path(operation, video_id))
        video = self._parse(operation, response, parse_video)
        return Retrieved(video=video, poll_after_seconds=_poll_after(response.headers))

    async def list(self, *, after: str | None = None, limit: int = 20, order: str = "desc") -> VideoPage:
        """``GET /videos``: one page of recent jobs.

        Args:
            after: ``last_id`` of the previous page.
            limit: Page size (the service allows 1 to 100).
            order: ``desc`` (newest first) or ``asc``.

        Raises:
            SoraError: :class:`SoraInvalidRequest` for an ``order`` or ``limit`` out of range.
        """
        operation = "list videos"
        if order not in LIST_ORDERS:
            raise classify(
                operation, InvalidVideoRequest("order", f"order must be asc or desc, got {order!r}")
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise classify(
                operation, InvalidVideoRequest("limit", f"limit must be a positive integer, got {limit!r}")
            )
        params: dict[str, str | int] = {"limit": limit, "order": order}
        if after:
            params["after"] = after
        response = await self._request(operation, "GET", "videos", params=params)
        return self._parse(operation, response, parse_page)

    async def delete(self, video_id: str) -> bool:
        """``DELETE /videos/{id}``; the service only deletes completed or failed jobs.

        Returns:
            The server's ``deleted`` flag (``True`` when it answered 2xx without saying).

        Raises:
            SoraError: :class:`SoraNotFound` for an unknown id, :class:`SoraInvalidRequest` when the
                job is still running.
        """
        operation = f"delete video {video_id}"
        response = await self._request(operation, "DELETE", _video_path(operation, video_id))
        if not response.content.strip():
            return True
        body = self._parse(operation, response, _json_object)
        deleted = body.get("deleted", True)
        return deleted if isinstance(deleted, bool) else True

    def stream_content(
        self, video_id: str, *, variant: str = "video", url: str | None = None
    ) -> AbstractAsyncContextManager[ContentStream]:
        """Open a download of the job's MP4 (``variant="video"``), thumbnail or spritesheet.

        Args:
            video_id: The job.
            variant: ``video``, ``thumbnail`` or ``spritesheet``.
            url: A download link the status response carried (gateways). Used instead of
                ``/videos/{id}/content``; it gets the API key only if it is on the API's own origin.

        Returns:
            An async context manager yielding a :class:`ContentStream`; the response is closed on
            exit. Redirects (to a CDN) are followed.

        Raises:
            SoraError: On entering, for an error response (:class:`SoraNotFound` when the variant
                is not offered or the content expired); while reading, if the transfer breaks off.
        """
        operation = f"download {variant} of {video_id}"
        if variant not in CONTENT_VARIANTS:
            choices = ", ".join(CONTENT_VARIANTS)
            raise classify(operation, InvalidVideoRequest("variant", f"variant must be one of {choices}"))
        if url:
            try:
                # Relative links are resolved against the API root, as a browser would.
                target = self._base_url.join(url)
            except httpx.InvalidURL as err:
                raise classify(operation, err) from err
            request = self._build("GET", target, headers={"Accept": "*/*"})
        else:
            request = self._build(
                "GET",
                self._base_url.join(f"{_video_path(operation, video_id)}/content"),
                params={"variant": variant},
                headers={"Accept": "*/*"},
            )
        return self._open_stream(operation, request)

    # --- plumbing -----------------------------------------------------------------------------

    def _build(
        self,
        method: str,
        url: httpx.URL,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Request:
        all_headers = dict(headers or {})
        if self._api_key and _origin(url) == self._base_origin:
            if self._auth_style is AuthStyle.API_KEY:
                all_headers["api-key"] = self._api_key
            else:
                all_headers["Authorization"] = f"Bearer {self._api_key}"
        return self._http.build_request(method, url, params=params, headers=all_headers, content=content)

    async def _strip_foreign_credentials(self, request: httpx.Request) -> None:
        strip_foreign_credentials(request, self._base_url)

    async def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send a JSON API call and return its 2xx response, body read; raise a SoraError otherwise."""
        request = self._build(
            method,
            self._base_url.join(path),
            params=params,
            headers={"Accept": "application/json", **(headers or {})},
            content=content,
        )
        try:
            response = await self._http.send(request)
        except httpx.HTTPError as err:
            raise classify(operation, err, api_key=self._api_key) from err
        if not response.is_success:
            raise classify(operation, response, api_key=self._api_key)
        return response

    def _parse(self, operation: str, response: httpx.Response, parser: Callable[[Any], _T]) -> _T:
        try:
            return parser(json.loads(response.content))
        except (ValueError, UnicodeDecodeError) as err:
            raise classify(operation, response, detail=str(err), api_key=self._api_key) from err

    @asynccontextmanager
    async def _open_stream(self, operation: str, request: httpx.Request) -> AsyncIterator[ContentStream]:
        try:
            response = await self._http.send(request, stream=True, follow_redirects=True)
        except httpx.HTTPError as err:
            raise classify(operation, err, api_key=self._api_key) from err
        try:
            if not response.is_success:
                raise classify(operation, await _read_capped(response), api_key=self._api_key)
            yield ContentStream(
                content_type=response.headers.get("content-type"),
                content_length=_declared_length(response),
                _iterate=lambda size: self._iterate(operation, response, size),
            )
        finally:
            await response.aclose()

    async def _iterate(
        self, operation: str, response: httpx.Response, chunk_size: int
    ) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_bytes(chunk_size):
                yield chunk
        except httpx.HTTPError as err:
            raise classify(operation, err, detail="the download broke off", api_key=self._api_key) from err
        expected = _declared_length(response)
        # h11 already refuses a body shorter than Content-Length; this also covers transports that
        # do not, so that a cut-short file is never taken for a complete one.
        if expected is not None and response.num_bytes_downloaded < expected:
            cut = httpx.RemoteProtocolError(
                f"received {response.num_bytes_downloaded} of {expected} bytes", request=response.request
            )
            raise classify(operation, cut, detail="the download broke off", api_key=self._api_key)


def strip_foreign_credentials(request: httpx.Request, api_url: httpx.URL) -> None:
    """Remove the API key headers from ``request`` unless it goes to the origin of ``api_url``."""
    if _origin(request.url) != _origin(api_url):
        for name in _AUTH_HEADERS:
            request.headers.pop(name, None)


def _json_object(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    return body


def _video_path(operation: str, video_id: str) -> str:
    if not isinstance(video_id, str) or not video_id.strip():
        raise classify(operation, InvalidVideoRequest("video_id", "the video id is empty"))
    # Ids are opaque; quoting keeps one with a slash or '?' from addressing another resource.
    return f"videos/{quote(video_id, safe='')}"


def _poll_after(headers: httpx.Headers) -> float | None:
    raw = headers.get("openai-poll-after-ms")
    if raw is None:
        return None
    try:
        value = float(raw.strip()) / 1000.0
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _declared_length(response: httpx.Response) -> int | None:
    # With a content encoding, Content-Length counts compressed bytes, not the bytes yielded.
    if response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
        return None
    raw = response.headers.get("content-length")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 0 else None


async def _read_capped(response: httpx.Response) -> httpx.Response:
    """A copy of a streamed error response holding at most MAX_ERROR_BODY_BYTES of its body."""
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) >= MAX_ERROR_BODY_BYTES:
                break
    except httpx.HTTPError:
        pass  # the status code alone is enough to classify the failure
    # The body is already decoded, so the copy must not claim an encoding or the original length.
    headers = httpx.Headers(response.headers)
    for name in ("content-encoding", "content-length", "transfer-encoding"):
        headers.pop(name, None)
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=bytes(body[:MAX_ERROR_BODY_BYTES]),
        request=response.request,
    )


def _check_reference(reference: ReferenceImage) -> None:
    content_type = reference.content_type.split(";")[0].strip().lower()
    if content_type not in REFERENCE_CONTENT_TYPES:
        raise InvalidVideoRequest(
            "input_reference",
            f"reference image type {reference.content_type!r} is not accepted; use "
            + ", ".join(REFERENCE_CONTENT_TYPES),
        )
    if not reference.data:
        raise InvalidVideoRequest("input_reference", "reference image is empty")
    if not reference.data.startswith(_IMAGE_MAGIC[content_type]) or (
        content_type == "image/webp" and reference.data[8:12] != b"WEBP"
    ):
        raise InvalidVideoRequest("input_reference", f"reference image data is not {content_type}")


def _multipart(fields: list[tuple[str, str]], reference: ReferenceImage | None) -> tuple[bytes, str]:
    """Encode ``multipart/form-data`` as the official SDK sends it, with or without a file."""
    parts = [
        (f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode(), value.encode())
        for name, value in fields
    ]
    if reference is not None:
        filename = "".join(c for c in reference.filename if c not in '"\\\r\n') or "reference"
        content_type = reference.content_type.split(";")[0].strip().lower()
        head = (
            f'Content-Disposition: form-data; name="input_reference"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        parts.append((head.encode(), reference.data))
    while True:
        boundary = secrets.token_hex(16)
        marker = boundary.encode()
        # A boundary that occurs in the content would split it; 128 random bits make that a formality.
        if not any(marker in value for _, value in parts):
            break
    body = b"".join(b"--" + marker + b"\r\n" + head + value + b"\r\n" for head, value in parts)
    body += b"--" + marker + b"--\r\n"
    return body, f"multipart/form-data; boundary={boundary}"
