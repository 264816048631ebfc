"""Serving blob URLs: ``GET``/``HEAD`` on ``https://<storeid>.<access>.blob.vercel-storage.com/<path>``.

Those requests reach the emulator through a client routed here (``simulator.blob.transport``),
keeping their original ``Host``, from which the store and access level are read. Private objects
need the token; ``?download=1`` makes the response an attachment. Injected faults do not apply.
"""

from __future__ import annotations

import asyncio
import os
from email.utils import formatdate
from urllib.parse import unquote

from aiohttp import web

from simulator.blob import replies
from simulator.blob.errors import ApiError, not_found
from simulator.blob.replies import BLOB_HOST_SUFFIX
from simulator.blob.state import EmulatorState
from simulator.blob.tokens import check_auth

_CHUNK = 256 * 1024


def is_blob_host(request: web.Request) -> bool:
    """Whether ``request`` was addressed to a blob URL rather than to the emulator itself."""
    return _host(request).endswith(BLOB_HOST_SUFFIX)


def _host(request: web.Request) -> str:
    return (request.host or "").rsplit(":", 1)[0].lower()


class BlobDelivery:
    """Blob URL downloads for one emulated store."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.store = state.store

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """Serve ``GET``/``HEAD`` on a blob URL (its host arrives in the ``Host`` header)."""
        store_id, _, access = _host(request).removesuffix(BLOB_HOST_SUFFIX).partition(".")
        if request.method not in ("GET", "HEAD"):
            return ApiError(405, "bad_request", "method not allowed").response()
        if store_id != self.state.store_id.lower() or access not in ("public", "private"):
            return not_found().response()
        if access == "private":
            try:
                check_auth(request, self.state.token)
            except ApiError as err:
                return err.response()
        raw_path = request.raw_path.split("?", 1)[0]
        pathname = unquote(raw_path).removeprefix("/")
        record = self.store.get(pathname)
        if record is None or record.access != access:
            return not_found().response()
        # Opened before the first await: a concurrent overwrite cannot swap the bytes from under us.
        fd = self.store.open(record)
        try:
            attachment = request.query.get("download") == "1"
            response = web.StreamResponse(
                headers={
                    "content-type": record.content_type,
                    "etag": record.etag,
                    "last-modified": formatdate(record.uploaded_at, usegmt=True),
                    "cache-control": record.cache_control,
                    "content-disposition": replies.disposition(record.pathname, attachment=attachment),
                    "x-content-type-options": "nosniff",
                }
            )
            response.content_length = record.size
            await response.prepare(request)
            if request.method == "GET":
                offset = 0
                while offset < record.size:
                    chunk = await asyncio.to_thread(os.pread, fd, _CHUNK, offset)
                    if not chunk:
                        break
                    await response.write(chunk)
                    offset += len(chunk)
            await response.write_eof()
            return response
        finally:
            os.close(fd)


__all__ = ["BlobDelivery", "is_blob_host"]
