"""Reading response bodies under a hard cap on the bytes they become.

A body can be bigger than it looks: ``Content-Encoding: gzip, gzip`` turns a few hundred bytes into
hundreds of megabytes, and httpx decodes each network chunk in one call, so a cap checked after
decoding comes too late. Every request asks for ``identity``; a body encoded anyway is decoded here,
layer by layer, in pieces of at most :data:`PIECE` bytes, and every layer's output is counted, so the
cap holds on the decoded bytes while they are produced. Encodings other than gzip and deflate are
refused rather than decoded.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass

import httpx

PIECE = 64 * 1024
MAX_ENCODING_LAYERS = 3
_IDENTITY = ("", "identity")


class BodyTooLarge(Exception):
    """A body (declared, or decoded so far) is larger than the limit; reading stopped there.

    Attributes:
        limit: The limit in bytes.
        declared: The ``Content-Length`` that gave it away, if that is how it was found.
    """

    def __init__(self, limit: int, declared: int | None = None) -> None:
        self.limit = limit
        self.declared = declared
        if declared is not None:
            super().__init__(f"the body is {declared} bytes; the limit is {limit} bytes")
        else:
            super().__init__(f"the body is larger than the limit of {limit} bytes")


class UnsupportedEncoding(Exception):
    """The body is encoded in a way that is not decoded (anything but gzip and deflate)."""


def content_codings(headers: httpx.Headers) -> list[str]:
    """The ``Content-Encoding`` layers in the order they were applied, without ``identity``."""
    raw = ",".join(headers.get_list("content-encoding"))
    return [c.strip().lower() for c in raw.split(",") if c.strip().lower() not in _IDENTITY]


def declared_length(headers: httpx.Headers) -> int | None:
    """``Content-Length`` when the body is not encoded (it then counts the bytes that will be yielded)."""
    if content_codings(headers):
        return None
    raw = headers.get("content-length")
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw.strip())


@dataclass
class _Layer:
    coding: str
    limit: int
    produced: int = 0

    def __post_init__(self) -> None:
        if self.coding in ("gzip", "x-gzip"):
            self._wbits = 16 + zlib.MAX_WBITS
        elif self.coding == "deflate":
            self._wbits = zlib.MAX_WBITS
        else:
            raise UnsupportedEncoding(f"Content-Encoding {self.coding!r} is not accepted")
        self._inflater = zlib.decompressobj(self._wbits)
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decode ``data`` in pieces of at most PIECE bytes, counting them against the limit."""
        while data and not self._inflater.eof:
            try:
                out = self._inflater.decompress(data, PIECE)
            except zlib.error:
                if self.coding == "deflate" and not self._started:
                    # "deflate" is meant to be zlib-wrapped; some servers send it raw.
                    self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                    self._started = True
                    continue
                raise
            self._started = True
            tail = self._inflater.unconsumed_tail
            if not out and tail == data:
                break  # no progress
            data = tail
            if out:
                self.produced += len(out)
                if self.produced > self.limit:
                    raise BodyTooLarge(self.limit)
                yield out
        # Output still held back after the last input (a long back-reference), a piece at a time.
        while not self._inflater.eof:
            out = self._inflater.decompress(b"", PIECE)
            if not out:
                break
            self.produced += len(out)
            if self.produced > self.limit:
                raise BodyTooLarge(self.limit)
            yield out


class CappedDecoder:
    """Turns raw body bytes into decoded bytes, never producing more than ``limit`` in any layer.

    Args:
        codings: The ``Content-Encoding`` layers in the order they were applied.
        limit: The most bytes any layer (the final body included) may produce.

    Raises:
        UnsupportedEncoding: For an encoding other than gzip or deflate, or too many layers.
    """

    def __init__(self, codings: list[str], limit: int) -> None:
        if len(codings) > MAX_ENCODING_LAYERS:
            raise UnsupportedEncoding(f"{len(codings)} content encodings are too many")
        self._limit = limit
        # Applied first is removed last.
        self._layers = [_Layer(coding, limit) for coding in reversed(codings)]
        self.size = 0

    def feed(self, raw: bytes) -> Iterator[bytes]:
        """The decoded pieces of ``raw``.

        Raises:
            BodyTooLarge: As soon as a layer or the body passes the limit.
            zlib.error: If the encoded data is corrupt.
        """
        for piece in self._through(raw, 0):
            self.size += len(piece)
            if self.size > self._limit:
                raise BodyTooLarge(self._limit)
            yield piece

    def _through(self, data: bytes, index: int) -> Iterator[bytes]:
        if index == len(self._layers):
            if data:
                yield data
            return
        for piece in self._layers[index].feed(data):
            yield from self._through(piece, index + 1)


async def aiter_capped(
    response: httpx.Response, limit: int, chunk_size: int = PIECE, *, check_declared: bool = True
) -> AsyncGenerator[bytes, None]:
    """The decoded body of a streamed ``response``, refusing it once it passes ``limit`` bytes.

    Args:
        response: Opened with ``stream=True``.
        limit: The most bytes accepted.
        chunk_size: Raw bytes read at a time.
        check_declared: Refuse a larger ``Content-Length`` before reading anything.

    Raises:
        BodyTooLarge: When ``Content-Length`` (unencoded) or the decoded bytes pass ``limit``.
        UnsupportedEncoding: For an encoding that is not decoded.
        httpx.DecodingError: If the encoded data is corrupt.
        httpx.HTTPError: If the transfer fails.
    """
    declared = declared_length(response.headers)
    if check_declared and declared is not None and declared > limit:
        raise BodyTooLarge(limit, declared)
    decoder = CappedDecoder(content_codings(response.headers), limit)
    async for raw in response.aiter_raw(chunk_size):
        try:
            for piece in decoder.feed(raw):
                yield piece
        except zlib.error as err:
            raise httpx.DecodingError(f"corrupt encoded body: {err}", request=response.request) from err


async def read_capped(response: httpx.Response, limit: int, *, truncate: bool = False) -> bytes:
    """The decoded body of a streamed ``response``, at most ``limit`` bytes.

    Args:
        response: Opened with ``stream=True``; not closed here.
        limit: The most bytes accepted.
        truncate: Return the first ``limit`` bytes instead of raising (error bodies, which are only
            quoted); a transfer that breaks off then returns what arrived.

    Raises:
        BodyTooLarge: If the body is larger and ``truncate`` is false.
        UnsupportedEncoding: If the body's encoding is not decoded (and ``truncate`` is false).
    """
    body = bytearray()
    pieces = aiter_capped(response, limit, check_declared=not truncate)
    try:
        async for piece in pieces:
            body.extend(piece)
    except (BodyTooLarge, UnsupportedEncoding, httpx.HTTPError):
        if not truncate:
            raise
    finally:
        await pieces.aclose()
    return bytes(body[:limit])


def materialise(response: httpx.Response, body: bytes) -> httpx.Response:
    """A copy of ``response`` holding ``body`` (already decoded), for code that reads ``.content``."""
    headers = httpx.Headers(response.headers)
    for name in ("content-encoding", "content-length", "transfer-encoding"):
        headers.pop(name, None)
    return httpx.Response(response.status_code, headers=headers, content=body, request=response.request)
