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

Blob URLs are ``https://<storeid>.<public|private>.blob.vercel-storage.com/<pathname>``; requests
whose ``Host`` is such a name (routed here by the client) are served from the store, private ones
only with the token. ``?download=1`` makes the response an attachment.

Test controls live under ``/_emu/``: ``faults`` (fail the next API calls), ``delay`` (answer them
late), ``suspend``,
``objects``, ``uploads`` and ``sweep``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import math
import mimetypes
import os
import random
import re
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from aiohttp import web

from simulator.blob.store import BlobRecord, BlobStore, StoreError, Upload, already_exists

BLOB_HOST_SUFFIX = ".blob.vercel-storage.com"
API_PREFIX = "/api/blob"
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
MAX_PATHNAME_LENGTH = 950
DEFAULT_CACHE_MAX_AGE = 30 * 24 * 60 * 60
_CHUNK = 256 * 1024
_SUFFIX_ALPHABET = string.ascii_letters + string.digits
_TOKEN = re.compile(r"^vercel_blob_rw_([A-Za-z0-9-]+)_([A-Za-z0-9_-]*[A-Za-z0-9-][A-Za-z0-9_-]*)$")


@dataclass
class Fault:
    """Fail API calls with ``status``: the next ``remaining`` ones, or all while ``None``."""

    status: int
    remaining: int | None
    retry_after: float | None


@dataclass
class Delay:
    """Hold the answers to the next ``remaining`` API calls (all, while ``None``) for ``seconds``."""

    seconds: float
    remaining: int | None


@dataclass
class EmulatorState:
    """Everything one emulator process knows."""

    store: BlobStore
    token: str
    store_id: str
    mpu_ttl: float
    fault: Fault | None = None
    delay: Delay | None = None
    suspended: bool = False


STATE: web.AppKey[EmulatorState] = web.AppKey("state", EmulatorState)


class ApiError(Exception):
    """An error answer in the service's JSON shape."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> web.Response:
        """The HTTP answer."""
        return web.json_response(
            {"error": {"code": self.code, "message": self.message}}, status=self.status, headers=self.headers
        )


def store_id_from_token(token: str) -> str:
    """``<storeId>`` of ``vercel_blob_rw_<storeId>_<secret>``.

    Raises:
        ValueError: Not a read-write token.
    """
    match = _TOKEN.match(token)
    if match is None:
        raise ValueError("token must look like vercel_blob_rw_<storeId>_<secret>")
    return match.group(1)


def new_token() -> str:
    """A fresh read-write token for a new emulated store."""
    store_id = "".join(random.choices(string.ascii_letters + string.digits, k=16))
    secret = "".join(random.choices(string.ascii_letters + string.digits, k=30))
    return f"vercel_blob_rw_{store_id}_{secret}"


# --- helpers ------------------------------------------------------------------------------------


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _filename(pathname: str) -> str:
    name = pathname.rsplit("/", 1)[-1]
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)


def _disposition(pathname: str, *, attachment: bool) -> str:
    return f'{"attachment" if attachment else "inline"}; filename="{_filename(pathname)}"'


def _cache_control(access: str, max_age: int | None) -> str:
    seconds = DEFAULT_CACHE_MAX_AGE if max_age is None else max_age
    return f"{'public' if access == 'public' else 'private'}, max-age={seconds}"


def _validate_pathname(raw: str | None) -> str:
    if not raw:
        raise ApiError(400, "bad_request", "pathname is required")
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise ApiError(400, "bad_request", "pathname cannot contain control characters")
    if "//" in raw:
        raise ApiError(400, "bad_request", 'pathname cannot contain "//"')
    pathname = raw.removeprefix("/")
    if not pathname or any(segment in (".", "..") for segment in pathname.split("/")):
        raise ApiError(400, "bad_request", "pathname cannot contain dot segments")
    if len(pathname.encode("utf-16-le")) // 2 > MAX_PATHNAME_LENGTH:
        raise ApiError(400, "bad_request", f"pathname is too long, maximum length is {MAX_PATHNAME_LENGTH}")
    return pathname


def _flag(request: web.Request, name: str) -> bool:
    value = request.headers.get(name, "0")
    if value not in ("0", "1"):
        raise ApiError(400, "bad_request", f"{name} must be '0' or '1', got {value!r}")
    return value == "1"


def _access(request: web.Request) -> str:
    access = request.headers.get("x-vercel-blob-access", "public")
    if access not in ("public", "private"):
        raise ApiError(400, "bad_request", "access must be 'public' or 'private'")
    return access


def _max_age(request: web.Request) -> int | None:
    raw = request.headers.get("x-cache-control-max-age")
    if raw is None:
        return None
    if not raw.isdigit():
        raise ApiError(400, "bad_request", "x-cache-control-max-age must be a nonnegative integer")
    return int(raw)


def _content_type(request: web.Request, pathname: str) -> str:
    explicit = request.headers.get("x-content-type")
    if explicit:
        return explicit
    guessed, _ = mimetypes.guess_type(pathname)
    return guessed or "application/octet-stream"


def _with_random_suffix(pathname: str) -> str:
    directory, slash, name = pathname.rpartition("/")
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        stem, dot, extension = name, "", ""
    suffix = "".join(random.choices(_SUFFIX_ALPHABET, k=30))
    return f"{directory}{slash}{stem}-{suffix}{dot}{extension}"


def _content_length(request: web.Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit():
        raise ApiError(400, "bad_request", "invalid content-length")
    return int(raw)


async def _drain(request: web.Request) -> None:
    """Read and drop the rest of a request body, so the client gets to read our answer."""
    with contextlib.suppress(Exception):
        while await request.content.readany():
            pass


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    while chunk := await request.content.readany():
        yield chunk


# --- the API ------------------------------------------------------------------------------------


class BlobApi:
    """Request handlers for one emulated store."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.store = state.store

    def url(self, record: BlobRecord) -> str:
        """The canonical blob URL of ``record``."""
        host = f"{self.state.store_id.lower()}.{record.access}{BLOB_HOST_SUFFIX}"
        return f"https://{host}/{quote(record.pathname, safe='/')}"

    def _put_json(self, record: BlobRecord) -> dict[str, Any]:
        url = self.url(record)
        return {
            "url": url,
            "downloadUrl": f"{url}?download=1",
            "pathname": record.pathname,
            "contentType": record.content_type,
            "contentDisposition": _disposition(record.pathname, attachment=False),
            "etag": record.etag,
        }

    def _list_json(self, record: BlobRecord) -> dict[str, Any]:
        url = self.url(record)
        return {
            "url": url,
            "downloadUrl": f"{url}?download=1",
            "pathname": record.pathname,
            "size": record.size,
            "uploadedAt": _iso(record.uploaded_at),
            "etag": record.etag,
        }

    def _resolve(self, url_or_pathname: str) -> str:
        """A pathname from a pathname or a blob URL of this store."""
        if "://" not in url_or_pathname:
            return _validate_pathname(url_or_pathname)
        parts = urlsplit(url_or_pathname)
        host = (parts.hostname or "").lower()
        if not host.endswith(BLOB_HOST_SUFFIX) or host.split(".")[0] != self.state.store_id.lower():
            raise ApiError(404, "not_found", "The requested blob does not exist")
        return _validate_pathname(unquote(parts.path))

    def _check_auth(self, request: web.Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if not header:
            raise ApiError(403, "forbidden", "Access denied, please provide a valid token for this resource.")
        if scheme.lower() != "bearer" or not secrets_equal(credential.strip(), self.state.token):
            raise ApiError(403, "forbidden", "Invalid token")

    def _check_fault(self) -> None:
        fault = self.state.fault
        if fault is None:
            return
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.state.fault = None
        code = {429: "rate_limited", 503: "service_unavailable", 500: "internal_server_error"}.get(
            fault.status, "unknown_error"
        )
        headers = {}
        if fault.retry_after is not None:
            headers["retry-after"] = str(math.ceil(fault.retry_after))
        raise ApiError(fault.status, code, f"injected fault (HTTP {fault.status})", headers)

    async def api(self, request: web.Request) -> web.StreamResponse:
        """Entry point for every ``/api/blob`` call: faults, auth, suspension, then the operation."""
        try:
            self._check_fault()
            self._check_auth(request)
            if request.headers.get("x-vercel-blob-store-id"):
                raise ApiError(403, "forbidden", "OIDC credentials are not supported by the emulator")
            version = request.headers.get("x-api-version", "")
            if not version.isdigit():
                raise ApiError(400, "bad_request", "missing or invalid x-api-version header")
            if self.state.suspended:
                # The SDK maps by code; 400 is the status it assumes for this code.
                raise ApiError(400, "store_suspended", "This store has been suspended")
            response = await self._operation(request)
            await self._maybe_delay()
            return response
        except ApiError as err:
            await _drain(request)
            return err.response()
        except StoreError as err:
            await _drain(request)
            return ApiError(err.status, err.code, err.message).response()

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

    async def _maybe_delay(self) -> None:
        # After the body is read and the work done: the client has sent everything and waits.
        delay = self.state.delay
        if delay is None:
            return
        if delay.remaining is not None:
            delay.remaining -= 1
            if delay.remaining <= 0:
                self.state.delay = None
        await asyncio.sleep(delay.seconds)

    async def put(self, request: web.Request) -> web.Response:
        """Upload a body, or copy an object when ``fromUrl`` is given."""
        pathname = _validate_pathname(request.query.get("pathname"))
        access = _access(request)
        allow_overwrite = _flag(request, "x-allow-overwrite")
        if _flag(request, "x-add-random-suffix"):
            pathname = _with_random_suffix(pathname)
        content_type = _content_type(request, pathname)
        cache_control = _cache_control(access, _max_age(request))
        source_url = request.query.get("fromUrl")
        if source_url is not None:
            source = self.store.get(self._resolve(source_url))
            if source is None:
                raise ApiError(404, "not_found", "The requested blob does not exist")
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
            return web.json_response(self._put_json(record))
        if not allow_overwrite and self.store.get(pathname) is not None:
            # Checked before reading the body to spare the upload; checked again at commit.
            raise already_exists()
        received = await self.store.receive(_body(request), _content_length(request))
        record = self.store.commit(
            pathname,
            received,
            access=access,
            content_type=content_type,
            cache_control=cache_control,
            allow_overwrite=allow_overwrite,
        )
        return web.json_response(self._put_json(record))

    def head(self, request: web.Request) -> web.Response:
        """Metadata of one object."""
        record = self.store.get(self._resolve(request.query["url"]))
        if record is None:
            raise ApiError(404, "not_found", "The requested blob does not exist")
        return web.json_response(
            {
                **self._list_json(record),
                "contentType": record.content_type,
                "contentDisposition": _disposition(record.pathname, attachment=False),
                "cacheControl": record.cache_control,
            }
        )

    def list(self, request: web.Request) -> web.Response:
        """A page of objects (``mode=folded``: one directory level, with ``folders``)."""
        raw_limit = request.query.get("limit", "1000")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
            raise ApiError(400, "bad_request", "limit must be between 1 and 1000")
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
            "blobs": [self._list_json(record) for _, record in page if record is not None],
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
            raise ApiError(400, "bad_request", "body must be JSON") from err
        urls = payload.get("urls") if isinstance(payload, dict) else None
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise ApiError(400, "bad_request", "urls must be a non-empty list of strings")
        if len(urls) > 1000:
            raise ApiError(400, "bad_request", "at most 1000 urls per call")
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
        pathname = _validate_pathname(request.query.get("pathname"))
        if action == "create":
            return self.mpu_create(request, pathname)
        upload = self.store.get_upload(
            request.headers.get("x-mpu-upload-id", ""), unquote(request.headers.get("x-mpu-key", ""))
        )
        if upload.pathname != pathname:
            raise ApiError(400, "bad_request", "pathname does not match the multipart upload")
        if action == "upload":
            return await self.mpu_upload(request, upload)
        if action == "complete":
            return await self.mpu_complete(request, upload)
        raise ApiError(400, "bad_request", f"unknown x-mpu-action {action!r}")

    def mpu_create(self, request: web.Request, pathname: str) -> web.Response:
        """Start a multipart upload; answers ``{key, uploadId}``."""
        access = _access(request)
        allow_overwrite = _flag(request, "x-allow-overwrite")
        if _flag(request, "x-add-random-suffix"):
            pathname = _with_random_suffix(pathname)
        if not allow_overwrite and self.store.get(pathname) is not None:
            raise already_exists()
        upload = self.store.create_upload(
            pathname,
            access=access,
            content_type=request.headers.get("x-content-type"),
            cache_control_max_age=_max_age(request),
            allow_overwrite=allow_overwrite,
        )
        return web.json_response({"key": upload.key, "uploadId": upload.upload_id})

    async def mpu_upload(self, request: web.Request, upload: Upload) -> web.Response:
        """Store one part; answers ``{etag}``."""
        raw_number = request.headers.get("x-mpu-part-number", "")
        if not raw_number.isdigit() or not 1 <= int(raw_number) <= MAX_PARTS:
            raise ApiError(400, "bad_request", f"x-mpu-part-number must be 1..{MAX_PARTS}")
        received = await self.store.receive(_body(request), _content_length(request))
        if received.size == 0:
            self.store.discard(received)
            raise ApiError(400, "bad_request", "a part cannot be empty")
        etag = self.store.add_part(upload, int(raw_number), received)
        return web.json_response({"etag": etag})

    async def mpu_complete(self, request: web.Request, upload: Upload) -> web.Response:
        """Join the listed parts into the object; answers like a put."""
        try:
            parts = await request.json()
        except ValueError as err:
            raise ApiError(400, "bad_request", "body must be a JSON list of parts") from err
        if not isinstance(parts, list) or not parts:
            raise ApiError(400, "bad_request", "body must be a non-empty JSON list of parts")
        numbers: list[int] = []
        for part in parts:
            number = part.get("partNumber") if isinstance(part, dict) else None
            etag = part.get("etag") if isinstance(part, dict) else None
            if not isinstance(number, int) or not isinstance(etag, str):
                raise ApiError(400, "bad_request", "each part needs an integer partNumber and a string etag")
            stored = upload.parts.get(number)
            if stored is None or stored[0] != etag:
                raise ApiError(400, "bad_request", f"part {number} was not uploaded or its etag differs")
            if numbers and number <= numbers[-1]:
                raise ApiError(400, "bad_request", "parts must be listed in ascending order")
            numbers.append(number)
        for number in numbers[:-1]:
            if upload.parts[number][1] < MIN_PART_SIZE:
                raise ApiError(400, "bad_request", f"part {number} is smaller than 5 MiB and not the last")
        if upload.completing:
            raise ApiError(409, "bad_request", "this multipart upload is already being completed")
        upload.completing = True
        try:
            received = await asyncio.to_thread(self.store.assemble, upload, numbers)
        finally:
            upload.completing = False
        content_type = upload.content_type or _content_type(request, upload.pathname)
        record = self.store.commit(
            upload.pathname,
            received,
            access=upload.access,
            content_type=content_type,
            cache_control=_cache_control(upload.access, upload.cache_control_max_age),
            allow_overwrite=upload.allow_overwrite,
        )
        self.store.drop_upload(upload)
        return web.json_response(self._put_json(record))

    # --- blob URLs ------------------------------------------------------------------------------

    async def deliver(self, request: web.Request) -> web.StreamResponse:
        """Serve ``GET``/``HEAD`` on a blob URL (its host arrives in the ``Host`` header)."""
        host = (request.host or "").rsplit(":", 1)[0].lower()
        store_id, _, access = host.removesuffix(BLOB_HOST_SUFFIX).partition(".")
        not_found = ApiError(404, "not_found", "The requested blob does not exist")
        if request.method not in ("GET", "HEAD"):
            return ApiError(405, "bad_request", "method not allowed").response()
        if store_id != self.state.store_id.lower() or access not in ("public", "private"):
            return not_found.response()
        if access == "private":
            try:
                self._check_auth(request)
            except ApiError as err:
                return err.response()
        raw_path = request.raw_path.split("?", 1)[0]
        pathname = unquote(raw_path).removeprefix("/")
        record = self.store.get(pathname)
        if record is None or record.access != access:
            return not_found.response()
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
                    "content-disposition": _disposition(record.pathname, attachment=attachment),
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

    # --- test controls --------------------------------------------------------------------------

    async def control(self, request: web.Request) -> web.StreamResponse:
        """``/_emu/...``: fault injection, suspension and inspection for tests."""
        action = request.path.removeprefix("/_emu/").rstrip("/")
        method = request.method
        if action == "faults" and method == "POST":
            spec = await request.json()
            count = spec.get("count")
            retry_after = spec.get("retry_after")
            self.state.fault = Fault(
                status=int(spec["status"]),
                remaining=None if count is None else int(count),
                retry_after=None if retry_after is None else float(retry_after),
            )
            if self.state.fault.remaining is not None and self.state.fault.remaining <= 0:
                self.state.fault = None
            return web.json_response({"ok": True})
        if action == "faults" and method == "DELETE":
            self.state.fault = None
            return web.json_response({"ok": True})
        if action == "delay" and method == "POST":
            spec = await request.json()
            count = spec.get("count")
            self.state.delay = Delay(
                seconds=float(spec["seconds"]), remaining=None if count is None else int(count)
            )
            return web.json_response({"ok": True})
        if action == "delay" and method == "DELETE":
            self.state.delay = None
            return web.json_response({"ok": True})
        if action == "suspend" and method in ("POST", "DELETE"):
            self.state.suspended = method == "POST"
            return web.json_response({"ok": True, "suspended": self.state.suspended})
        if action == "objects" and method == "GET":
            return web.json_response(
                {
                    "objects": [
                        {
                            "pathname": record.pathname,
                            "size": record.size,
                            "sha256": record.sha256,
                            "contentType": record.content_type,
                            "access": record.access,
                            "url": self.url(record),
                        }
                        for record in self.store.records()
                    ]
                }
            )
        if action == "uploads" and method == "GET":
            return web.json_response(
                {
                    "uploads": [
                        {"uploadId": u.upload_id, "pathname": u.pathname, "parts": sorted(u.parts)}
                        for u in self.store.uploads()
                    ]
                }
            )
        if action == "sweep" and method == "POST":
            spec = await request.json() if request.can_read_body else {}
            max_age = float(spec.get("max_age", self.state.mpu_ttl))
            return web.json_response({"swept": self.store.sweep(max_age)})
        if action == "health" and method == "GET":
            return web.json_response({"ok": True, "storeId": self.state.store_id})
        return web.json_response({"error": "unknown control"}, status=404)


def secrets_equal(given: str, expected: str) -> bool:
    """Constant-time comparison, as a real auth check would do."""
    return hmac.compare_digest(given.encode(), expected.encode())


def create_app(
    root: Path, token: str, *, mpu_ttl: float = 24 * 3600, sweep_interval: float = 60.0
) -> web.Application:
    """The emulator as an aiohttp application.

    Args:
        root: Directory for objects and unfinished uploads.
        token: The store's read-write token; API calls must present it.
        mpu_ttl: Seconds an unfinished multipart upload may sit idle before its parts are deleted.
        sweep_interval: Seconds between sweeps for such uploads.
    """
    state = EmulatorState(
        store=BlobStore(root), token=token, store_id=store_id_from_token(token), mpu_ttl=mpu_ttl
    )
    api = BlobApi(state)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        host = (request.host or "").rsplit(":", 1)[0].lower()
        if host.endswith(BLOB_HOST_SUFFIX):
            return await api.deliver(request)
        if request.path.startswith("/_emu/"):
            return await api.control(request)
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


__all__ = ["STATE", "BlobApi", "EmulatorState", "Fault", "create_app", "new_token", "store_id_from_token"]
