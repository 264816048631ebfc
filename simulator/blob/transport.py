"""Client-side routing to the emulator: blob URLs (``*.blob.vercel-storage.com``) go to loopback.

The SDK accepts only canonical blob URLs, so the emulator hands those out, and whoever starts the
emulator gives clients that read through blob URLs this transport, e.g.
``VercelBlobStorage(token, api_url=..., httpx_client_factory=emulator.httpx_client_factory())``.
API calls need no routing: ``VERCEL_BLOB_API_URL`` already points at the emulator, and uploads
and deletes never touch a blob URL, so a worker needs nothing from here.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx2

from simulator.blob.replies import BLOB_HOST_SUFFIX


class LoopbackBlobTransport(httpx2.AsyncBaseTransport):
    """Sends requests for ``*.blob.vercel-storage.com`` to a local Blob emulator instead.

    It rewrites their scheme, host and port to the emulator's while keeping the original ``Host``
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


def loopback_client_factory(emulator_url: str, *, timeout: float = 60.0) -> Callable[[], httpx2.AsyncClient]:
    """A factory of ``httpx2.AsyncClient``s routed to the emulator at ``emulator_url``.

    Fits ``VercelBlobStorage(httpx_client_factory=...)`` and ``vercel.api.session(httpx_client_factory=...)``.
    Proxy environment variables are ignored: a proxy cannot reach loopback.
    """

    def factory() -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            transport=LoopbackBlobTransport(emulator_url), timeout=timeout, trust_env=False
        )

    return factory


__all__ = ["LoopbackBlobTransport", "loopback_client_factory"]
