"""Typed views of the Videos API's JSON, parsed leniently.

OpenAI's own service and the gateways that speak the same protocol (Azure, LiteLLM, Together,
OpenRouter, ...) disagree on details: status names, where the download link lives, whether numbers
come as numbers or strings. The parsers here accept all of those, ignore fields they do not know,
and keep the raw status so that callers can log what the server actually said.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sora_temporal.types import RemoteStatus

log = logging.getLogger(__name__)

REFERENCE_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp")

VIDEO_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
"""Every video id the client accepts from the API or puts in a path (``.`` and ``..`` excepted)."""
# Unix seconds from 1970 to the end of year 9999: anything else is not a time a job can have.
_MAX_TIMESTAMP = 253_402_300_799

_STATUS_ALIASES: dict[str, RemoteStatus] = {
    "queued": RemoteStatus.QUEUED,
    "in_progress": RemoteStatus.IN_PROGRESS,
    # LiteLLM and other gateways report a running job as ``processing``.
    "processing": RemoteStatus.IN_PROGRESS,
    "completed": RemoteStatus.COMPLETED,
    "failed": RemoteStatus.FAILED,
}


class AuthStyle(StrEnum):
    """How the API key is sent.

    Attributes:
        BEARER: ``Authorization: Bearer <key>`` (OpenAI and most gateways).
        API_KEY: ``api-key: <key>`` (Azure OpenAI).
    """

    BEARER = "bearer"
    API_KEY = "api-key"


@dataclass(frozen=True)
class Video:
    """One video job as the server last described it.

    Attributes:
        id: The job's id (``video_...`` on OpenAI; gateways use their own forms).
        status: Normalised status; ``processing`` counts as ``in_progress`` and anything
            unrecognised is ``UNKNOWN``.
        raw_status: The status string exactly as sent (empty when absent).
        progress: Completion percentage, 0 to 100.
        model: Model name, if reported.
        prompt: Prompt, if reported.
        size: ``WIDTHxHEIGHT``, if reported.
        seconds: Duration as a string (the protocol's form), if reported.
        created_at: Unix seconds, if reported.
        completed_at: Unix seconds, if reported.
        expires_at: Unix seconds after which the content is gone, if reported.
        error_code: The failure's code, for failed jobs.
        error_message: The failure's message, for failed jobs.
        download_url: A direct download link some gateways put in the status (``url``,
            ``video_url`` or ``outputs.video_url``); OpenAI itself only serves ``/content``.
        remixed_from_video_id: The source video of a remix.
    """

    id: str
    status: RemoteStatus
    raw_status: str
    progress: int
    model: str | None = None
    prompt: str | None = None
    size: str | None = None
    seconds: str | None = None
    created_at: int | None = None
    completed_at: int | None = None
    expires_at: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    download_url: str | None = None
    remixed_from_video_id: str | None = None


@dataclass(frozen=True)
class Retrieved:
    """A status response.

    Attributes:
        video: The job.
        poll_after_seconds: How long the server asks the caller to wait before polling again
            (from ``openai-poll-after-ms``), if it said.
    """

    video: Video
    poll_after_seconds: float | None = None


@dataclass(frozen=True)
class VideoPage:
    """One page of ``GET /videos``.

    Attributes:
        data: The jobs on this page, in the order requested.
        first_id: Id of the first job on the page.
        last_id: Id of the last job; pass it as ``after`` to get the next page.
        has_more: Whether another page follows.
    """

    data: list[Video]
    first_id: str | None
    last_id: str | None
    has_more: bool


@dataclass(frozen=True)
class ReferenceImage:
    """An image the video starts from, uploaded as ``input_reference``.

    Its dimensions must equal the requested ``size`` exactly (the service refuses it otherwise).

    Attributes:
        data: The encoded image.
        filename: Name sent in the multipart part.
        content_type: ``image/jpeg``, ``image/png`` or ``image/webp``.
    """

    data: bytes
    filename: str
    content_type: str


@dataclass
class ContentStream:
    """An open download; read it with :meth:`aiter_bytes` inside the ``async with`` block.

    Attributes:
        content_type: The ``Content-Type`` header, if sent.
        content_length: The number of bytes :meth:`aiter_bytes` will yield when the download is
            complete, if known. ``None`` when the server did not say or compressed the body.
    """

    content_type: str | None
    content_length: int | None
    _iterate: Callable[[int], AsyncIterator[bytes]] = field(repr=False)

    def aiter_bytes(self, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """Yield the body in chunks of up to ``chunk_size`` bytes.

        Raises:
            SoraError: If the transfer breaks off; a cut-short body is never passed off as complete.
        """
        return self._iterate(chunk_size)


# --- parsing ---------------------------------------------------------------------------------


class InvalidVideoId(ValueError):
    """A video id that breaks :data:`VIDEO_ID_PATTERN`: it never goes into a path, a row or a search attribute."""


def is_valid_video_id(value: object) -> bool:
    """Whether ``value`` is a video id the client will use."""
    return (
        isinstance(value, str) and VIDEO_ID_PATTERN.fullmatch(value) is not None and value not in (".", "..")
    )


def check_video_id(value: object) -> str:
    """``value`` if it is a usable video id.

    Raises:
        InvalidVideoId: Otherwise; the message shows a printable excerpt, never the whole value.
    """
    if not is_valid_video_id(value):
        shown = ascii(value)[:40] if isinstance(value, str) else type(value).__name__
        raise InvalidVideoId(
            f"video id {shown} is not 1-128 letters, digits, '_', '.', ':' or '-' (or is '.' or '..')"
        )
    assert isinstance(value, str)
    return value


def parse_status(raw: object) -> RemoteStatus:
    """Map a status string of any dialect to :class:`RemoteStatus` (``UNKNOWN`` if unrecognised)."""
    if not isinstance(raw, str):
        return RemoteStatus.UNKNOWN
    return _STATUS_ALIASES.get(raw.strip().lower(), RemoteStatus.UNKNOWN)


def _finite(value: object) -> float | None:
    """A JSON number as a finite float; ``None`` for anything else (``1e999`` decodes to infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) else None


def _str(value: object) -> str | None:
    if isinstance(value, str):
        return value if value.strip() else None
    # Gateways send durations as numbers; the protocol's form is a string.
    number = _finite(value)
    if number is None:
        return None
    return str(int(number)) if number.is_integer() else str(number)


def _timestamp(value: object) -> int | None:
    """Unix seconds, or ``None`` for anything that is not a plausible time (junk never raises)."""
    number = _finite(value)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                # Some gateways send ISO 8601 instead of Unix seconds.
                parsed = datetime.fromisoformat(text)
                if parsed.tzinfo is None:
                    # Server timestamps without an offset are UTC, never this worker's local time.
                    parsed = parsed.replace(tzinfo=UTC)
                number = parsed.timestamp()
            except (ValueError, OverflowError, OSError):
                return None
    if number is None or not math.isfinite(number) or not 0 <= number <= _MAX_TIMESTAMP:
        return None
    return int(number)


def _progress(value: object, status: RemoteStatus) -> int:
    number = _finite(value)
    if isinstance(value, str):
        try:
            number = float(value.strip().rstrip("%"))
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        return 100 if status is RemoteStatus.COMPLETED else 0
    # A gateway reporting a fraction (0.0-1.0) rather than a percentage is indistinguishable from
    # 0-1 %, so values are taken as percentages and only clamped.
    return int(max(0.0, min(100.0, number)))


def _download_url(body: Mapping[str, Any]) -> str | None:
    for key in ("url", "video_url"):
        found = _str(body.get(key))
        if found is not None:
            return found
    outputs = body.get("outputs")
    if isinstance(outputs, Mapping):
        return _str(outputs.get("video_url")) or _str(outputs.get("url"))
    return None


def parse_video(body: object) -> Video:
    """Build a :class:`Video` from a decoded JSON object.

    Every field but ``id`` is parsed tolerantly: junk (``"1e999"``, ``[]``, ``"half"``) becomes
    ``None`` (or a clamped progress), never an exception.

    Raises:
        ValueError: If ``body`` is not an object with a string ``id``: without an id nothing else
            can be done with the job.
        InvalidVideoId: If the id breaks :data:`VIDEO_ID_PATTERN`.
    """
    if not isinstance(body, Mapping):
        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    video_id = body.get("id")
    if not isinstance(video_id, str) or not video_id.strip():
        raise ValueError("the video object has no id")
    check_video_id(video_id)
    raw_status = body.get("status")
    status = parse_status(raw_status)
    error = body.get("error")
    error_code: str | None = None
    error_message: str | None = None
    if isinstance(error, Mapping):
        error_code = _str(error.get("code")) or _str(error.get("type"))
        error_message = _str(error.get("message"))
    elif isinstance(error, str):
        error_message = _str(error)
    return Video(
        id=video_id,
        status=status,
        raw_status=raw_status if isinstance(raw_status, str) else "",
        progress=_progress(body.get("progress"), status),
        model=_str(body.get("model")),
        prompt=_str(body.get("prompt")),
        size=_str(body.get("size")),
        seconds=_str(body.get("seconds")),
        created_at=_timestamp(body.get("created_at")),
        completed_at=_timestamp(body.get("completed_at")),
        expires_at=_timestamp(body.get("expires_at")),
        error_code=error_code,
        error_message=error_message,
        download_url=_download_url(body),
        remixed_from_video_id=_id_or_none(body.get("remixed_from_video_id")),
    )


def _id_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and is_valid_video_id(value) else None


def parse_page(body: object) -> VideoPage:
    """Build a :class:`VideoPage` from a decoded JSON object.

    Entries that are not usable videos (no id, an id that breaks the rule, junk that cannot be read)
    are skipped with a warning rather than failing the page: the page is still useful for finding
    the jobs that are there. ``first_id``/``last_id`` that break the id rule are replaced by the
    page's own first and last usable ids.

    Raises:
        ValueError: If ``body`` is not an object with a ``data`` list.
    """
    if not isinstance(body, Mapping):
        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    items = body.get("data")
    if not isinstance(items, list):
        raise ValueError("the list response has no data array")
    videos: list[Video] = []
    for item in items:
        try:
            videos.append(parse_video(item))
        except (ValueError, TypeError, ArithmeticError) as err:
            log.warning("skipping a list entry that is not a usable video: %s", err)
    first_id = _id_or_none(body.get("first_id")) or (videos[0].id if videos else None)
    last_id = _id_or_none(body.get("last_id")) or (videos[-1].id if videos else None)
    has_more = body.get("has_more")
    return VideoPage(data=videos, first_id=first_id, last_id=last_id, has_more=has_more is True)
