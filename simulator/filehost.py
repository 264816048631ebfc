"""A tiny reference-image host, so URL-fetching code has a real (and hostile) server to talk to.

* ``GET /_files/{name}``: a file stored through ``PUT /_sim/files/{name}``, or a built-in
  ``sample.jpg``/``sample.png``/``sample.webp`` rendered at ``?size=WxH`` (default 1280x720, sides
  up to 4096). ``?type=`` overrides the ``Content-Type``; ``?bomb=N`` answers a ``Content-Encoding:
  gzip, gzip`` body that decodes to N bytes instead. Fault rules on route ``reference`` apply
  (``match_prompt`` matches the file name).
* ``GET /_redirect?to=URL&hops=N&status=302``: N redirects (through itself) ending at ``URL``. The
  target is only named in a ``Location`` header; nothing here connects to it.

No authentication, like a public bucket. Counted in ``/_sim/stats`` under ``file_host``.
"""

from __future__ import annotations

import asyncio
import functools
import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from PIL import Image

from simulator import errors
from simulator.faults import Route, Target
from simulator.hostile import BOMB_ENCODING, MAX_BOMB_BYTES, gzip_bomb
from simulator.replies import BytesReply, Reply

if TYPE_CHECKING:
    from simulator.app import Simulator

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_SAMPLES = {"sample.jpg": "JPEG", "sample.jpeg": "JPEG", "sample.png": "PNG", "sample.webp": "WEBP"}
_SAMPLE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_MAX_SAMPLE_SIDE = 4096
_REDIRECT_STATUSES = (301, 302, 303, 307, 308)
MAX_HOPS = 20
#: Stored files are kept in memory; this bounds one of them.
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class StoredFile:
    """A file put on the host.

    Attributes:
        body: Its bytes.
        content_type: The ``Content-Type`` it is served with.
    """

    body: bytes
    content_type: str


class FileHost:
    """Serves ``/_files`` and ``/_redirect`` for one simulator.

    Args:
        simulator: The simulator whose fault rules and pipeline it uses.
    """

    def __init__(self, simulator: Simulator) -> None:
        self.sim = simulator
        self.files: dict[str, StoredFile] = {}
        self.served = 0
        self.redirects = 0

    def register(self, app: web.Application) -> None:
        """Add the public routes to ``app`` (the ``/_sim/files`` control routes live in ``control``)."""
        app.router.add_get("/_files/{name}", self.serve)
        app.router.add_get("/_redirect", self.redirect)

    def put(self, name: str, body: bytes, content_type: str) -> None:
        """Store (or replace) a file.

        Raises:
            ApiError: 400 on a bad name, content type or size.
        """
        check_name(name)
        if not content_type or any(ch in content_type for ch in "\r\n"):
            raise errors.invalid("A file needs a Content-Type.", param="content_type")
        if len(body) > MAX_FILE_BYTES:
            raise errors.invalid(f"Files are limited to {MAX_FILE_BYTES} bytes.")
        self.files[name] = StoredFile(body, content_type)

    def remove(self, name: str) -> None:
        """Forget a stored file.

        Raises:
            ApiError: 404 when there is none by that name.
        """
        if self.files.pop(name, None) is None:
            raise errors.not_found(f"No file named '{name}'.")

    def stats(self) -> dict[str, int]:
        """Requests served: ``files`` (``/_files``) and ``redirects`` (``/_redirect``)."""
        return {"files": self.served, "redirects": self.redirects}

    def reset(self) -> None:
        """Forget stored files and counters."""
        self.files.clear()
        self.served = self.redirects = 0

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """``GET /_files/{name}[?size=WxH][&type=MIME][&bomb=BYTES]``."""
        self.served += 1
        name = request.match_info["name"]
        query = request.query

        async def operation() -> Reply:
            body, content_type = await self._lookup(name, query.get("size"))
            content_type = query.get("type", content_type)
            if "bomb" in query:
                size = _whole(query["bomb"], "bomb", 1, MAX_BOMB_BYTES)
                bomb = await asyncio.to_thread(gzip_bomb, size)
                return BytesReply(bomb, content_type, headers={"Content-Encoding": BOMB_ENCODING})
            return BytesReply(body, content_type)

        return await self.sim.respond(request, Target(Route.REFERENCE, prompt=name), operation)

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        """``GET /_redirect?to=URL&hops=N&status=CODE``: one hop of a redirect chain."""
        self.redirects += 1
        query = request.query
        target = query.get("to", "")
        parts = urlsplit(target)
        if not (parts.scheme in ("http", "https") and parts.netloc) and not target.startswith("/"):
            raise errors.invalid("'to' must be an absolute http(s) URL or a path.", param="to")
        hops = _whole(query.get("hops", "1"), "hops", 1, MAX_HOPS)
        status = _whole(query.get("status", "302"), "status", 301, 308)
        if status not in _REDIRECT_STATUSES:
            raise errors.invalid(f"'status' must be one of {_REDIRECT_STATUSES}.", param="status")
        if hops > 1:
            location = redirect_url(f"{request.scheme}://{request.host}", target, hops - 1, status)
        else:
            location = target
        return web.Response(status=status, headers={"Location": location})

    async def _lookup(self, name: str, size: str | None) -> tuple[bytes, str]:
        stored = self.files.get(name)
        if stored is not None:
            return stored.body, stored.content_type
        image_format = _SAMPLES.get(name)
        if image_format is None:
            raise errors.not_found(f"No file named '{name}'.")
        width, height = _size(size or "1280x720")
        body = await asyncio.to_thread(_sample, image_format, width, height)
        return body, _SAMPLE_TYPES[image_format]


def redirect_url(root_url: str, target: str, hops: int, status: int = 302) -> str:
    """The URL of a chain of ``hops`` redirects through the simulator at ``root_url`` ending at ``target``."""
    query: dict[str, Any] = {"to": target, "hops": hops}
    if status != 302:
        query["status"] = status
    return f"{root_url}/_redirect?{urlencode(query)}"


def check_name(name: str) -> None:
    """Accept file names of letters, digits, ``.``, ``_`` and ``-`` (at most 128).

    Raises:
        ApiError: 400 otherwise.
    """
    if not _NAME.match(name) or name in (".", ".."):
        raise errors.invalid("File names are 1-128 letters, digits, '.', '_' or '-'.", param="name")


def _whole(raw: str, name: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise errors.invalid(f"'{name}' must be a whole number.", param=name) from None
    if not low <= value <= high:
        raise errors.invalid(f"'{name}' must be from {low} to {high}.", param=name)
    return value


def _size(raw: str) -> tuple[int, int]:
    width, _, height = raw.partition("x")
    return (
        _whole(width, "size", 1, _MAX_SAMPLE_SIDE),
        _whole(height, "size", 1, _MAX_SAMPLE_SIDE),
    )


@functools.lru_cache(maxsize=16)
def _sample(image_format: str, width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(buffer, format=image_format)
    return buffer.getvalue()
