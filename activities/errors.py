"""The one place where failures become Temporal ``ApplicationError``s.

Temporal owns retries: HTTP clients and the storage SDK run with their own retries off, and every
failure is classified here as retryable or not, with the delay the remote side asked for. Workflow
code reads ``ApplicationError.type`` and the ``code`` detail to record what went wrong.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.exceptions import ApplicationError

from sora_temporal.sora.errors import SoraError
from sora_temporal.storage.base import StorageError
from sora_temporal.validation import InvalidVideoRequest


class ErrorType:
    """``ApplicationError.type`` values that workflow code branches on."""

    INVALID_REQUEST = "InvalidRequest"
    INVALID_REFERENCE_IMAGE = "InvalidReferenceImage"
    CONTENT_UNAVAILABLE = "ContentUnavailable"
    DOWNLOADED_FILE_MISSING = "DownloadedFileMissing"
    CORRUPT_DOWNLOAD = "CorruptDownload"
    STORAGE = "StorageError"


class ReferenceImageError(ValueError):
    """The reference image cannot be used (missing, not an image, corrupt, too large, unreachable)."""


# Cap on the delay we accept from a Retry-After header: a broken header must not park a job for days.
MAX_RETRY_DELAY = timedelta(minutes=10)


def _delay(seconds: float | None) -> timedelta | None:
    if seconds is None or seconds <= 0:
        return None
    return min(timedelta(seconds=seconds), MAX_RETRY_DELAY)


def _error(
    message: str, *, type: str, code: str | None, retryable: bool, retry_after: float | None = None
) -> ApplicationError:
    details: dict[str, Any] = {"code": code or type}
    return ApplicationError(
        message,
        details,
        type=type,
        non_retryable=not retryable,
        next_retry_delay=_delay(retry_after) if retryable else None,
    )


def to_application_error(err: BaseException, *, operation: str) -> ApplicationError:
    """Classify ``err`` raised while doing ``operation`` (e.g. ``"create video"``).

    Args:
        err: The failure.
        operation: What was being done, for the message.

    Returns:
        An ``ApplicationError`` whose ``non_retryable`` and ``next_retry_delay`` say whether and when
        Temporal should try again. Unknown exceptions are retryable: they are most likely transient,
        and the activity's retry policy bounds them.
    """
    if isinstance(err, ApplicationError):
        return err
    if isinstance(err, InvalidVideoRequest):
        return _error(
            f"invalid request: {err.message}",
            type=ErrorType.INVALID_REQUEST,
            code="invalid_request",
            retryable=False,
        )
    if isinstance(err, ReferenceImageError):
        return _error(
            f"reference image rejected: {err}",
            type=ErrorType.INVALID_REFERENCE_IMAGE,
            code="invalid_reference_image",
            retryable=False,
        )
    if isinstance(err, SoraError):
        return _error(
            f"{operation} failed: {err.message}",
            type=type(err).__name__,
            code=err.code,
            retryable=err.retryable,
            retry_after=err.retry_after,
        )
    if isinstance(err, StorageError):
        return _error(
            f"{operation} failed: {err}",
            type=ErrorType.STORAGE,
            code="storage_error",
            retryable=err.retryable,
            retry_after=err.retry_after,
        )
    return _error(
        f"{operation} failed: {type(err).__name__}: {err}", type=type(err).__name__, code=None, retryable=True
    )


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
