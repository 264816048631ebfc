"""The Vercel Blob HTTP API, as the official Python SDK (``vercel-blob`` 0.5) speaks it.

API calls go to ``<base>/api/blob`` (the value for ``VERCEL_BLOB_API_URL``):

=======================  ==============================================================
``PUT  /api/blob``       upload (``?pathname=``), or copy when ``?fromUrl=`` is present
``GET  /api/blob``       metadata (``?url=`` a blob URL or pathname), else a listing
``POST /api/blob/delete`` delete ``{"urls": [...]}``
``POST /api/blob/mpu``   multipart, by ``x-mpu-action``: ``create``, ``upload``, ``complete``
=======================  ==============================================================

Every API call needs ``x-api-version`` and ``authorization: Bearer <token>``. Upload options come
as headers (``x-vercel-blob-access``, ``x-content-type``, ``x-cache-control-max-age``, and
``x-add-random-suffix``/``x-allow-overwrite`` as ``"0"``/``"1"``). Errors are
``{"error": {"code", "message"}}`` with the codes the SDK maps to its exception classes.

The rest lives beside this module: blob URL downloads in ``delivery``, the ``/_emu/`` test
controls in ``control``, injected failures in ``faults``, tokens in ``tokens``, request parsing in
``validation``, answer shapes in ``replies`` and the files in ``store``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp import web

from simulator.blob import replies, validation
from simulator.blob.control import CONTROL_PREFIX, ControlApi
from simulator.blob.delivery import BlobDelivery, is_blob_host
from simulator.blob.errors import ApiError, bad_request, not_found
from simulator.blob.replies import BLOB_HOST_SUFFIX
from simulator.blob.state import STATE, EmulatorState
from simulator.blob.store import BlobRecord, BlobStore, StoreError, Upload, already_exists
from simulator.blob.tokens import check_auth, store_id_from_token

API_PREFIX = "/api/blob"
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000


class BlobApi:
    """``/api/blob`` request handlers for one emulated store."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.store = state.store

    def _resolve(self, url_or_pathname: str) -> str:
        """A pathname from a pathname or a blob URL of this store."""
        if "://" not in url_or_pathname:
            return validation.validate_pathname(url_or_pathname)
        parts = urlsplit(url_or_pathname)
        host = (parts.hostname or "").lower()
        if not host.endswith(BLOB_HOST_SUFFIX) or host.split(".")[0] != self.state.store_id.lower():
            raise not_found()
        return validation.validate_pathname(unquote(parts.path))

    async def api(self, request: web.Request) -> web.StreamResponse:
        """Entry point for every ``/api/blob`` call: faults, auth, suspension, then the operation."""
        try:
            self.state.faults.check()
            check_auth(request, self.state.token)
            if request.headers.get("x-vercel-blob-store-id"):
                raise ApiError(403, "forbidden", "OIDC credentials are not supported by the emulator")
            version = request.headers.get("x-api-version", "")
            if not version.isdigit():
                raise bad_request("missing or invalid x-api-version header")
            if self.state.faults.suspended:
                # The SDK maps by code; 400 is the status it assumes for this code.
                raise ApiError(400, "store_suspended", "This store has been suspended")
            response = await self._operation(request)
            # After the body is read and the work done: the client has sent everything and waits.
            await self.state.faults.hold()
            return response
        except ApiError as err:
            await validation.drain(request)
            return err.response()
        except StoreError as err:
            await validation.drain(request)
            return ApiError.from_store(err).response()

    async def _operation(self, request: web.Request) -> web.StreamResponse:
        rest = request.path[len(API_PREFIX) :]
        if request.method == "PUT" and rest in ("", "/"):
            return await self.put(request)
        if request.method == "GET" and rest in ("", "/"):
            if "url" in request.query:
                return self.head(request)
            return self.list(request)
        if request.method == "POST" and rest == "/delete":
            return await self.delete(request)
        if request.method == "POST" and rest == "/mpu":
            return await self.multipart(request)
        raise ApiError(404, "not_found", f"no route for {request.method} {request.path}")

    # --- operations ------------------------------------------------------------------------------

    async def put(self, request: web.Request) -> web.Response:
        """Upload a body, or copy an object when ``fromUrl`` is given."""
        pathname = validation.validate_pathname(request.query.get("pathname"))
        access = validation.access(request)
        allow_overwrite = validation.flag(request, "x-allow-overwrite")
        if validation.flag(request, "x-add-random-suffix"):
            pathname = validation.with_random_suffix(pathname)
        content_type = validation.content_type(request, pathname)
        cache_control = replies.cache_control(access, validation.max_age(request))
        source_url = request.query.get("fromUrl")
        if source_url is not None:
            source = self.store.get(self._resolve(source_url))
            if source is None:
                raise not_found()
            if_match = request.headers.get("x-if-match")
            if if_match is not None and if_match != source.etag:
                raise ApiError(412, "precondition_failed", "The source blob's ETag does not match")
            record = self.store.copy(
                source,
                pathname,
                access=access,
                content_type=content_type,
                cache_control=cache_control,
                allow_overwrite=allow_overwrite,
            )
            return web.json_response(replies.put_json(self.state.store_id, record))
        if not allow_overwrite and self.store.get(pathname) is not None:
            # Checked before reading the body to spare the upload; checked again at commit.
            raise already_exists()
        received = await self.store.receive(validation.body(request), validation.content_length(request))
        record = self.store.commit(
            pathname,
            received,
            access=access,
            content_type=content_type,
            cache_control=cache_control,
            allow_overwrite=allow_overwrite,
        )
        return web.json_response(replies.put_json(self.state.store_id, record))

    def head(self, request: web.Request) -> web.Response:
        """Metadata of one object."""
        record = self.store.get(self._resolve(request.query["url"]))
        if record is None:
            raise not_found()
        return web.json_response(replies.head_json(self.state.store_id, record))

    def list(self, request: web.Request) -> web.Response:
        """A page of objects (``mode=folded``: one directory level, with ``folders``)."""
        raw_limit = request.query.get("limit", "1000")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
            raise bad_request("limit must be between 1 and 1000")
        limit = int(raw_limit)
        prefix = request.query.get("prefix", "")
        folded = request.query.get("mode") == "folded"
        cursor = request.query.get("cursor")
        entries: list[tuple[str, BlobRecord | None]] = []
        seen_folders: set[str] = set()
        for record in self.store.records():
            if not record.pathname.startswith(prefix):
                continue
            rest = record.pathname[len(prefix) :]
            if folded and "/" in rest:
                folder = prefix + rest.split("/", 1)[0] + "/"
                if folder not in seen_folders:
                    seen_folders.add(folder)
                    entries.append((folder, None))
                continue
            entries.append((record.pathname, record))
        entries.sort(key=lambda entry: entry[0])
        if cursor is not None:
            entries = [entry for entry in entries if entry[0] > cursor]
        page, has_more = entries[:limit], len(entries) > limit
        body: dict[str, Any] = {
            "blobs": [
                replies.list_json(self.state.store_id, record) for _, record in page if record is not None
            ],
            "hasMore": has_more,
        }
        if has_more:
            body["cursor"] = page[-1][0]
        if folded:
            body["folders"] = [name for name, record in page if record is None]
        return web.json_response(body)

    async def delete(self, request: web.Request) -> web.Response:
        """Delete up to 1000 objects; missing ones are fine."""
        try:
            payload = await request.json()
        except ValueError as err:
            raise bad_request("body must be JSON") from err
        urls = payload.get("urls") if isinstance(payload, dict) else None
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise bad_request("urls must be a non-empty list of strings")
        if len(urls) > 1000:
            raise bad_request("at most 1000 urls per call")
        pathnames = [self._resolve(u) for u in urls]
        if_match = request.headers.get("x-if-match")
        if if_match is not None:
            record = self.store.get(pathnames[0]) if len(pathnames) == 1 else None
            if record is None or record.etag != if_match:
                raise ApiError(412, "precondition_failed", "The blob's ETag does not match")
        for pathname in pathnames:
            self.store.delete(pathname)
        return web.json_response({})

    # --- multipart ------------------------------------------------------------------------------

    async def multipart(self, request: web.Request) -> web.Response:
        """Dispatch on ``x-mpu-action``."""
        action = request.headers.get("x-mpu-action")
        pathname = validation.validate_pathname(request.query.get("pathname"))
        if action == "create":
            return self.mpu_create(request, pathname)
        upload = self.store.get_upload(
            request.headers.get("x-mpu-upload-id", ""), unquote(request.headers.get("x-mpu-key", ""))
        )
        if upload.pathname != pathname:
            raise bad_request("pathname does not match the multipart upload")
        if action == "upload":
            return await self.mpu_upload(request, upload)
        if action == "complete":
            return await self.mpu_complete(request, upload)
        raise bad_request(f"unknown x-mpu-action {action!r}")

    def mpu_create(self, request: web.Request, pathname: str) -> web.Response:
        """Start a multipart upload; answers ``{key, uploadId}``."""
        access = validation.access(request)
        allow_overwrite = validation.flag(request, "x-allow-overwrite")
        if validation.flag(request, "x-add-random-suffix"):
            pathname = validation.with_random_suffix(pathname)
        if not allow_overwrite and self.store.get(pathname) is not None:
            raise already_exists()
        upload = self.store.create_upload(
            pathname,
            access=access,
            content_type=request.headers.get("x-content-type"),
            cache_control_max_age=validation.max_age(request),
            allow_overwrite=allow_overwrite,
        )
        return web.json_response({"key": upload.key, "uploadId": upload.upload_id})

    async def mpu_upload(self, request: web.Request, upload: Upload) -> web.Response:
        """Store one part; answers ``{etag}``."""
        raw_number = request.headers.get("x-mpu-part-number", "")
        if not raw_number.isdigit() or not 1 <= int(raw_number) <= MAX_PARTS:
            raise bad_request(f"x-mpu-part-number must be 1..{MAX_PARTS}")
        received = await self.store.receive(validation.body(request), validation.content_length(request))
        if received.size == 0:
            self.store.discard(received)
            raise bad_request("a part cannot be empty")
        etag = self.store.add_part(upload, int(raw_number), received)
        return web.json_response({"etag": etag})

    async def mpu_complete(self, request: web.Request, upload: Upload) -> web.Response:
        """Join the listed parts into the object; answers like a put."""
        try:
            parts = await request.json()
        except ValueError as err:
            raise bad_request("body must be a JSON list of parts") from err
        if not isinstance(parts, list) or not parts:
            raise bad_request("body must be a non-empty JSON list of parts")
        numbers: list[int] = []
        for part in parts:
            number = part.get("partNumber") if isinstance(part, dict) else None
            etag = part.get("etag") if isinstance(part, dict) else None
            if not isinstance(number, int) or not isinstance(etag, str):
                raise bad_request("each part needs an integer partNumber and a string etag")
            stored = upload.parts.get(number)
            if stored is None or stored[0] != etag:
                raise bad_request(f"part {number} was not uploaded or its etag differs")
            if numbers and number <= numbers[-1]:
                raise bad_request("parts must be listed in ascending order")
            numbers.append(number)
        for number in numbers[:-1]:
            if upload.parts[number][1] < MIN_PART_SIZE:
                raise bad_request(f"part {number} is smaller than 5 MiB and not the last")
        if upload.completing:
            raise ApiError(409, "bad_request", "this multipart upload is already being completed")
        upload.completing = True
        try:
            received = await asyncio.to_thread(self.store.assemble, upload, numbers)
        finally:
            upload.completing = False
        content_type = upload.content_type or validation.content_type(request, upload.pathname)
        record = self.store.commit(
            upload.pathname,
            received,
            access=upload.access,
            content_type=content_type,
            cache_control=replies.cache_control(upload.access, upload.cache_control_max_age),
            allow_overwrite=upload.allow_overwrite,
        )
        self.store.drop_upload(upload)
        return web.json_response(replies.put_json(self.state.store_id, record))


def create_app(
    root: Path, token: str, *, mpu_ttl: float = 24 * 3600, sweep_interval: float = 60.0
) -> web.Application:
    """The emulator as an aiohttp application.

    Args:
        root: Directory for objects and unfinished uploads.
        token: The store's read-write token; API calls must present it.
        mpu_ttl: Seconds an unfinished multipart upload may sit idle before its parts are deleted.
        sweep_interval: Seconds between sweeps for such uploads.

    Raises:
        ValueError: ``token`` is not a read-write token.
    """
    token = token.strip()
    state = EmulatorState(
        store=BlobStore(root), token=token, store_id=store_id_from_token(token), mpu_ttl=mpu_ttl
    )
    api = BlobApi(state)
    delivery = BlobDelivery(state)
    control = ControlApi(state)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        # Blob URLs are told apart by their Host header, so one catch-all route dispatches.
        if is_blob_host(request):
            return await delivery.serve(request)
        if request.path.startswith(CONTROL_PREFIX):
            return await control.handle(request)
        if request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/"):
            return await api.api(request)
        return web.json_response({"error": {"code": "not_found", "message": "Not found"}}, status=404)

    async def sweeper(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(sweep_interval)
                state.store.sweep(state.mpu_ttl)

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = web.Application()
    app[STATE] = state
    app.router.add_route("*", "/{tail:.*}", dispatch)
    app.cleanup_ctx.append(sweeper)
    return app


__all__ = ["API_PREFIX", "BlobApi", "create_app"]
