"""Reading API requests: pathnames, option headers and bodies, refused in the service's words."""

from __future__ import annotations

import contextlib
import mimetypes
import random
import string
from collections.abc import AsyncIterator

from aiohttp import web

from simulator.blob.errors import bad_request

MAX_PATHNAME_LENGTH = 950
_SUFFIX_ALPHABET = string.ascii_letters + string.digits


def validate_pathname(raw: str | None) -> str:
    """The pathname, without a leading ``/``.

    Raises:
        ApiError: 400 when it is missing, has control characters, ``//`` or dot segments, or is
            longer than 950 UTF-16 code units.
    """
    if not raw:
        raise bad_request("pathname is required")
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise bad_request("pathname cannot contain control characters")
    if "//" in raw:
        raise bad_request('pathname cannot contain "//"')
    pathname = raw.removeprefix("/")
    if not pathname or any(segment in (".", "..") for segment in pathname.split("/")):
        raise bad_request("pathname cannot contain dot segments")
    if len(pathname.encode("utf-16-le")) // 2 > MAX_PATHNAME_LENGTH:
        raise bad_request(f"pathname is too long, maximum length is {MAX_PATHNAME_LENGTH}")
    return pathname


def flag(request: web.Request, name: str) -> bool:
    """A ``"0"``/``"1"`` header (absent: ``False``)."""
    value = request.headers.get(name, "0")
    if value not in ("0", "1"):
        raise bad_request(f"{name} must be '0' or '1', got {value!r}")
    return value == "1"


def access(request: web.Request) -> str:
    """``x-vercel-blob-access``: ``public`` (the default) or ``private``."""
    value = request.headers.get("x-vercel-blob-access", "public")
    if value not in ("public", "private"):
        raise bad_request("access must be 'public' or 'private'")
    return value


def max_age(request: web.Request) -> int | None:
    """``x-cache-control-max-age`` in seconds, if given."""
    raw = request.headers.get("x-cache-control-max-age")
    if raw is None:
        return None
    if not raw.isdigit():
        raise bad_request("x-cache-control-max-age must be a nonnegative integer")
    return int(raw)


def content_type(request: web.Request, pathname: str) -> str:
    """``x-content-type``, else guessed from the pathname's extension."""
    explicit = request.headers.get("x-content-type")
    if explicit:
        return explicit
    guessed, _ = mimetypes.guess_type(pathname)
    return guessed or "application/octet-stream"


def content_length(request: web.Request) -> int | None:
    """``content-length``, if given."""
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit():
        raise bad_request("invalid content-length")
    return int(raw)


def with_random_suffix(pathname: str) -> str:
    """``dir/name-<30 random characters>.ext``, for ``x-add-random-suffix: 1``."""
    directory, slash, name = pathname.rpartition("/")
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        stem, dot, extension = name, "", ""
    suffix = "".join(random.choices(_SUFFIX_ALPHABET, k=30))
    return f"{directory}{slash}{stem}-{suffix}{dot}{extension}"


async def body(request: web.Request) -> AsyncIterator[bytes]:
    """The request body, chunk by chunk as it arrives."""
    while chunk := await request.content.readany():
        yield chunk


async def drain(request: web.Request) -> None:
    """Read and drop the rest of a request body, so the client gets to read our answer."""
    with contextlib.suppress(Exception):
        while await request.content.readany():
            pass


__all__ = [
    "MAX_PATHNAME_LENGTH",
    "access",
    "body",
    "content_length",
    "content_type",
    "drain",
    "flag",
    "max_age",
    "validate_pathname",
    "with_random_suffix",
]
