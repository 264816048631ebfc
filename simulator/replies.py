"""Replies and the low-level ways of (mis)delivering them: normally, truncated, or not at all."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from simulator.errors import ApiError
from simulator.hostile import RawNumber

log = logging.getLogger("simulator")

CHUNK = 256 * 1024


@dataclass
class JsonReply:
    """A JSON response.

    Attributes:
        payload: The body.
        status: HTTP status.
        headers: Extra headers.
        job_id: The job this reply creates, so a lost response can be recorded on it.
    """

    payload: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    job_id: str | None = None

    @classmethod
    def from_error(cls, error: ApiError) -> JsonReply:
        """The error envelope for an API error."""
        return cls(error.envelope(), status=error.status, headers=dict(error.headers))


@dataclass
class FileReply:
    """A file streamed from disk.

    Attributes:
        path: The file.
        content_type: MIME type.
        headers: Extra headers.
    """

    path: Path
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class BytesReply:
    """A body held in memory (reference images, wrong media, gzip bombs).

    Attributes:
        body: The bytes as sent on the wire.
        content_type: MIME type.
        status: HTTP status.
        headers: Extra headers (e.g. ``Content-Encoding``).
    """

    body: bytes
    content_type: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Reply = JsonReply | FileReply | BytesReply


def render_json(payload: Any) -> bytes:
    """Serialise a payload; ``RawNumber`` values are written as their literal token (``1e999``)."""
    raws: dict[str, str] = {}
    nonce = secrets.token_hex(8)

    def swap(value: Any) -> Any:
        if isinstance(value, RawNumber):
            placeholder = f"__raw_{nonce}_{len(raws)}__"
            raws[placeholder] = value.token
            return placeholder
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        return value

    text = json.dumps(swap(payload))
    for placeholder, token in raws.items():
        text = text.replace(f'"{placeholder}"', token)
    return text.encode()


def error_response(error: ApiError) -> web.Response:
    """An immediate error response in OpenAI's envelope."""
    return json_response(JsonReply.from_error(error))


def json_response(reply: JsonReply) -> web.Response:
    """Render a JSON reply."""
    return web.Response(
        body=render_json(reply.payload),
        status=reply.status,
        headers=reply.headers,
        content_type="application/json",
        charset="utf-8",
    )


def bytes_response(reply: BytesReply) -> web.Response:
    """Render an in-memory reply exactly as given (a ``Content-Encoding`` header is not acted on)."""
    # The header is set verbatim: a hostile content type need not be one aiohttp would produce.
    return web.Response(
        body=reply.body, status=reply.status, headers={**reply.headers, "Content-Type": reply.content_type}
    )


async def send(
    request: web.Request, reply: Reply, *, truncate: bool = False, pause: float = 0.0
) -> web.StreamResponse:
    """Deliver a reply; with ``truncate`` announce the full length but stop half-way and hang up.

    Args:
        request: The request being answered.
        reply: What to send.
        truncate: Send only about half of the body, then close the connection.
        pause: Seconds to hold the reply: a JSON reply waits before it is sent, a file is paused
            after about half of its body (headers and first half delivered, the rest withheld).
    """
    if isinstance(reply, JsonReply | BytesReply):
        if pause > 0 and not truncate:
            await asyncio.sleep(pause)
        if not truncate:
            return json_response(reply) if isinstance(reply, JsonReply) else bytes_response(reply)
        if isinstance(reply, JsonReply):
            body, content_type = render_json(reply.payload), "application/json"
        else:
            body, content_type = reply.body, reply.content_type
        response = web.StreamResponse(
            status=reply.status, headers={**reply.headers, "Content-Type": content_type}
        )
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        _hang_up(request, graceful=True)
        return response
    size = reply.path.stat().st_size
    response = web.StreamResponse(headers=reply.headers)
    response.content_type = reply.content_type
    response.content_length = size
    await response.prepare(request)
    first = size // 2 if truncate or pause > 0 else size
    try:
        # Stream from disk so a large video never sits in memory as a whole.
        with reply.path.open("rb") as handle:
            await _stream(handle, response, first)
            if pause > 0 and not truncate:
                await asyncio.sleep(pause)
                await _stream(handle, response, size - first)
        if truncate:
            _hang_up(request, graceful=True)
        else:
            await response.write_eof()
    except ConnectionError:
        # The client went away mid-download; that is its business, not a server error.
        log.debug("client disconnected during download of %s", reply.path.name)
    return response


async def _stream(handle: IO[bytes], response: web.StreamResponse, length: int) -> None:
    remaining = length
    while remaining > 0:
        chunk = await asyncio.to_thread(handle.read, min(CHUNK, remaining))
        if not chunk:
            break
        await response.write(chunk)
        remaining -= len(chunk)


def reset_connection(request: web.Request) -> web.StreamResponse:
    """Drop the TCP connection without any response.

    Returns:
        A placeholder; aiohttp's attempt to send it fails quietly on the dead connection.
    """
    _hang_up(request, graceful=False)
    return web.Response(status=500)


def _hang_up(request: web.Request, *, graceful: bool) -> None:
    transport = request.transport
    if transport is None:
        return
    if graceful:
        # close() flushes what was written first, so the client really gets the partial body.
        transport.close()
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # A zero linger time turns the close into a real TCP RST instead of an orderly FIN.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
