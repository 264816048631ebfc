"""Stored files served over HTTP, with single byte ranges (players seek, downloads resume)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

from fastapi.responses import Response, StreamingResponse

from api.errors import ApiError
from sora_temporal.storage.base import Storage

# The variant names of ``/content``, and what each is stored and served as.
VARIANT_TYPES = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}
VARIANT_EXTENSIONS = {"video": "mp4", "thumbnail": "webp", "spritesheet": "jpg"}

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The half-open byte span ``[start, end)`` a ``Range`` header asks for, or ``None`` for all.

    A header this server does not serve (several ranges, another unit, bad syntax) is ignored, as
    RFC 9110 allows: the whole file is sent.

    Raises:
        ApiError: 416 when the range lies wholly outside the file.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":
        length = int(last)  # a suffix: the last N bytes
        if length == 0:
            raise _unsatisfiable(size)
        return max(0, size - length), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size or end <= start:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> ApiError:
    return ApiError(
        416,
        f"The requested range is not satisfiable; the file is {size} bytes.",
        headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
    )


async def stream_object(
    storage: Storage,
    pathname: str,
    *,
    content_type: str,
    filename: str,
    range_header: str | None,
    etag: str | None = None,
) -> Response:
    """Answer with the object at ``pathname``, whole (200) or the requested range (206).

    Raises:
        ApiError: 416 for an unsatisfiable range.
        StorageError: The store failed or the object is gone (the caller decides the status).
    """
    info = await storage.stat(pathname)
    span = parse_range(range_header, info.size)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'inline; filename="{filename}"',
        "Cache-Control": "private, max-age=3600",
    }
    if etag:
        headers["ETag"] = f'"{etag}"'
    start, end = span if span is not None else (0, info.size)
    headers["Content-Length"] = str(end - start)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"

    async def body() -> AsyncIterator[bytes]:
        # Closing the reader promptly releases its file or connection when a client goes away.
        async with contextlib.aclosing(storage.open_range(pathname, start, end)) as chunks:
            async for chunk in chunks:
                yield chunk

    return StreamingResponse(
        body(), status_code=206 if span is not None else 200, media_type=content_type, headers=headers
    )
