"""The one error map: every failure becomes a Temporal ``ApplicationError`` here.

Temporal owns retries: the HTTP clients and the storage SDK run with their own retries off and
raise typed exceptions that carry only facts (an HTTP status, the server's error code, the delay it
asked for, whether a create may have happened). This module owns the project's own error types and
decides, for Sora, storage, the database and everything else, whether a failure is retryable and
how long to wait first. Activities raise through :func:`to_application_error` only; workflow code
reads ``ApplicationError.type`` and the ``code`` detail (:func:`error_code`) to record what went
wrong. The workflow and the starter import error types from here, never from ``activities``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import exc as sql
from temporalio.exceptions import ApplicationError

from sora_temporal.budget import BudgetExceeded
from sora_temporal.db import MAX_ERROR_CODE_CHARS, clean_text
from sora_temporal.netguard import UrlRefused
from sora_temporal.sora.errors import (
    SoraAuthenticationError,
    SoraConflict,
    SoraConnectionError,
    SoraError,
    SoraInvalidRequest,
    SoraNotFound,
    SoraProtocolError,
    SoraRateLimited,
    SoraServerError,
    SoraUnsafeResponse,
)
from sora_temporal.storage.base import StorageError, StorageFailure
from sora_temporal.validation import InvalidVideoRequest


class ErrorType(StrEnum):
    """``ApplicationError.type`` values of the project's own failures.

    Failures of the Videos API keep their client exception's name as the type (``SoraRateLimited``,
    ...), and other exceptions their class name (``OperationalError``, ...).
    """

    INVALID_REQUEST = "InvalidRequest"
    INVALID_REFERENCE_IMAGE = "InvalidReferenceImage"
    CONTENT_UNAVAILABLE = "ContentUnavailable"
    DOWNLOADED_FILE_MISSING = "DownloadedFileMissing"
    CORRUPT_DOWNLOAD = "CorruptDownload"
    INSUFFICIENT_DISK_SPACE = "InsufficientDiskSpace"
    UNSAFE_URL = "UnsafeUrl"
    STORAGE = "StorageError"
    UNSAFE_PATH = "UnsafePath"
    CLAIMED_ELSEWHERE = "ClaimedElsewhere"
    BUDGET_EXCEEDED = "BudgetExceeded"
    SAVE_FAILED = "SaveFailed"
    """Raised by the workflow itself: the catalogue refused its final state (see its message)."""
    WEBHOOK_REFUSED = "WebhookRefused"
    WEBHOOKS_NOT_CONFIGURED = "WebhooksNotConfigured"


# --- the project's own failures -------------------------------------------------------------------


class ReferenceImageError(ValueError):
    """The reference image cannot be used (missing, not an image, corrupt, too large, unreachable)."""


class ContentUnavailable(Exception):
    """The finished video's content can no longer be downloaded (expired or deleted)."""


class CorruptDownload(Exception):
    """A downloaded file is not what it should be.

    Attributes:
        code: Recorded as the failure's code.
    """

    code = "corrupt_download"


class TruncatedDownload(CorruptDownload):
    """The transfer ended before the declared length; the next attempt may get it all."""

    code = "truncated_download"


class NotAnMp4(CorruptDownload):
    """The video content arrived whole but is not an MP4 file."""

    code = "not_mp4"


class WrongMedia(CorruptDownload):
    """A thumbnail or spritesheet arrived whole but is not a WebP or JPEG file (its magic bytes)."""

    code = "wrong_media"


class DownloadTooLarge(CorruptDownload):
    """The content is larger than ``DOWNLOAD_MAX_BYTES`` (declared, or counted while it streamed)."""

    code = "download_too_large"


class InsufficientDiskSpace(Exception):
    """The download directory has too little free space for this download; nothing more is written.

    Attributes:
        needed: Bytes the download still needs (with the reserve), if known.
        free: Bytes free when it was checked.
    """

    def __init__(self, message: str, *, needed: int | None, free: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.free = free


class DownloadedFileMissing(Exception):
    """A file the download left on this host is gone before it could be uploaded."""


class UnsafePath(Exception):
    """An activity input names a file outside this worker's download directory (or a symlink)."""


class ClaimedElsewhere(Exception):
    """The job this submit created is already owned by another workflow, and no other job is ours."""


class WebhookRefused(Exception):
    """The application's webhook endpoint did not accept an event (it answered ``status_code``)."""

    def __init__(self, status_code: int, retry_after: float | None = None) -> None:
        super().__init__(f"the application's webhook endpoint answered HTTP {status_code}")
        self.status_code = status_code
        self.retry_after = retry_after


class WebhooksNotConfigured(Exception):
    """A job asks for a webhook, but this worker has no ``OUTBOUND_WEBHOOK_URL`` / secret."""


# --- the map -------------------------------------------------------------------------------------

MAX_RETRY_DELAY = timedelta(minutes=10)
DISK_RETRY_DELAY = timedelta(seconds=30)
"""Wait before trying a download again after the disk was too full for it."""
"""Cap on the delay we accept from a Retry-After header: a broken header must not park a job for days."""

_RETRYABLE_STORAGE = frozenset(
    {
        StorageFailure.RATE_LIMITED,
        StorageFailure.UNAVAILABLE,
        StorageFailure.NETWORK,
        StorageFailure.MALFORMED_RESPONSE,
        StorageFailure.SOURCE_CHANGED,
        StorageFailure.DISK,
    }
)
# A statement the database refused as such fails the same way every time.
_PERMANENT_DATABASE = (sql.DataError, sql.IntegrityError, sql.ProgrammingError)


@dataclass(frozen=True)
class _Verdict:
    type: str
    code: str
    message: str
    retryable: bool
    retry_after: float | None = None


def to_application_error(err: BaseException, *, operation: str) -> ApplicationError:
    """Classify ``err`` raised while doing ``operation`` (e.g. ``"create video"``).

    Args:
        err: The failure.
        operation: What was being done, for the message.

    Returns:
        A new ``ApplicationError`` (never ``err`` itself, so ``raise ... from err`` cannot make an
        error its own cause) whose ``non_retryable`` and ``next_retry_delay`` say whether and when
        Temporal should try again. Unknown exceptions are retryable: they are most likely
        transient, and the activity's retry policy bounds them.
    """
    if isinstance(err, ApplicationError):
        return ApplicationError(
            err.message,
            *err.details,
            type=err.type,
            non_retryable=err.non_retryable,
            next_retry_delay=err.next_retry_delay,
            category=err.category,
        )
    verdict = _judge(err, operation)
    delay = None
    if verdict.retryable and verdict.retry_after is not None and verdict.retry_after > 0:
        delay = min(timedelta(seconds=verdict.retry_after), MAX_RETRY_DELAY)
    # Codes and messages may come from the API: kept as the catalogue keeps them, so the workflow's
    # result and its row agree, and a 100 KB gateway message does not travel through history.
    return ApplicationError(
        clean_text(verdict.message),
        {"code": clean_text(verdict.code, MAX_ERROR_CODE_CHARS)},
        type=str(verdict.type),
        non_retryable=not verdict.retryable,
        next_retry_delay=delay,
    )


def is_retryable(err: BaseException) -> bool:
    """Whether Temporal will try again after ``err`` (the same decision as :func:`to_application_error`)."""
    if isinstance(err, ApplicationError):
        return not err.non_retryable
    return _judge(err, "").retryable


@contextmanager
def application_errors(operation: str) -> Iterator[None]:
    """Turn any exception leaving the body into an ``ApplicationError``; for activity bodies.

    Cancellation (``BaseException``) passes through untouched.
    """
    try:
        yield
    except Exception as err:
        raise to_application_error(err, operation=operation) from err


def _judge(err: BaseException, operation: str) -> _Verdict:
    if isinstance(err, InvalidVideoRequest):
        if err.code == "invalid_reference_image":
            return _Verdict(
                ErrorType.INVALID_REFERENCE_IMAGE,
                err.code,
                f"reference image rejected: {err.message}",
                retryable=False,
            )
        return _Verdict(
            ErrorType.INVALID_REQUEST, err.code, f"invalid request: {err.message}", retryable=False
        )
    if isinstance(err, ReferenceImageError):
        return _Verdict(
            ErrorType.INVALID_REFERENCE_IMAGE,
            "invalid_reference_image",
            f"reference image rejected: {err}",
            retryable=False,
        )
    if isinstance(err, ContentUnavailable):
        return _Verdict(ErrorType.CONTENT_UNAVAILABLE, "content_expired", str(err), retryable=False)
    if isinstance(err, CorruptDownload):
        # A short transfer may go through next time; a complete file that is not an MP4 will not change.
        return _Verdict(
            ErrorType.CORRUPT_DOWNLOAD, err.code, str(err), retryable=isinstance(err, TruncatedDownload)
        )
    if isinstance(err, UnsafePath):
        # Someone scheduled this activity with a path of their choosing: refuse, never retry.
        return _Verdict(ErrorType.UNSAFE_PATH, "unsafe_path", str(err), retryable=False)
    if isinstance(err, ClaimedElsewhere):
        # Another attempt would create (and pay for) another job; the one made is owned, not orphaned.
        return _Verdict(ErrorType.CLAIMED_ELSEWHERE, "claimed_elsewhere", str(err), retryable=False)
    if isinstance(err, BudgetExceeded):
        # Refused before anything was sent; the job ends ``rejected_budget`` rather than waiting.
        return _Verdict(ErrorType.BUDGET_EXCEEDED, "rejected_budget", str(err), retryable=False)
    if isinstance(err, InsufficientDiskSpace):
        # Other downloads finish and free their space, and the next attempt may run on another host.
        return _Verdict(
            ErrorType.INSUFFICIENT_DISK_SPACE,
            "insufficient_disk_space",
            f"{operation} failed: {err}",
            retryable=True,
            retry_after=DISK_RETRY_DELAY.total_seconds(),
        )
    if isinstance(err, UrlRefused):
        # The same URL (or address) is refused the same way next time.
        return _Verdict(ErrorType.UNSAFE_URL, "unsafe_url", f"{operation} refused: {err}", retryable=False)
    if isinstance(err, DownloadedFileMissing):
        # The workflow downloads again, on a live host; retrying here cannot bring the file back.
        return _Verdict(
            ErrorType.DOWNLOADED_FILE_MISSING, "downloaded_file_missing", str(err), retryable=False
        )
    if isinstance(err, WebhookRefused):
        # Standard Webhooks: any non-2xx is retried (with the receiver's Retry-After), except 410
        # Gone, by which an endpoint says it is removed for good.
        return _Verdict(
            ErrorType.WEBHOOK_REFUSED,
            "webhook_refused",
            f"{operation} failed: {err}",
            retryable=err.status_code != 410,
            retry_after=err.retry_after,
        )
    if isinstance(err, WebhooksNotConfigured):
        # Retried: a worker configured like the api process (or a fixed environment) delivers it.
        return _Verdict(
            ErrorType.WEBHOOKS_NOT_CONFIGURED, "webhooks_not_configured", str(err), retryable=True
        )
    if isinstance(err, SoraError):
        name = type(err).__name__
        return _Verdict(
            name,
            err.code or name,
            f"{operation} failed: {err.message}",
            retryable=_sora_retryable(err),
            retry_after=err.retry_after,
        )
    if isinstance(err, StorageError):
        return _Verdict(
            ErrorType.STORAGE,
            "storage_error",
            f"{operation} failed: {err}",
            retryable=err.kind in _RETRYABLE_STORAGE,
            retry_after=err.retry_after,
        )
    name = type(err).__name__
    # Of the database's errors, only OperationalError (connection lost, locked, server restarting)
    # and unknown ones are worth another attempt.
    return _Verdict(
        name,
        name,
        f"{operation} failed: {name}: {err}",
        retryable=not isinstance(err, _PERMANENT_DATABASE),
    )


def _sora_retryable(err: SoraError) -> bool:
    if isinstance(err, SoraUnsafeResponse):
        # An id that breaks the id rule or a link to a refused address: asking again gets the same
        # answer, and the server's own retry hint is not trusted about it.
        return False
    if err.should_retry is not None:
        # OpenAI's own hint, which its SDK obeys before any status-based rule.
        return err.should_retry
    if isinstance(err, SoraInvalidRequest | SoraAuthenticationError | SoraNotFound):
        return False
    if isinstance(err, SoraRateLimited):
        # An exhausted quota is a billing problem, not a burst: backing off will not fix it.
        return err.code != "insufficient_quota"
    if isinstance(err, SoraServerError):
        # Not implemented (501) or HTTP version not supported (505) will not be tomorrow either.
        return err.status_code not in (501, 505)
    if isinstance(err, SoraConnectionError):
        return not err.bad_url
    if isinstance(err, SoraProtocolError):
        # A redirect on an API call (e.g. an http:// base URL) repeats itself; a garbled 2xx may not.
        return err.status_code is None or 200 <= err.status_code < 300
    if isinstance(err, SoraConflict):
        return True  # a concurrent change settles
    return True  # anything else is most likely transient; the activity's retry policy bounds it


def error_code(err: BaseException) -> tuple[str, str]:
    """``(code, message)`` to record for a failure that reached the workflow.

    Unwraps Temporal's ``ActivityError`` to its ``ApplicationError`` cause when there is one.
    """
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.__cause__
    if isinstance(cause, ApplicationError):
        code = cause.type or "error"
        if cause.details and isinstance(cause.details[0], dict):
            code = str(cause.details[0].get("code") or code)
        return code, cause.message
    return type(err).__name__, str(err)
