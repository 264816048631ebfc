"""Hostile answers: malformed ids, junk numbers, missing fields, bombs, wrong media, poisoned errors.

Everything here is what a gateway or a compromised endpoint can send back. The functions are pure
(payload in, payload out) so ``app`` can apply them per job (prompt markers) or per request (fault
rules) in one place.
"""

from __future__ import annotations

import functools
import gzip
import io
import secrets
import zlib
from dataclasses import dataclass
from typing import Any

from PIL import Image

#: Kinds of hostile video id (``[sim:id=KIND]`` and the ``hostile_id`` rule); ``raw:<id>`` is literal.
ID_KINDS = ("dot", "dotdot", "long", "slash", "query", "space", "unicode")
RAW_ID_PREFIX = "raw:"
LONG_ID_LENGTH = 2048

#: Kinds of junk in numeric fields (``[sim:junk=KIND]`` and the ``junk_fields`` rule).
JUNK_KINDS = ("overflow", "garbage")

#: Kinds of poisoned error fields (``[sim:error=KIND]`` and the ``error`` rule's ``error_kind``).
ERROR_KINDS = ("long", "nul")
LONG_CODE_LENGTH = 200
LONG_MESSAGE_LENGTH = 100 * 1024

#: Fields gateways leave out of list entries (the default of ``[sim:omit]`` and ``omit_fields``).
DEFAULT_OMITTED = ("prompt", "model", "size", "seconds", "created_at")
#: Video fields that may be omitted (``id`` and ``object`` always stay).
OMITTABLE = (
    "created_at",
    "completed_at",
    "expires_at",
    "model",
    "progress",
    "prompt",
    "remixed_from_video_id",
    "seconds",
    "size",
    "status",
    "error",
)

#: What a ``wrong_media`` rule serves instead of the real bytes.
MEDIA_KINDS = ("html", "png", "jpeg", "webp")
_MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
}
_HTML = (
    b"<!doctype html>\n<html><head><title>Sign in</title></head><body>"
    b"<h1>Session expired</h1><p>Please sign in again.</p>"
    b"<script>fetch('/steal?c=' + document.cookie)</script></body></html>\n"
)

#: Decoded size of a gzip bomb unless the rule says otherwise (hundreds of MiB from ~1 KB).
DEFAULT_BOMB_BYTES = 512 * 1024 * 1024
MAX_BOMB_BYTES = 4 * 1024 * 1024 * 1024
BOMB_ENCODING = "gzip, gzip"
#: Size an ``oversize`` rule pads a JSON body to unless told otherwise (twice a 1 MiB cap).
DEFAULT_OVERSIZE_BYTES = 2 * 1024 * 1024
MAX_OVERSIZE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class RawNumber:
    """A JSON number token written verbatim (``1e999`` has no Python float that prints as such).

    Attributes:
        token: The literal, e.g. ``1e999``.
    """

    token: str


def check_id_kind(kind: str) -> None:
    """Accept a hostile id kind or ``raw:<id>``.

    Raises:
        ValueError: Otherwise.
    """
    if kind.startswith(RAW_ID_PREFIX):
        if not kind.removeprefix(RAW_ID_PREFIX):
            raise ValueError("'raw:' needs an id after it")
        return
    if kind not in ID_KINDS:
        raise ValueError(f"unknown id kind {kind!r}; expected one of {', '.join(ID_KINDS)} or raw:<id>")


def hostile_id(kind: str) -> str:
    """A video id of the given hostile kind; all but ``dot``, ``dotdot`` and ``raw:`` are unique.

    Args:
        kind: One of ``ID_KINDS`` or ``raw:<literal id>``.
    """
    check_id_kind(kind)
    tag = secrets.token_hex(8)
    if kind.startswith(RAW_ID_PREFIX):
        return kind.removeprefix(RAW_ID_PREFIX)
    return {
        "dot": ".",
        "dotdot": "..",
        "long": f"video_{tag}" + "a" * (LONG_ID_LENGTH - len(f"video_{tag}")),
        "slash": f"video_{tag}/../../{tag}",
        "query": f"video_{tag}?variant=thumbnail&x=1",
        "space": f"video_{tag} copy",
        "unicode": f"video_{tag}_ünïcødé_視頻_\u202e4pm",
    }[kind]


def junk_fields(video: dict[str, Any], kind: str) -> None:
    """Replace a Video object's numeric fields with junk, in place.

    ``overflow``: ``created_at: "1e999"`` (a string), ``progress``, ``completed_at`` and
    ``expires_at`` as the number ``1e999`` (no float holds it). ``garbage``: non-numeric values of
    the wrong type (``"yesterday"``, ``"half"``, ``[]``, ``"four"``).
    """
    if kind == "overflow":
        video["created_at"] = "1e999"
        video["progress"] = RawNumber("1e999")
        video["completed_at"] = RawNumber("1e999")
        video["expires_at"] = RawNumber("-1e999")
    else:
        video["created_at"] = "yesterday"
        video["progress"] = "half"
        video["completed_at"] = []
        video["expires_at"] = {"when": "later"}
        video["seconds"] = "four"


def omit_fields(video: dict[str, Any], fields: tuple[str, ...]) -> None:
    """Drop fields from a Video object, in place."""
    for name in fields:
        video.pop(name, None)


def poisoned_error(kind: str) -> tuple[str, str]:
    """An error ``(code, message)`` pair that a database column cannot take as is.

    ``long``: a 200-character code and a 100 KB message. ``nul``: NUL characters in both.
    """
    if kind == "long":
        code = ("upstream_provider_error_" * 10)[:LONG_CODE_LENGTH]
        message = ("The upstream provider failed. " * (LONG_MESSAGE_LENGTH // 30 + 1))[:LONG_MESSAGE_LENGTH]
        return code, message
    return "internal\x00error", "Video generation failed\x00 at frame \x00\x0012."


def pad_json(payload: dict[str, Any], size: int) -> None:
    """Grow a JSON object to at least ``size`` bytes with a ``padding`` field, in place."""
    payload["padding"] = "x" * size


def wrong_media(kind: str) -> tuple[bytes, str]:
    """Bytes of the wrong kind and their true content type (``html`` is a sign-in page)."""
    if kind == "html":
        return _HTML, _MEDIA_TYPES["html"]
    return _tiny_image(kind), _MEDIA_TYPES[kind]


@functools.lru_cache(maxsize=8)
def _tiny_image(kind: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (200, 40, 40)).save(buffer, format=kind.upper())
    return buffer.getvalue()


def gzip_bomb(decoded_size: int, tail: bytes = b"") -> bytes:
    """A body for ``Content-Encoding: gzip, gzip`` that decodes to ``decoded_size`` spaces + ``tail``.

    Leading spaces are valid JSON whitespace, so a JSON bomb is still a valid document: a client
    that decodes without a cap ends up parsing the real answer after holding hundreds of MiB.

    Args:
        decoded_size: Number of spaces before ``tail`` in the decoded body.
        tail: Bytes after the spaces (a JSON document; empty for media).

    Returns:
        The doubly gzipped body, about a kilobyte for 512 MiB.
    """
    prefix, state = _compressed_spaces(decoded_size)
    # The compressor state after the spaces is cached; each answer only appends its own tail.
    compressor = state.copy()
    inner = prefix + compressor.compress(tail) + compressor.flush()
    return gzip.compress(inner, 9)


@functools.lru_cache(maxsize=4)
def _compressed_spaces(size: int) -> tuple[bytes, Any]:
    # wbits 31 = gzip framing; the copy() taken per answer keeps the running CRC and length right.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b" " * (1 << 20)
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        step = min(len(chunk), remaining)
        parts.append(compressor.compress(chunk[:step]))
        remaining -= step
    return b"".join(parts), compressor
