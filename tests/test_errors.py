"""The one error map: which failures Temporal retries, when, and what the row records."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import exc as sql
from temporalio.exceptions import ApplicationError

from sora_temporal.errors import (
    MAX_RETRY_DELAY,
    ClaimedElsewhere,
    ContentUnavailable,
    DownloadedFileMissing,
    ErrorType,
    NotAnMp4,
    ReferenceImageError,
    TruncatedDownload,
    UnsafePath,
    application_errors,
    error_code,
    is_retryable,
    to_application_error,
)
from sora_temporal.sora.errors import SoraRateLimited, SoraServerError, classify
from sora_temporal.storage.base import StorageError, StorageFailure
from sora_temporal.validation import InvalidVideoRequest

REQUEST = httpx.Request("GET", "https://api.example.test/v1/videos/v/content")


def _code(err: ApplicationError) -> str:
    return str(err.details[0]["code"])


@pytest.mark.parametrize(
    ("err", "type", "code", "retryable"),
    [
        (InvalidVideoRequest("size", "bad size"), ErrorType.INVALID_REQUEST, "invalid_request", False),
        (
            ReferenceImageError("not an image"),
            ErrorType.INVALID_REFERENCE_IMAGE,
            "invalid_reference_image",
            False,
        ),
        (ContentUnavailable("gone"), ErrorType.CONTENT_UNAVAILABLE, "content_expired", False),
        (TruncatedDownload("cut short"), ErrorType.CORRUPT_DOWNLOAD, "truncated_download", True),
        (NotAnMp4("not an mp4"), ErrorType.CORRUPT_DOWNLOAD, "not_mp4", False),
        (DownloadedFileMissing("gone"), ErrorType.DOWNLOADED_FILE_MISSING, "downloaded_file_missing", False),
        (StorageError("x", kind=StorageFailure.UNAVAILABLE), ErrorType.STORAGE, "storage_error", True),
        (StorageError("x", kind=StorageFailure.ACCESS_DENIED), ErrorType.STORAGE, "storage_error", False),
        (RuntimeError("surprise"), "RuntimeError", "RuntimeError", True),
        (UnsafePath("/etc/passwd"), ErrorType.UNSAFE_PATH, "unsafe_path", False),
        (ClaimedElsewhere("owned"), ErrorType.CLAIMED_ELSEWHERE, "claimed_elsewhere", False),
        (
            InvalidVideoRequest("reference_image", "a path"),
            ErrorType.INVALID_REFERENCE_IMAGE,
            "invalid_reference_image",
            False,
        ),
    ],
)
def test_each_failure_gets_its_type_code_and_retry_decision(
    err: Exception, type: str, code: str, retryable: bool
) -> None:
    app = to_application_error(err, operation="do it")

    assert (app.type, _code(app), app.non_retryable) == (type, code, not retryable)
    assert is_retryable(err) is retryable


def test_a_sora_failure_keeps_the_servers_code_and_its_class_name_as_type() -> None:
    err = classify("create video", httpx.Response(400, json={"error": {"code": "bad_size"}}, request=REQUEST))

    app = to_application_error(err, operation="create video")

    assert (app.type, _code(app), app.non_retryable) == ("SoraInvalidRequest", "bad_size", True)


def test_a_download_link_in_an_unknown_scheme_is_not_retried() -> None:
    err = classify("download", httpx.UnsupportedProtocol("ftp is not supported"))

    assert (type(err).__name__, is_retryable(err)) == ("SoraConnectionError", False)


@pytest.mark.parametrize(
    ("err", "retryable"),
    [
        (sql.OperationalError("UPDATE videos", {}, Exception("database is locked")), True),
        (sql.IntegrityError("INSERT", {}, Exception("duplicate key")), False),
        (sql.DataError("INSERT", {}, Exception("value too long")), False),
        (sql.ProgrammingError("SELECT", {}, Exception("no such column")), False),
    ],
)
def test_only_operational_database_errors_are_retried(err: Exception, retryable: bool) -> None:
    app = to_application_error(err, operation="save video row")

    assert app.non_retryable is not retryable
    assert app.type == type(err).__name__


def test_the_delay_the_server_asks_for_becomes_the_next_retry_delay() -> None:
    err = SoraRateLimited("slow down", status_code=429, retry_after=7.5)

    assert to_application_error(err, operation="x").next_retry_delay == timedelta(seconds=7.5)


def test_a_huge_retry_after_is_capped() -> None:
    err = StorageError("busy", kind=StorageFailure.RATE_LIMITED, retry_after=86_400)

    assert to_application_error(err, operation="x").next_retry_delay == MAX_RETRY_DELAY


def test_a_permanent_failure_gets_no_retry_delay() -> None:
    err = SoraServerError("not implemented", status_code=501, retry_after=5)

    app = to_application_error(err, operation="x")

    assert (app.non_retryable, app.next_retry_delay) == (True, None)


def test_an_application_error_is_copied_never_returned_as_its_own_cause() -> None:
    original = ApplicationError("already classified", {"code": "c"}, type="T", non_retryable=True)

    with pytest.raises(ApplicationError) as caught, application_errors("op"):
        raise original

    assert caught.value is not original
    assert caught.value.__cause__ is original
    assert (caught.value.type, caught.value.non_retryable) == ("T", True)
    assert tuple(caught.value.details) == ({"code": "c"},)


def test_error_code_reads_the_code_detail_through_the_activity_error_chain() -> None:
    app = to_application_error(ContentUnavailable("the content expired"), operation="download")
    wrapper = RuntimeError("activity failed")
    wrapper.__cause__ = app

    assert error_code(wrapper) == ("content_expired", "the content expired")
