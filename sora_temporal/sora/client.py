"""A small async client for the OpenAI Videos (Sora) protocol.

It never retries by itself: Temporal owns retries, and a silent retry of ``POST /videos`` could
create (and bill) a second job. Every failure leaves as a :class:`~sora_temporal.sora.errors.SoraError`
that carries what is known (status, error code, ``Retry-After``, whether the call may have had its
effect); :mod:`sora_temporal.errors` decides from that whether and when to try again.

The API key is sent only to the origin of ``base_url``: a gateway's download link on another host,
and any redirect away from the API's origin, get no credentials.

Everything the API sends back is treated as untrusted: bodies are read under hard caps on their
decoded size (:mod:`sora_temporal.bodies`), video ids must follow the id rule before they are used
anywhere, and download links or redirects that leave the API's origin are fetched only as
:mod:`sora_temporal.netguard` allows (public addresses, https, an optional host allow-list).
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

from sora_temporal.bodies import (
    BodyTooLarge,
    CappedDecoder,
    UnsupportedEncoding,
    aiter_capped,
    content_codings,
    declared_length,
    materialise,
    read_capped,
)
from sora_temporal.netguard import (
    REDIRECT_STATUSES,
    UrlPolicy,
    UrlRefused,
    guarded_client,
    redact_url,
)
from sora_temporal.sora.errors import (
    SoraError,
    SoraProtocolError,
    SoraResponseTooLarge,
    SoraUnsafeResponse,
    classify,
)
from sora_temporal.sora.models import (
    REFERENCE_CONTENT_TYPES,
    AuthStyle,
    ContentStream,
    InvalidVideoId,
    ReferenceImage,
    Retrieved,
    Video,
    VideoPage,
    check_video_id,
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
# A status, list or create answer is a few kilobytes; a list page of 100 jobs well under 1 MiB.
MAX_JSON_BYTES = 1024 * 1024
DEFAULT_MAX_DOWNLOAD_BYTES = 2 * 1024 * 1024 * 1024
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
        url_policy: What download links and redirects that leave the API's origin may point at;
            public https addresses only by default. The API's own origin is trusted as configured.
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
        url_policy: UrlPolicy | None = None,
    ) -> None:
        self._base_url = httpx.URL(base_url.rstrip("/") + "/")
        if self._base_url.scheme not in _DEFAULT_PORTS or not self._base_url.host:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        self._base_origin = _origin(self._base_url)
        self._api_key = api_key or None
        self._auth_style = AuthStyle(auth_style)
        self._url_policy = url_policy or UrlPolicy()
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        # Links off the API's origin go through a second client that connects only to permitted addresses.
        self._foreign: httpx.AsyncClient | None = None
        self._http = httpx.AsyncClient(
            # Retries belong to Temporal. httpx's default transport makes no connection retries
            # either (retries=0), so a failed connect is reported at once as "never sent"; it is
            # left to httpx to build so that proxy settings from the environment still apply.
            transport=transport,
            timeout=self._timeout,
            follow_redirects=False,
            # A body is read under a cap on its decoded size (sora_temporal.bodies); asking for no
            # encoding keeps a well-behaved server from sending one.
            headers={"User-Agent": user_agent, "Accept-Encoding": "identity"},
            # Checked on every request, redirects included: httpx strips ``Authorization`` on a
            # cross-origin redirect but would forward Azure's ``api-key``.
            event_hooks={"request": [self._strip_foreign_credentials]},
        )

    @classmethod
    def from_settings(cls, settings: SoraSettings, *, url_policy: UrlPolicy | None = None) -> SoraClient:
        """A client for the endpoint, key and timeout in ``settings``.

        ``url_policy`` says what download links may point at (``Settings.download_url_policy``).

        Raises:
            MissingEndpoint: No endpoint is configured (there is no default any more).
        """
        return cls(
            base_url=settings.endpoint(),
            api_key=settings.api_key,
            auth_style=settings.auth_style,
            timeout=settings.timeout_seconds,
            url_policy=url_policy,
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
        """Close the connection pools."""
        try:
            await self._http.aclose()
        finally:
            if self._foreign is not None:
                await self._foreign.aclose()

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
        # A job was made even if its answer is refused (an unusable id): may_have_created stays true.
        return self._parse(operation, response, parse_video, created=True)

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
            params["after"] = _checked_id(operation, after)
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
        self,
        video_id: str,
        *,
        variant: str = "video",
        url: str | None = None,
        max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    ) -> AbstractAsyncContextManager[ContentStream]:
        """Open a download of the job's MP4 (``variant="video"``), thumbnail or spritesheet.

        Args:
            video_id: The job.
            variant: ``video``, ``thumbnail`` or ``spritesheet``.
            url: A download link the status response carried (gateways). Used instead of
                ``/videos/{id}/content``; it gets the API key only if it is on the API's own origin,
                and off that origin it must pass the client's URL policy.
            max_bytes: The most bytes the body may have (declared or decoded).

        Returns:
            An async context manager yielding a :class:`ContentStream`; the response is closed on
            exit. Up to ``url_policy.max_redirects`` redirects (to a CDN) are followed, each hop
            that leaves the API's origin checked like a download link.

        Raises:
            SoraError: On entering, for an error response (:class:`SoraNotFound` when the variant
                is not offered or the content expired), :class:`SoraUnsafeResponse` for a link or
                redirect the policy refuses, :class:`SoraResponseTooLarge` for a declared length
                over ``max_bytes``; while reading, if the transfer breaks off or passes ``max_bytes``.
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
        return self._open_stream(operation, request, max_bytes)

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
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as err:
            raise classify(operation, err, api_key=self._api_key) from err
        try:
            if not response.is_success:
                error = await read_capped(response, MAX_ERROR_BODY_BYTES, truncate=True)
                raise classify(operation, materialise(response, error), api_key=self._api_key)
            body = await read_capped(response, MAX_JSON_BYTES)
        except BodyTooLarge as err:
            raise SoraResponseTooLarge(
                f"{operation}: HTTP {response.status_code} but {err}",
                status_code=response.status_code,
                code="response_too_large",
            ) from err
        except UnsupportedEncoding as err:
            raise SoraProtocolError(
                f"{operation}: HTTP {response.status_code} but {err}", status_code=response.status_code
            ) from err
        except httpx.HTTPError as err:
            raise classify(operation, err, detail="the answer broke off", api_key=self._api_key) from err
        finally:
            await response.aclose()
        return materialise(response, body)

    def _parse(
        self, operation: str, response: httpx.Response, parser: Callable[[Any], _T], *, created: bool = False
    ) -> _T:
        try:
            return parser(json.loads(response.content))
        except InvalidVideoId as err:
            raise SoraUnsafeResponse(
                f"{operation}: {err}",
                status_code=response.status_code,
                code="invalid_video_id",
                may_have_created=created,
            ) from err
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            raise classify(operation, response, detail=str(err), api_key=self._api_key) from err

    @asynccontextmanager
    async def _open_stream(
        self, operation: str, request: httpx.Request, max_bytes: int
    ) -> AsyncIterator[ContentStream]:
        response = await self._send_following_redirects(operation, request)
        try:
            if not response.is_success:
                error = await read_capped(response, MAX_ERROR_BODY_BYTES, truncate=True)
                raise classify(operation, materialise(response, error), api_key=self._api_key)
            declared = declared_length(response.headers)
            if declared is not None and declared > max_bytes:
                raise SoraResponseTooLarge(
                    f"{operation}: the content is {declared} bytes; the limit is {max_bytes}",
                    status_code=response.status_code,
                    code="response_too_large",
                    may_have_created=False,
                )
            try:
                CappedDecoder(content_codings(response.headers), max_bytes)
            except UnsupportedEncoding as err:
                raise SoraProtocolError(f"{operation}: {err}", status_code=response.status_code) from err
            yield ContentStream(
                content_type=response.headers.get("content-type"),
                content_length=declared,
                _iterate=lambda size: self._iterate(operation, response, size, max_bytes),
            )
        finally:
            await response.aclose()

    async def _send_following_redirects(self, operation: str, request: httpx.Request) -> httpx.Response:
        """Send a download request, following redirects by hand so that every hop is checked.

        Hops on the API's origin are trusted (and carry the key); any other must pass the URL policy
        and goes out through the guarded client, which connects only to permitted addresses.
        """
        policy = self._url_policy
        current = request
        for hop in range(policy.max_redirects + 1):
            trusted = _origin(current.url) == self._base_origin
            try:
                if trusted:
                    response = await self._http.send(current, stream=True)
                else:
                    policy.check_url(current.url)
                    response = await self._foreign_client().send(current, stream=True)
            except UrlRefused as err:
                raise self._unsafe_url(operation, err) from err
            except httpx.HTTPError as err:
                raise classify(operation, err, api_key=self._api_key) from err
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return response
            await response.aclose()
            if hop == policy.max_redirects:
                break
            try:
                target = current.url.join(location)
            except (httpx.InvalidURL, ValueError) as err:
                refused = UrlRefused(redact_url(location), "not a valid URL")
                raise self._unsafe_url(operation, refused) from err
            current = self._build("GET", target, headers={"Accept": "*/*"})
        too_many = UrlRefused(redact_url(request.url), f"more than {policy.max_redirects} redirects")
        raise self._unsafe_url(operation, too_many)

    def _foreign_client(self) -> httpx.AsyncClient:
        if self._foreign is None:
            self._foreign = guarded_client(self._url_policy, timeout=self._timeout)
            self._foreign.event_hooks["request"].append(self._strip_foreign_credentials)
        return self._foreign

    def _unsafe_url(self, operation: str, err: UrlRefused) -> SoraError:
        return SoraUnsafeResponse(
            f"{operation}: refused to fetch {err.target}: {err.reason}",
            code="unsafe_url",
            may_have_created=False,
        )

    async def _iterate(
        self, operation: str, response: httpx.Response, chunk_size: int, max_bytes: int
    ) -> AsyncIterator[bytes]:
        try:
            async for chunk in aiter_capped(response, max_bytes, chunk_size):
                yield chunk
        except BodyTooLarge as err:
            raise SoraResponseTooLarge(
                f"{operation}: {err}", status_code=response.status_code, code="response_too_large"
            ) from err
        except httpx.HTTPError as err:
            raise classify(operation, err, detail="the download broke off", api_key=self._api_key) from err
        expected = declared_length(response.headers)
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
    # The id rule leaves nothing to quote; quoting stays as a second line of defence.
    return f"videos/{quote(_checked_id(operation, video_id), safe='')}"


def _checked_id(operation: str, video_id: str) -> str:
    """``video_id`` if it follows the id rule; refused (non-retryably, nothing sent) otherwise."""
    try:
        return check_video_id(video_id)
    except InvalidVideoId as err:
        refused = classify(operation, InvalidVideoRequest("video_id", str(err)))
        refused.code = "invalid_video_id"
        raise refused from err


def _poll_after(headers: httpx.Headers) -> float | None:
    raw = headers.get("openai-poll-after-ms")
    if raw is None:
        return None
    try:
        value = float(raw.strip()) / 1000.0
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


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
